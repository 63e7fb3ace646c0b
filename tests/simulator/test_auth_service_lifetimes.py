"""Token lifetimes: the scenario's, a user's own, an OAuth client's own access tokens."""

from __future__ import annotations

import pytest

from target_anaplan.simulator import ScenarioError, load_scenario
from tests.kit.authkit import (
    EMAIL,
    LIFETIME_S,
    basic,
    call,
    login,
    oauth,
    scenario,
    service_for,
    with_token,
)

SHORT_S = 60
OTHER = {"email": "batch@example.com", "password": "batch-password"}


def refresh(auth, client_id: str, secret: str, token: str):
    params = {"grant_type": "refresh_token", "refresh_token": token,
              "client_id": client_id, "client_secret": secret}  # fmt: skip
    return oauth(auth, "/oauth/token", params)


def test_a_user_with_a_short_lifetime_gets_short_tokens_and_others_do_not():
    raw = scenario()
    raw["users"][0]["token_lifetime_s"] = SHORT_S
    raw["users"].append(OTHER)
    auth, clock = service_for(raw)
    short = login(auth)
    headers = {"Authorization": basic(OTHER["email"], OTHER["password"])}
    status, body, _ = call(auth, "POST", "/token/authenticate", headers=headers)
    assert status == 201
    assert body["tokenInfo"]["expiresAt"] == int((clock.now + LIFETIME_S) * 1000)
    usual = body["tokenInfo"]["tokenValue"]
    refreshed = call(auth, "POST", "/token/refresh", headers=with_token(short))[1]
    assert refreshed["tokenInfo"]["expiresAt"] == int((clock.now + SHORT_S) * 1000)
    clock.advance(SHORT_S + 1)
    assert auth.authenticate_api(f"AnaplanAuthToken {short}") is None
    assert auth.authenticate_api(f"AnaplanAuthToken {usual}") == OTHER["email"]


def test_an_oauth_client_can_issue_access_tokens_of_its_own_lifetime():
    raw = scenario()
    rotating = next(c for c in raw["oauth_clients"] if c["client_id"] == "rotating-client")
    rotating["access_token_lifetime_s"] = SHORT_S
    auth, clock = service_for(raw)
    status, body, _ = refresh(auth, "rotating-client", "rotating-secret", "first-refresh")
    assert (status, body["expires_in"]) == (200, SHORT_S)
    usual = refresh(auth, "code-client", "code-secret", "static-refresh")[1]
    assert usual["expires_in"] == LIFETIME_S
    clock.advance(SHORT_S + 1)
    assert auth.authenticate_api(f"Bearer {body['access_token']}") is None
    assert auth.authenticate_api(f"Bearer {usual['access_token']}") == EMAIL


def test_oauth_access_tokens_follow_the_user_when_the_client_sets_none():
    raw = scenario()
    raw["users"][0]["token_lifetime_s"] = SHORT_S
    auth, _ = service_for(raw)
    body = refresh(auth, "code-client", "code-secret", "static-refresh")[1]
    assert body["expires_in"] == SHORT_S


@pytest.mark.parametrize(
    ("change", "message"),
    [({"token_lifetime_s": 0}, "'token_lifetime_s' must be a positive number"),
     ({"users": [{"email": EMAIL, "token_lifetime_s": "long"}]},
      f"user {EMAIL}: 'token_lifetime_s'"),
     ({"oauth_clients": [{"client_id": "c", "user": "nobody@example.com"}]},
      "oauth client c: user 'nobody@example.com' is not one of the scenario's users"),
     ({"oauth_clients": [{"client_id": "c", "user": EMAIL, "grant": "password"}]},
      "oauth client c: grant 'password'"),
     ({"oauth_clients": [{"client_id": "c", "user": EMAIL, "access_token_lifetime_s": -5}]},
      "oauth client c: 'access_token_lifetime_s'")],
)  # fmt: skip
def test_lifetime_and_client_mistakes_are_named_at_start_up(change, message):
    with pytest.raises(ScenarioError, match=message):
        load_scenario({**scenario(), **change})
