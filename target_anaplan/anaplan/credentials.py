"""Build the one ``TokenAuth`` a run uses from its settings.

The target and the client only ever see ``TokenAuth``; which credentials sit behind
it (password, OAuth refresh token, CA certificate) is decided here, once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from target_anaplan.anaplan.auth import TokenAuth
from target_anaplan.anaplan.certificate import CertificateAuth
from target_anaplan.anaplan.errors import AuthenticationError
from target_anaplan.anaplan.oauth import OAuthRefreshAuth
from target_anaplan.anaplan.token_store import TokenStore

if TYPE_CHECKING:
    import requests

    from target_anaplan.anaplan.regions import Hosts

AUTH_TIMEOUT_S = 60.0


def make_auth(
    settings: Any,
    hosts: Hosts,
    session: requests.Session,
    *,
    clock: Callable[[], float] = time.time,
    timeout_s: float = AUTH_TIMEOUT_S,
) -> TokenAuth:
    """The auth for ``settings.auth_method``: ``basic``, ``oauth`` or ``certificate``."""
    method = settings.auth_method
    if method == "basic":
        return _basic(settings, hosts, session, clock, timeout_s)
    if method == "oauth":
        return _oauth(settings, hosts, session, clock, timeout_s)
    if method == "certificate":
        return _certificate(settings, hosts, session, clock, timeout_s)
    raise AuthenticationError(
        f"auth_method {method!r} is not supported; use 'basic', 'oauth' or 'certificate'."
    )


def _basic(
    settings: Any,
    hosts: Hosts,
    session: requests.Session,
    clock: Callable[[], float],
    timeout_s: float,
) -> TokenAuth:
    # Imported here so this module does not depend on basic auth being importable
    # when another method is configured.
    from target_anaplan.anaplan.basic_auth import BasicAuth  # noqa: PLC0415

    return BasicAuth(
        session,
        hosts.auth_base_url,
        _required(settings, "username", "basic"),
        _required(settings, "password", "basic"),
        clock=clock,
        timeout_s=timeout_s,
    )


def _oauth(
    settings: Any,
    hosts: Hosts,
    session: requests.Session,
    clock: Callable[[], float],
    timeout_s: float,
) -> TokenAuth:
    client_id = _required(settings, "oauth_client_id", "oauth")
    store_path = getattr(settings, "oauth_token_store", None)
    return OAuthRefreshAuth(
        session,
        hosts.oauth_base_url,
        client_id=client_id,
        client_secret=getattr(settings, "oauth_client_secret", None),
        refresh_token=getattr(settings, "oauth_refresh_token", None),
        store=TokenStore(store_path) if store_path else TokenStore.for_client(client_id),
        lifespan_s=getattr(settings, "oauth_refresh_token_lifespan_s", None),
        clock=clock,
        timeout_s=timeout_s,
    )


def _certificate(
    settings: Any,
    hosts: Hosts,
    session: requests.Session,
    clock: Callable[[], float],
    timeout_s: float,
) -> TokenAuth:
    return CertificateAuth(
        session,
        hosts.auth_base_url,
        certificate=_required(settings, "certificate", "certificate"),
        private_key=_required(settings, "private_key", "certificate"),
        passphrase=getattr(settings, "private_key_passphrase", None),
        data_format=getattr(settings, "certificate_data_format", None) or "v2",
        clock=clock,
        timeout_s=timeout_s,
    )


def _required(settings: Any, name: str, method: str) -> str:
    """A setting the chosen auth method cannot work without (the value is never shown)."""
    value = getattr(settings, name, None)
    if not value:
        raise AuthenticationError(
            f"auth_method '{method}' needs the setting {name}; set it in the config."
        )
    return value
