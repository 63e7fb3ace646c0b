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
from dataclasses import dataclass

AUTH_SCHEME = "AnaplanAuthToken"


@dataclass(frozen=True)
class Token:
    """An access token and when it stops working (epoch seconds)."""

    value: str
    expires_at: float


class TokenAuth(ABC):
    """Caches a token and renews it; subclasses only know how to get one."""

    def __init__(self, *, clock: Callable[[], float] = time.time, refresh_margin_s: float = 300) -> None:
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

    def _renew(self, token: Token) -> Token:  # noqa: ARG002
        """Extend or replace a token close to expiry; by default log in again."""
        return self._obtain()
