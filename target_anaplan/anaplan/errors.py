"""The Anaplan client's errors, and the one place that decides transient vs terminal.

Every failure the client raises is an ``AnaplanError`` whose message is written for the
user (what failed and how to fix it). ``TransientError`` is the only kind the retry
policy retries; everything else is terminal. Which is which is decided here, once: by
``response_error`` for an HTTP answer and by ``network_error`` for a request that got
no answer. The Integration API client, the auth service and OAuth all ask them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests

from target_anaplan.errors import TargetAnaplanError

if TYPE_CHECKING:
    from target_anaplan.anaplan.models import TaskOutcome


class AnaplanError(TargetAnaplanError):
    """Base class; ``str(error)`` is a complete, user-facing sentence."""


class TransientError(AnaplanError):
    """A failure that may succeed if tried again (429, 409, 5xx, dropped connection)."""

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ApiError(AnaplanError):
    """A terminal HTTP error from Anaplan (4xx other than 401/409/429)."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class AuthenticationError(AnaplanError):
    """Credentials were refused, or a refresh token can no longer be used."""


class NotFoundError(ApiError):
    """A workspace, model, file, import or process named in config does not exist."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=404)


class ModelUnavailableError(AnaplanError):
    """The model is archived (422), locked (423) or offline (424)."""


class UnreachableError(TransientError):
    """No connection to a host could be made (refused, unknown name, no answer to connect).

    Transient once Anaplan has answered in a run (a network blip); before that, most likely a
    wrong setting, so the client tries only briefly (``HostUnreachableError``).
    """

    def __init__(self, message: str, *, url: str, reason: str) -> None:
        super().__init__(message)
        self.url = url
        self.reason = reason


class HostUnreachableError(AnaplanError):
    """A run's first requests could not reach the host its settings name."""


class UploadExpiredError(AnaplanError):
    """Anaplan no longer holds the upload being sent (chunks lost); it must start again."""


class ActionFailedError(AnaplanError):
    """An import or process finished unsuccessfully, was cancelled, or timed out.

    ``outcomes`` holds the parsed results of the failed tasks (empty on a timeout), so
    the caller can still fetch their failure dumps.
    """

    def __init__(self, message: str, *, outcomes: tuple[TaskOutcome, ...] = ()) -> None:
        super().__init__(message)
        self.outcomes = outcomes


_TRANSIENT_STATUSES = frozenset({409, 429, 500, 502, 503, 504})
_MODEL_UNAVAILABLE = {
    422: "is archived; unarchive the model in Anaplan, then try again",
    423: "is locked; unlock the model in Anaplan, then try again",
    424: "is offline; bring the model online in Anaplan, then try again",
}
_NETWORK_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


def response_error(response: requests.Response, describe: str) -> AnaplanError | None:
    """The error an HTTP answer means, or None for a success (any status below 400).

    Transient: 409 (model busy), 429 and 5xx, with the server's ``Retry-After``. Every
    other status is terminal. ``describe`` ("GET /path") starts the message.
    """
    status = response.status_code
    if status < 400:
        return None
    detail = anaplan_message(response)
    suffix = f": {detail}" if detail else ""
    if status in _TRANSIENT_STATUSES:
        what = {409: "the model is busy", 429: "Anaplan is rate limiting"}.get(
            status, "Anaplan answered"
        )
        return TransientError(
            f"{describe}: {what} (HTTP {status}){suffix}",
            retry_after_s=parse_retry_after(response.headers.get("Retry-After")),
        )
    if status == 404:
        return NotFoundError(
            f"{describe}: not found (HTTP 404){suffix}. The id is wrong, the object was "
            "deleted, or the user has no access to it."
        )
    if status in _MODEL_UNAVAILABLE:
        return ModelUnavailableError(f"{describe}: the model {_MODEL_UNAVAILABLE[status]}{suffix}")
    if status == 403:
        return ApiError(
            f"{describe}: permission denied (HTTP 403){suffix}. Give the user access to this "
            "object in Anaplan.",
            status=status,
        )
    return ApiError(f"{describe}: Anaplan answered HTTP {status}{suffix}", status=status)


def network_error(
    error: requests.RequestException,
    describe: str,
    *,
    timeout_s: float | None = None,
    url: str | None = None,
) -> AnaplanError:
    """The error a request without an answer means: transient, except TLS and misuse.

    Retrying cannot fix an untrusted certificate, and its usual cause (a proxy that
    re-signs HTTPS) has one fix, the CA bundle setting; nor a malformed request. A
    connection that could not be made at all is an ``UnreachableError`` naming ``url``.
    """
    text = str(error)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        host = f" {urlsplit(url).netloc}" if url else ""
        return AnaplanError(
            f"{describe}: the TLS certificate of the Anaplan host{host} could not be verified. "
            "If a proxy re-signs HTTPS traffic, set ca_bundle to a PEM file with its CA "
            "certificate (TLS verification is always on)."
        )
    reason = _connect_failure(error)
    if reason is not None and url is not None:
        return UnreachableError(
            f"{describe}: could not connect to {host_and_port(url)} ({reason})",
            url=url,
            reason=reason,
        )
    if isinstance(error, requests.Timeout) and timeout_s is not None:
        return TransientError(f"{describe}: no answer from Anaplan within {timeout_s:.0f} s")
    if isinstance(error, _NETWORK_ERRORS):
        return TransientError(f"{describe}: could not reach Anaplan ({type(error).__name__})")
    return AnaplanError(f"{describe}: request failed ({type(error).__name__})")


def _connect_failure(error: requests.RequestException) -> str | None:
    """Why no connection could be made, or None if one was (and then broke)."""
    if isinstance(error, requests.ConnectTimeout):
        return "no answer to the connection attempt"
    if not isinstance(error, requests.ConnectionError):
        return None
    reason = getattr(error.args[0] if error.args else None, "reason", None)
    name = type(reason).__name__
    if name == "NameResolutionError":
        return "the host name does not resolve"
    if name == "NewConnectionError":
        refused = "refused" in str(reason).lower()
        return "connection refused" if refused else "no connection could be made"
    return None


def host_and_port(url: str) -> str:
    """``host:port`` of a URL, with the scheme's default port when none is given."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname}:{port}"


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


def parse_retry_after(value: str | None, *, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now())
