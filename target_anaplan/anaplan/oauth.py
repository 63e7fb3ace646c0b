"""OAuth 2.0 access tokens from a refresh token (Anaplan self-service OAuth).

There is no client-credentials grant: an unattended run lives on a refresh token that
a person obtained once. Rotatable clients hand out a new, single-use refresh token on
every refresh, so the newest one is persisted before its access token is used, and
the read-spend-persist sequence runs under the token store's inter-process lock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from target_anaplan.anaplan.auth import Timeout, Token, TokenAuth
from target_anaplan.anaplan.errors import (
    AuthenticationError,
    TransientError,
    network_error,
    response_error,
)
from target_anaplan.anaplan.token_store import StoredToken, TokenStore, seed_hash

logger = logging.getLogger(__name__)

DEFAULT_EXPIRES_IN_S = 2100.0
SCOPE = "openid profile email offline_access"
_DAY_S = 86400.0


@dataclass(frozen=True)
class TokenResponse:
    """What ``/oauth/token`` granted."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_in_s: float


class OAuthError(AuthenticationError):
    """``/oauth/token`` (or ``/oauth/device/code``) answered with an RFC 6749 error code."""

    def __init__(self, message: str, *, error: str, status: int) -> None:
        super().__init__(message)
        self.error = error
        self.status = status


def oauth_post(
    session: requests.Session, url: str, body: Mapping[str, Any], *, timeout_s: Timeout
) -> dict[str, Any]:
    """POST a JSON body to an OAuth endpoint and return its JSON answer.

    Raises ``TransientError`` for 429/5xx and dropped connections, ``OAuthError`` for
    an RFC 6749 error answer, ``AuthenticationError`` otherwise. Messages never
    contain the request body (it holds secrets).
    """
    describe = f"Anaplan OAuth at {url}"
    try:
        response = session.post(url, json=dict(body), timeout=timeout_s)
    except requests.RequestException as error:
        raise network_error(error, describe, url=url) from None
    refusal = response_error(response, describe)
    if isinstance(refusal, TransientError):
        raise refusal
    data = _json_or_none(response)
    if response.ok and isinstance(data, dict):
        return data
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        raise OAuthError(
            f"Anaplan OAuth at {url} refused the request: {data['error']}.",
            error=data["error"],
            status=response.status_code,
        )
    raise AuthenticationError(
        f"Anaplan OAuth at {url} answered HTTP {response.status_code} unexpectedly."
    )


def request_token(
    session: requests.Session, oauth_base_url: str, body: Mapping[str, Any], *, timeout_s: Timeout
) -> TokenResponse:
    """Exchange a grant (refresh token, authorization code, device code) for tokens."""
    data = oauth_post(session, f"{oauth_base_url}/oauth/token", body, timeout_s=timeout_s)
    access_token = data.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise AuthenticationError("Anaplan OAuth answered without an access_token.")
    refresh_token = data.get("refresh_token")
    return TokenResponse(
        access_token=access_token,
        refresh_token=refresh_token if isinstance(refresh_token, str) and refresh_token else None,
        expires_in_s=float(data.get("expires_in") or DEFAULT_EXPIRES_IN_S),
    )


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def lifespan_margin_s(lifespan_s: float) -> float:
    """How long before a refresh token's end to start warning.

    10% of the lifespan or one day, whichever is larger, but never more than half the
    lifespan (so Anaplan's default 12-hour lifespan does not warn on every run).
    """
    return min(max(0.1 * lifespan_s, _DAY_S), 0.5 * lifespan_s)


