"""make_auth: one TokenAuth per kind of credentials, as the settings describe them."""

from __future__ import annotations

import pytest
import requests

from target_anaplan.anaplan.basic_auth import BasicAuth
from target_anaplan.anaplan.credentials import (
    BasicCredentials,
    OAuthCredentials,
    make_auth,
)
from target_anaplan.anaplan.oauth import OAuthRefreshAuth
from target_anaplan.anaplan.regions import resolve_hosts
from target_anaplan.errors import ConfigError
from target_anaplan.settings import Settings

HOSTS = resolve_hosts("eu3")
BASE = {"workspace": "w", "model": "m"}


def test_basic():
    credentials = Settings.from_config({**BASE, "username": "u", "password": "p"}).credentials()
    assert credentials == BasicCredentials(username="u", password="p")
    assert "'p'" not in repr(credentials)
    assert isinstance(make_auth(credentials, HOSTS, requests.Session()), BasicAuth)


def test_oauth_uses_the_configured_store_or_the_default(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = Settings.from_config({**BASE, "oauth_client_id": "cid", "oauth_refresh_token": "rt"})
    auth = make_auth(settings.credentials(), HOSTS, requests.Session())
    assert isinstance(auth, OAuthRefreshAuth)
    assert str(tmp_path / ".target-anaplan" / "tokens" / "cid.json") in repr(auth)

    mine = OAuthCredentials(
        client_id="cid", refresh_token="rt", token_store=str(tmp_path / "m.json")
    )
    assert str(tmp_path / "m.json") in repr(make_auth(mine, HOSTS, requests.Session()))


def test_missing_credential_is_named_without_values():
    with pytest.raises(ConfigError, match="needs `private_key`"):
        Settings.from_config({**BASE, "auth_method": "certificate", "certificate": "---"})


def test_unknown_method():
    with pytest.raises(ConfigError, match="`auth_method` is 'kerberos'"):
        Settings.from_config({**BASE, "auth_method": "kerberos", "username": "u"})
