"""Typed credentials, and the one ``TokenAuth`` a run builds from them.

The client only ever sees ``TokenAuth``; which credentials sit behind it (password,
OAuth refresh token, CA certificate) is decided here, once. Callers hand over one of
the three credential values below, never their own settings object, so this package
stays independent of how the target is configured.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from target_anaplan.anaplan.auth import Timeout, TokenAuth
from target_anaplan.anaplan.basic_auth import BasicAuth
from target_anaplan.anaplan.oauth import OAuthRefreshAuth
from target_anaplan.anaplan.token_store import TokenStore

if TYPE_CHECKING:
    import requests

    from target_anaplan.anaplan.regions import Hosts

AUTH_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class BasicCredentials:
    """A user name and password (``POST /token/authenticate`` with a Basic header)."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class OAuthCredentials:
    """An OAuth client and the refresh token to start from (or the store that holds it)."""

    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    token_store: str | None = None  # default: the per-client file of TokenStore.for_client
    refresh_token_lifespan_s: int | None = None


@dataclass(frozen=True)
class CertificateCredentials:
    """A CA certificate and its private key, each PEM text or a file path."""

    certificate: str
    private_key: str = field(repr=False)
    passphrase: str | None = field(default=None, repr=False)
    data_format: str = "v2"


Credentials = BasicCredentials | OAuthCredentials | CertificateCredentials


def make_auth(
    credentials: Credentials,
    hosts: Hosts,
    session: requests.Session,
    *,
    clock: Callable[[], float] = time.time,
    timeout_s: Timeout = AUTH_TIMEOUT_S,
) -> TokenAuth:
    """The token lifecycle for ``credentials`` against the region's hosts."""
    if isinstance(credentials, BasicCredentials):
        return BasicAuth(
            session,
            hosts.auth_base_url,
            credentials.username,
            credentials.password,
            clock=clock,
            timeout_s=timeout_s,
        )
    if isinstance(credentials, OAuthCredentials):
        store = credentials.token_store
        return OAuthRefreshAuth(
            session,
            hosts.oauth_base_url,
            client_id=credentials.client_id,
            client_secret=credentials.client_secret,
            refresh_token=credentials.refresh_token,
            store=TokenStore(store) if store else TokenStore.for_client(credentials.client_id),
            lifespan_s=credentials.refresh_token_lifespan_s,
            clock=clock,
            timeout_s=timeout_s,
        )
    # Only for certificate logins: cryptography is a sizeable import at every start.
    from target_anaplan.anaplan.certificate import CertificateAuth  # noqa: PLC0415

    return CertificateAuth(
        session,
        hosts.auth_base_url,
        certificate=credentials.certificate,
        private_key=credentials.private_key,
        passphrase=credentials.passphrase,
        data_format=credentials.data_format,
        clock=clock,
        timeout_s=timeout_s,
    )
