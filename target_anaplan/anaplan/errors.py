"""One error taxonomy for every Anaplan call.

Every failure the client raises is an ``AnaplanError`` whose message is written for the
user (what failed and how to fix it). ``TransientError`` is the only kind the retry
policy retries; everything else is terminal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from target_anaplan.anaplan.models import TaskOutcome


class AnaplanError(Exception):
    """Base class; ``str(error)`` is a complete, user-facing sentence."""


class TransientError(AnaplanError):
    """A failure that may succeed if tried again (429, 5xx, dropped connection)."""

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ApiError(AnaplanError):
    """A terminal HTTP error from Anaplan (4xx other than 401/429)."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class AuthenticationError(AnaplanError):
    """Credentials were refused, or a refresh token can no longer be used."""


class NotFoundError(AnaplanError):
    """A workspace, model, file, import or process named in config does not exist."""


class ModelUnavailableError(AnaplanError):
    """The model is archived (422), locked (423) or offline (424)."""


class ActionFailedError(AnaplanError):
    """An import or process finished unsuccessfully, was cancelled, or timed out.

    ``outcomes`` holds the parsed results of the failed tasks (empty on a timeout), so
    the caller can still fetch their failure dumps.
    """

    def __init__(self, message: str, *, outcomes: tuple[TaskOutcome, ...] = ()) -> None:
        super().__init__(message)
        self.outcomes = outcomes


def tls_verification_error(where: str, error: BaseException) -> AnaplanError | None:
    """A terminal error if ``error`` is a failed TLS certificate check, else None.

    Retrying cannot fix an untrusted certificate, and the usual cause (a proxy that
    re-signs HTTPS) has one fix: the CA bundle setting.
    """
    text = str(error)
    if "CERTIFICATE_VERIFY_FAILED" not in text and "certificate verify failed" not in text:
        return None
    return AnaplanError(
        f"{where}: the TLS certificate of the Anaplan host could not be verified. If a proxy "
        "re-signs HTTPS traffic, set ca_bundle to a PEM file with its CA certificate "
        "(TLS verification is always on)."
    )


def anaplan_message(response: Any) -> str:
    """Anaplan's own explanation from an error body, whichever service answered.

    The Integration API nests it in ``status.message``, the auth service uses
    ``statusMessage`` and OAuth ``error_description``; anything else gives "".
    """
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    status = body.get("status")
    if isinstance(status, dict) and status.get("message"):
        return str(status["message"])[:300]
    for key in ("statusMessage", "error_description", "message"):
        if body.get(key):
            return str(body[key])[:300]
    return str(status or "")[:300]