class OAuthRefreshAuth(TokenAuth):
    """Access tokens from the refresh-token grant, rotating the refresh token safely."""

    def __init__(
        self,
        session: requests.Session,
        oauth_base_url: str,
        *,
        client_id: str,
        client_secret: str | None,
        refresh_token: str | None,
        store: TokenStore,
        lifespan_s: float | None = None,
        clock: Callable[[], float] = time.time,
        timeout_s: Timeout = 60.0,
    ) -> None:
        super().__init__(clock=clock)
        self._session = session
        self._oauth_base_url = oauth_base_url.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._configured = refresh_token or None
        self._seed = seed_hash(self._configured)
        self._store = store
        self._lifespan_s = lifespan_s
        self._timeout_s = timeout_s
        self._warned = False

    def __repr__(self) -> str:
        return f"OAuthRefreshAuth(client_id={self._client_id!r}, store={self._store!r})"

    def _obtain(self) -> Token:
        with self._store.locked():
            current, from_store = self._current()
            self._warn_if_ending(current)
            now = self._clock()
            granted = self._spend(current.refresh_token, from_store)
            self._persist(current, from_store, granted, now)
        return Token(granted.access_token, now + granted.expires_in_s)

    def _current(self) -> tuple[StoredToken, bool]:
        """The refresh token to spend: the store's, unless config holds a new one."""
        stored = self._store.read()
        if stored is not None and (self._configured is None or stored.seed_sha256 == self._seed):
            return stored, True
        if self._configured is None:
            raise AuthenticationError(
                f"No OAuth refresh token for client '{self._client_id}': the token store "
                f"{self._store.path} is empty and oauth_refresh_token is not set. Run "
                f"`target-anaplan-admin login --client-id {self._client_id} --token-store "
                f"{self._store.path}` once, or set oauth_refresh_token."
            )
        return StoredToken(self._configured, issued_at=None, seed_sha256=self._seed), False

    def _spend(self, refresh_token: str, from_store: bool) -> TokenResponse:
        body = {
            "grant_type": "refresh_token",
            "client_id": self._client_id,
            "refresh_token": refresh_token,
        }
        if self._client_secret:
            body["client_secret"] = self._client_secret
        try:
            return request_token(
                self._session, self._oauth_base_url, body, timeout_s=self._timeout_s
            )
        except OAuthError as error:
            if error.error == "invalid_grant":
                raise AuthenticationError(self._invalid_grant_message(from_store)) from None
            if error.error in ("invalid_client", "unauthorized_client"):
                raise AuthenticationError(
                    f"Anaplan OAuth refused client '{self._client_id}' ({error.error}). Check "
                    "oauth_client_id, and oauth_client_secret (set it for authorization-code "
                    "clients, leave it out for device clients)."
                ) from None
            raise

    def _persist(
        self, spent: StoredToken, from_store: bool, granted: TokenResponse, now: float
    ) -> None:
        """Store a new refresh token before its access token is used; note a non-rotating one."""
        if granted.refresh_token and granted.refresh_token != spent.refresh_token:
            self._store.write(
                StoredToken(
                    granted.refresh_token,
                    issued_at=now,
                    seed_sha256=spent.seed_sha256,
                    rotating=True,
                ),
                client_id=self._client_id,
            )
        elif from_store and spent.rotating is not False:
            self._store.write(
                StoredToken(
                    spent.refresh_token, spent.issued_at, spent.seed_sha256, rotating=False
                ),
                client_id=self._client_id,
            )

    def _warn_if_ending(self, token: StoredToken) -> None:
        if (
            self._warned
            or not self._lifespan_s
            or token.issued_at is None
            or token.rotating is False
        ):
            return
        remaining_s = token.issued_at + self._lifespan_s - self._clock()
        if remaining_s > lifespan_margin_s(self._lifespan_s):
            return
        self._warned = True
        ending = (
            "has probably expired"
            if remaining_s <= 0
            else f"expires in about {duration_text(remaining_s)}"
        )
        logger.warning(
            "The OAuth refresh token of client '%s' in %s %s (oauth_refresh_token_lifespan_s=%d). "
            "Run the target more often than that, or re-authorize with "
            "`target-anaplan-admin login --client-id %s --token-store %s`.",
            self._client_id,
            self._store.path,
            ending,
            self._lifespan_s,
            self._client_id,
            self._store.path,
        )

    def _invalid_grant_message(self, from_store: bool) -> str:
        source = (
            f"from the token store {self._store.path}" if from_store else "from oauth_refresh_token"
        )
        return (
            f"Anaplan no longer accepts the OAuth refresh token of client '{self._client_id}' "
            f"({source}; invalid_grant): it expired, was revoked, or was already used "
            "(a rotatable refresh token works only once). Re-authorize with "
            f"`target-anaplan-admin login --client-id {self._client_id} --token-store "
            f"{self._store.path}` (add --device for a device-grant client), remove "
            "oauth_refresh_token from the config if it is set, and run again."
        )


def duration_text(seconds: float) -> str:
    """A rough duration for messages: "3 days", "5 hours", "40 minutes"."""
    if seconds >= 2 * _DAY_S:
        return f"{seconds / _DAY_S:.0f} days"
    if seconds >= 7200:
        return f"{seconds / 3600:.0f} hours"
    return f"{max(seconds, 0) / 60:.0f} minutes"
