"""make_auth: one TokenAuth per auth_method, built from the target's settings."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import requests

from target_anaplan.anaplan.basic_auth import BasicAuth
from target_anaplan.anaplan.credentials import make_auth
from target_anaplan.anaplan.errors import AuthenticationError
from target_anaplan.anaplan.oauth import OAuthRefreshAuth
from target_anaplan.anaplan.regions import resolve_hosts

HOSTS = resolve_hosts("eu3")


def settings(**values: object) -> SimpleNamespace:
    names = [
        "username",
        "password",
        "oauth_client_id",
        "oauth_client_secret",
        "oauth_refresh_token",
        "oauth_token_store",
        "oauth_refresh_token_lifespan_s",
        "certificate",
        "private_key",
        "private_key_passphrase",
        "certificate_data_format",
        "ca_bundle",
    ]
    return SimpleNamespace(**{name: None for name in names} | values)


def test_basic():
    auth = make_auth(
        settings(auth_method="basic", username="u", password="p"), HOSTS, requests.Session()
    )
    assert isinstance(auth, BasicAuth)


def test_oauth_uses_the_configured_store_or_the_default(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    config = settings(auth_method="oauth", oauth_client_id="cid", oauth_refresh_token="rt")
    auth = make_auth(config, HOSTS, requests.Session())
    assert isinstance(auth, OAuthRefreshAuth)
    assert str(tmp_path / ".target-anaplan" / "tokens" / "cid.json") in repr(auth)

    config.oauth_token_store = str(tmp_path / "mine.json")
    assert str(tmp_path / "mine.json") in repr(make_auth(config, HOSTS, requests.Session()))


def test_missing_credential_is_named_without_values():
    config = settings(auth_method="certificate", certificate="cert.pem")
    with pytest.raises(AuthenticationError, match="needs the setting private_key"):
        make_auth(config, HOSTS, requests.Session())


def test_unknown_method():
    with pytest.raises(AuthenticationError, match="'kerberos' is not supported"):
        make_auth(settings(auth_method="kerberos"), HOSTS, requests.Session())
