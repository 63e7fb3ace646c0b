"""OAuth 2.0 (/oauth/*, /auth/*): refresh modes, device grant, authorization code grant."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.kit.authkit import EMAIL, LIFETIME_S, ROTATING_LIFESPAN_S, call, oauth, service

DEVICE = "urn:ietf:params:oauth:grant-type:device_code"
CODE_CLIENT = {"client_id": "code-client", "client_secret": "code-secret"}
ROTATING_CLIENT = {"client_id": "rotating-client", "client_secret": "rotating-secret"}


def refresh(auth, client, token, **kwargs):
    return oauth(
        auth,
        "/oauth/token",
        {"grant_type": "refresh_token", "refresh_token": token, **client},
        **kwargs,
    )


@pytest.mark.parametrize("form", [False, True], ids=["json", "form"])
def test_refresh_grant_answers_json_and_form_bodies(form):
    auth, _ = service()
    status, body, _ = refresh(auth, CODE_CLIENT, "static-refresh", form=form)
    assert status == 200
    assert body["expires_in"] == LIFETIME_S
    assert (body["token_type"], body["scope"]) == ("Bearer", "openid email offline_access")
    for scheme in ("AnaplanAuthToken", "Bearer"):
        assert auth.authenticate_api(f"{scheme} {body['access_token']}") == EMAIL


def test_client_credentials_may_come_as_http_basic():
    auth, _ = service()
    header = "Basic " + base64.b64encode(b"code-client:code-secret").decode()
    params = {"grant_type": "refresh_token", "refresh_token": "static-refresh"}
    status, _, _ = oauth(auth, "/oauth/token", params, form=True, headers={"Authorization": header})
    assert status == 200


def test_non_rotating_refresh_token_is_reusable_and_returned_unchanged():
    auth, _ = service()
    first = refresh(auth, CODE_CLIENT, "static-refresh")[1]
    second = refresh(auth, CODE_CLIENT, "static-refresh")[1]
    assert first["refresh_token"] == second["refresh_token"] == "static-refresh"
    assert first["access_token"] != second["access_token"]


def test_rotating_refresh_token_is_single_use():
    auth, _ = service()
    status, body, _ = refresh(auth, ROTATING_CLIENT, "first-refresh")
    assert status == 200
    assert body["refresh_token"] != "first-refresh"
    status, error, _ = refresh(auth, ROTATING_CLIENT, "first-refresh")
    assert (status, error["error"]) == (400, "invalid_grant")
    assert error["error_description"]
    assert refresh(auth, ROTATING_CLIENT, body["refresh_token"])[0] == 200


def test_rotating_refresh_token_dies_after_its_lifespan():
    auth, clock = service()
    clock.advance(ROTATING_LIFESPAN_S + 1)
    status, error, _ = refresh(auth, ROTATING_CLIENT, "first-refresh")
    assert (status, error["error"]) == (400, "invalid_grant")


def test_reset_restores_the_scenario_refresh_tokens():
    auth, _ = service()
    refresh(auth, ROTATING_CLIENT, "first-refresh")
    auth.reset()
    assert refresh(auth, ROTATING_CLIENT, "first-refresh")[0] == 200


@pytest.mark.parametrize(
    ("client", "token"), [(CODE_CLIENT, "no-such-token"), (ROTATING_CLIENT, "static-refresh")]
)
def test_unknown_or_foreign_refresh_token_is_invalid_grant(client, token):
    auth, _ = service()
    status, error, _ = refresh(auth, client, token)
    assert (status, error["error"]) == (400, "invalid_grant")


@pytest.mark.parametrize(
    "client",
    [
        {"client_id": "code-client", "client_secret": "wrong"},
        {"client_id": "code-client"},
        {"client_id": "nobody"},
    ],
)
def test_wrong_client_or_secret_is_invalid_client(client):
    auth, _ = service()
    status, error, _ = refresh(auth, client, "static-refresh")
    assert (status, error["error"]) == (401, "invalid_client")


def test_unsupported_grant_and_unreadable_body_are_400():
    auth, _ = service()
    assert (
        oauth(auth, "/oauth/token", {"grant_type": "password", **CODE_CLIENT})[1]["error"]
        == "unsupported_grant_type"
    )
    status, error, _ = call(
        auth,
        "POST",
        "/oauth/token",
        headers={"Content-Type": "application/json"},
        body=b"{not json",
    )
    assert (status, error["error"]) == (400, "invalid_request")


def start_device_login(auth):
    status, body, _ = oauth(
        auth, "/oauth/device/code", {"client_id": "device-client", "scope": "openid email"}
    )
    assert status == 200
    return body


def poll(auth, device_code, client_id="device-client"):
    params = {"grant_type": DEVICE, "client_id": client_id, "device_code": device_code}
    return oauth(auth, "/oauth/token", params, form=True)


def test_device_code_answer_has_the_documented_shape():
    auth, _ = service()
    body = start_device_login(auth)
    assert body["user_code"][4] == "-" and len(body["user_code"]) == 9
    assert (body["expires_in"], body["interval"]) == (900, 5)
    assert body["verification_uri"] == "http://sim.test/auth/device"
    assert body["verification_uri_complete"].endswith(f"user_code={body['user_code']}")
    assert call(auth, "GET", "/auth/device", query={"user_code": [body["user_code"]]})[0] == 200


def test_device_flow_pending_slow_down_then_tokens_after_approval():
    auth, clock = service()
    login = start_device_login(auth)
    assert poll(auth, login["device_code"])[1]["error"] == "authorization_pending"
    clock.advance(1)
    assert poll(auth, login["device_code"])[1]["error"] == "slow_down"
    clock.advance(5)
    assert poll(auth, login["device_code"])[1]["error"] == "authorization_pending"
    assert auth.approve_device(login["user_code"].lower().replace("-", ""))
    status, body, _ = poll(auth, login["device_code"])
    assert status == 200
    assert auth.authenticate_api(f"AnaplanAuthToken {body['access_token']}") == EMAIL
    refreshed = refresh(auth, {"client_id": "device-client"}, body["refresh_token"])
    assert refreshed[0] == 200  # device clients refresh without a secret
    assert poll(auth, login["device_code"])[1]["error"] == "invalid_grant"  # device_code used


def test_device_code_expires():
    auth, clock = service()
    login = start_device_login(auth)
    clock.advance(900)
    assert not auth.approve_device(login["user_code"])
    status, error, _ = poll(auth, login["device_code"])
    assert (status, error["error"]) == (400, "expired_token")


def test_each_client_serves_one_grant_type():
    auth, _ = service()
    status, error, _ = oauth(auth, "/oauth/device/code", {"client_id": "code-client"})
    assert (status, error["error"]) == (400, "unauthorized_client")
    login = start_device_login(auth)
    params = {"grant_type": DEVICE, "device_code": login["device_code"], **CODE_CLIENT}
    assert oauth(auth, "/oauth/token", params)[1]["error"] == "unauthorized_client"
    assert not auth.approve_device("BCDF-GHJK")


def authorize(auth, path="/auth/authorize", redirect_uri="https://example.com/callback"):
    query = {
        "response_type": ["code"],
        "client_id": ["code-client"],
        "redirect_uri": [redirect_uri],
        "scope": ["openid profile email offline_access"],
        "state": ["xyz"],
    }
    return call(auth, "GET", path, query=query)


def exchange(auth, code, redirect_uri="https://example.com/callback"):
    params = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        **CODE_CLIENT,
    }
    return oauth(auth, "/oauth/token", params)


def test_authorization_code_flow():
    auth, _ = service()
    status, body, headers = authorize(auth)
    assert (status, body) == (302, None)
    location = urlsplit(headers["Location"])
    assert location._replace(query="").geturl() == "https://example.com/callback"
    params = parse_qs(location.query)
    assert params["state"] == ["xyz"]
    status, tokens, _ = exchange(auth, params["code"][0])
    assert status == 200
    assert auth.authenticate_api(f"Bearer {tokens['access_token']}") == EMAIL
    assert refresh(auth, CODE_CLIENT, tokens["refresh_token"])[0] == 200
    status, error, _ = exchange(auth, params["code"][0])
    assert (status, error["error"]) == (400, "invalid_grant")  # codes are single use


def test_redirect_uri_with_a_query_keeps_it():
    auth, _ = service()
    location = authorize(auth, redirect_uri="https://example.com/cb?x=1")[2]["Location"]
    assert parse_qs(urlsplit(location).query).keys() == {"x", "code", "state"}


def test_unregistered_redirect_uri_is_refused():
    auth, _ = service()
    status, error, headers = authorize(auth, redirect_uri="https://evil.example.com/callback")
    assert status == 400
    assert "Location" not in headers
    assert error["error"] == "invalid_request"


def test_code_exchange_checks_the_redirect_uri():
    auth, _ = service()
    code = parse_qs(urlsplit(authorize(auth)[2]["Location"]).query)["code"][0]
    assert exchange(auth, code, "https://example.com/cb?x=1")[1]["error"] == "invalid_grant"


def test_prelogin_page_links_to_the_callback():
    auth, _ = service()
    status, page, headers = authorize(auth, path="/auth/prelogin")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert 'href="https://example.com/callback?code=' in page
