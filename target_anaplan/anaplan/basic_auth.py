"""User name and password login (``POST /token/authenticate`` with a Basic header)."""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable

import requests

from target_anaplan.anaplan.auth import (
    Timeout,
    Token,
    TokenAuth,
    post_token_service,
    refresh_token_service,
    token_from_response,
)
from target_anaplan.anaplan.errors import AuthenticationError, TransientError, anaplan_message

logger = logging.getLogger(__name__)


class BasicAuth(TokenAuth):
    """Logs in with a user name and password, then refreshes the token until it is refused."""

    def __init__(
        self,
        session: requests.Session,
        auth_base_url: str,
        username: str,
        password: str,
        *,
        clock: Callable[[], float] = time.time,
        timeout_s: Timeout = 60,
    ) -> None:
        super().__init__(clock=clock)
        self._session = session
        self._auth_base_url = auth_base_url.rstrip("/")
        self._username = username
        self._password = password
        self._timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"BasicAuth(username={self._username!r})"

    def _obtain(self) -> Token:
        credentials = base64.b64encode(f"{self._username}:{self._password}".encode()).decode(
            "ascii"
        )
        response = post_token_service(
            self._session,
            f"{self._auth_base_url}/token/authenticate",
            headers={"Authorization": f"Basic {credentials}"},
            timeout_s=self._timeout_s,
        )
        if not response.ok:
            raise AuthenticationError(self._refusal(response))
        logger.info("Logged in to Anaplan as %s", self._username)
        return token_from_response(response, now=self._clock())

    def _renew(self, token: Token) -> Token:
        try:
            renewed = refresh_token_service(
                self._session,
                self._auth_base_url,
                token,
                timeout_s=self._timeout_s,
                now=self._clock(),
            )
        except TransientError:
            if self._clock() < token.expires_at - 30:
                logger.warning(
                    "Could not refresh the Anaplan token yet; still using the current one"
                )
                return token
            raise
        if renewed is None:
            logger.info("Anaplan refused to refresh the token; logging in again")
            return self._obtain()
        return renewed

    def _refusal(self, response: requests.Response) -> str:
        detail = anaplan_message(response)
        detail = f" ({detail})" if detail else ""
        if response.status_code == 401:
            return (
                f"Anaplan refused the user name or password for user {self._username!r}{detail}. "
                "Check username and password; users under single sign-on must be made "
                "Exception Users before they can log in with a password."
            )
        return (
            f"Anaplan refused the login of user {self._username!r} with HTTP "
            f"{response.status_code}{detail}. Check username and auth_base_url."
        )
