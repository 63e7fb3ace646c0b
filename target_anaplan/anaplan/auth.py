"""One token lifecycle for every auth method.

Anaplan tokens live 35 minutes and Anaplan warns against minting one per call, so a
token is cached, renewed ahead of expiry, replaced after a 401, and only one thread
at a time may renew it (the SDK drains sinks on parallel threads).
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from target_anaplan.anaplan.errors import (
    AuthenticationError,
    TransientError,
    network_error,
    response_error,
)

AUTH_SCHEME = "AnaplanAuthToken"
# Seconds to wait for an answer, or (to connect, to read): what requests' timeout takes.
Timeout = float | tuple[float, float]


@dataclass(frozen=True)
class Token:
    """An access token and when it stops working (epoch seconds)."""

    value: str = field(repr=False)
    expires_at: float


class TokenAuth(ABC):
    """Caches a token and renews it; subclasses only know how to get one."""

    def __init__(
        self, *, clock: Callable[[], float] = time.time, refresh_margin_s: float = 300
    ) -> None:
        self._clock = clock
        self._refresh_margin_s = refresh_margin_s
        self._lock = threading.Lock()
        self._token: Token | None = None

    def header(self) -> str:
        """The Authorization header value for the next call, renewing the token if due."""
        with self._lock:
            token = self._token
            if token is None:
                token = self._obtain()
            elif self._clock() >= token.expires_at - self._refresh_margin_s:
                token = self._renew(token)
            self._token = token
            return f"{AUTH_SCHEME} {token.value}"

    def invalidate(self, header_value: str) -> None:
        """Forget the token a call was refused with, unless another thread already replaced it."""
        with self._lock:
            if self._token and header_value == f"{AUTH_SCHEME} {self._token.value}":
                self._token = None

    @abstractmethod
    def _obtain(self) -> Token:
        """Log in from scratch."""

    def _renew(self, token: Token) -> Token:
        """Extend or replace a token close to expiry; by default log in again."""
        return self._obtain()


# Helpers for the /token/* service, shared by the basic and certificate authenticators.

_DEFAULT_LIFETIME_S = 35 * 60


def post_token_service(
    session: requests.Session,
    url: str,
    *,
    headers: dict[str, str],
    timeout_s: Timeout,
    json: Any = None,
) -> requests.Response:
    """POST to the auth host; a transient failure (``errors.py`` decides) is raised.

    Other answers are returned for the caller to judge (401 means different things
    to a login and to a refresh). Messages name the URL path, never the headers.
    """
    describe = f"POST {urlsplit(url).path}"
    try:
        response = session.post(url, headers=headers, json=json, timeout=timeout_s)
    except requests.RequestException as error:
        raise network_error(error, describe, url=url) from error
    refusal = response_error(response, describe)
    if isinstance(refusal, TransientError):
        raise refusal
    return response


def token_from_response(response: requests.Response, *, now: float) -> Token:
    """The token in a 2xx ``tokenInfo`` envelope; ``expiresAt`` is epoch milliseconds."""
    try:
        info = response.json()["tokenInfo"]
        value = str(info["tokenValue"])
    except (ValueError, KeyError, TypeError) as error:
        raise AuthenticationError(
            f"Anaplan's token service answered {response.status_code} without a token "
            "(tokenInfo.tokenValue); check auth_base_url points at the Anaplan auth host."
        ) from error
    expires_ms = info.get("expiresAt")
    expires_at = float(expires_ms) / 1000 if expires_ms else now + _DEFAULT_LIFETIME_S
    return Token(value=value, expires_at=expires_at)


def refresh_token_service(
    session: requests.Session, auth_base_url: str, token: Token, *, timeout_s: Timeout, now: float
) -> Token | None:
    """Extend a token with ``POST /token/refresh``; ``None`` when Anaplan no longer accepts it."""
    response = post_token_service(
        session,
        f"{auth_base_url}/token/refresh",
        headers={"Authorization": f"{AUTH_SCHEME} {token.value}"},
        timeout_s=timeout_s,
    )
    if not response.ok:
        return None
    return token_from_response(response, now=now)
