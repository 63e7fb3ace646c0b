"""OAuth refresh-token auth against a scripted token endpoint (no network)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import requests

from target_anaplan.anaplan.errors import AuthenticationError, TransientError
from target_anaplan.anaplan.oauth import OAuthRefreshAuth, lifespan_margin_s
from target_anaplan.anaplan.token_store import StoredToken, TokenStore, seed_hash

NOW = 1_800_000_000.0
SECRET = "client-secret-xyz"


class FakeTokenEndpoint:
    """A requests.Session stand-in: answers /oauth/token from a script and records bodies."""

    def __init__(self, *answers: tuple[int, dict[str, Any]]) -> None:
        self.answers = list(answers)
        self.bodies: list[dict[str, Any]] = []

    def post(self, url: str, *, json: dict[str, Any], timeout: float) -> requests.Response:
        assert url == "https://oauth.example/oauth/token"
        self.bodies.append(json)
        status, body = self.answers.pop(0)
        response = requests.Response()
        response.status_code = status
        response._content = _dumps(body)
        return response


def _dumps(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def granted(access: str, refresh: str | None = None) -> tuple[int, dict[str, Any]]:
    body: dict[str, Any] = {"access_token": access, "expires_in": 2100, "token_type": "Bearer"}
    if refresh:
        body["refresh_token"] = refresh
    return 200, body


def make_auth(session, store, *, configured="configured-rt", secret=SECRET, lifespan_s=None):
    return OAuthRefreshAuth(
        session,
        "https://oauth.example/",
        client_id="my-client",
        client_secret=secret,
        refresh_token=configured,
        store=store,
        lifespan_s=lifespan_s,
        clock=lambda: NOW,
    )


@pytest.fixture
def store(tmp_path) -> TokenStore:
    return TokenStore(tmp_path / "tokens" / "my-client.json")


def test_refresh_grant_body_and_header(store):
    session = FakeTokenEndpoint(granted("access-1", "configured-rt"))
    auth = make_auth(session, store)

    assert auth.header() == "AnaplanAuthToken access-1"
    assert session.bodies == [
        {"grant_type": "refresh_token", "client_id": "my-client",
         "refresh_token": "configured-rt", "client_secret": SECRET}
    ]  # fmt: skip
    assert store.read() is None  # a non-rotating token that came from config is not copied


def test_device_clients_send_no_secret(store):
    session = FakeTokenEndpoint(granted("access-1"))
    make_auth(session, store, secret=None).header()
    assert "client_secret" not in session.bodies[0]


def test_rotated_token_is_stored_and_spent_next(store):
    session = FakeTokenEndpoint(granted("access-1", "rotated-1"), granted("access-2", "rotated-2"))
    auth = make_auth(session, store)

    auth.header()
    assert store.read() == StoredToken("rotated-1", NOW, seed_hash("configured-rt"), rotating=True)
    auth.invalidate("AnaplanAuthToken access-1")
    assert auth.header() == "AnaplanAuthToken access-2"
    assert session.bodies[1]["refresh_token"] == "rotated-1"
    assert store.read().refresh_token == "rotated-2"


def test_access_token_is_not_handed_out_when_the_rotated_token_cannot_be_stored(store, monkeypatch):
    session = FakeTokenEndpoint(granted("access-1", "rotated-1"))
    auth = make_auth(session, store)

    def fail(*_args: object, **_kwargs: object) -> None:
        raise AuthenticationError("Cannot write the OAuth token store")

    monkeypatch.setattr(store, "write", fail)
    with pytest.raises(AuthenticationError, match="Cannot write"):
        auth.header()


def test_store_entry_from_the_same_seed_supersedes_the_configured_token(store):
    store.write(
        StoredToken("stored-rt", NOW - 60, seed_hash("configured-rt")), client_id="my-client"
    )
    session = FakeTokenEndpoint(granted("access-1", "next-rt"))
    make_auth(session, store).header()
    assert session.bodies[0]["refresh_token"] == "stored-rt"


def test_new_configured_token_supersedes_an_older_store_entry(store):
    store.write(StoredToken("stored-rt", NOW - 60, seed_hash("old-configured")), client_id="x")
    session = FakeTokenEndpoint(granted("access-1", "next-rt"))
    make_auth(session, store, configured="re-authorized-rt").header()
    assert session.bodies[0]["refresh_token"] == "re-authorized-rt"
    assert store.read().seed_sha256 == seed_hash("re-authorized-rt")


def test_no_token_anywhere_says_how_to_get_one(store):
    auth = make_auth(FakeTokenEndpoint(), store, configured=None)
    with pytest.raises(
        AuthenticationError, match="target-anaplan-admin login --client-id my-client"
    ):
        auth.header()


@pytest.mark.parametrize("status", [400, 401, 403])
def test_invalid_grant_explains_how_to_reauthorize_without_the_token(store, status):
    session = FakeTokenEndpoint((status, {"error": "invalid_grant", "error_description": "used"}))
    with pytest.raises(AuthenticationError) as caught:
        make_auth(session, store).header()
    message = str(caught.value)
    assert "no longer accepts the OAuth refresh token" in message
    assert "target-anaplan-admin login --client-id my-client" in message
    assert str(store.path) in message
    assert "configured-rt" not in message
    assert SECRET not in message
    assert caught.value.__suppress_context__  # no chained traceback with the server's text


def test_server_errors_are_transient(store):
    session = FakeTokenEndpoint((503, {}))
    with pytest.raises(TransientError):
        make_auth(session, store).header()


def test_other_oauth_errors_name_the_error_code(store):
    session = FakeTokenEndpoint((401, {"error": "invalid_client"}))
    with pytest.raises(AuthenticationError, match=r"invalid_client.*oauth_client_secret"):
        make_auth(session, store).header()


def test_lifespan_margin():
    assert lifespan_margin_s(43_200) == 21_600  # 12 h: half of it, not a whole day
    assert lifespan_margin_s(864_000) == 86_400  # 10 days: one day
    assert lifespan_margin_s(31_556_926) == pytest.approx(3_155_692.6)  # 1 year: 10 %


def test_lifespan_warning_once_per_run_when_a_rotating_token_nears_its_end(store, caplog):
    lifespan = 864_000
    issued = NOW - lifespan + 3600  # an hour left
    store.write(StoredToken("stored-rt", issued, None, rotating=True), client_id="my-client")
    session = FakeTokenEndpoint(granted("a1", "r1"), granted("a2", "r2"))
    auth = make_auth(session, store, configured=None, lifespan_s=lifespan)

    with caplog.at_level(logging.WARNING):
        auth.header()
        auth.invalidate("AnaplanAuthToken a1")
        auth.header()

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "expires in about 60 minutes" in warnings[0]
    assert "target-anaplan-admin login" in warnings[0]
    assert "stored-rt" not in warnings[0]


@pytest.mark.parametrize(("age_s", "rotating"), [(100, True), (864_000 - 3600, False)])
def test_no_lifespan_warning_when_far_from_the_end_or_not_rotating(store, caplog, age_s, rotating):
    store.write(StoredToken("stored-rt", NOW - age_s, None, rotating=rotating), client_id="c")
    session = FakeTokenEndpoint(granted("a1", "stored-rt"))
    auth = make_auth(session, store, configured=None, lifespan_s=864_000)
    with caplog.at_level(logging.WARNING):
        auth.header()
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


def test_a_non_rotating_login_token_is_marked_so(store):
    store.write(StoredToken("login-rt", NOW - 10, None), client_id="my-client")
    make_auth(FakeTokenEndpoint(granted("a1", "login-rt")), store, configured=None).header()
    assert store.read() == StoredToken("login-rt", NOW - 10, None, rotating=False)


def test_repr_holds_no_secret(store):
    auth = make_auth(FakeTokenEndpoint(), store)
    assert "configured-rt" not in repr(auth)
    assert SECRET not in repr(auth)


def test_an_unusable_store_fails_before_the_token_is_spent(tmp_path):
    (tmp_path / "not-a-dir").write_text("")
    session = FakeTokenEndpoint(granted("a1", "r1"))
    auth = make_auth(session, TokenStore(tmp_path / "not-a-dir" / "store.json"))
    with pytest.raises(AuthenticationError, match="Cannot create the directory of the OAuth token"):
        auth.header()
    assert session.bodies == []
