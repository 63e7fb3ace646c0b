"""Auth service (/token/*): basic login, refresh, validate, logout, expiry."""

from __future__ import annotations

import base64
import email.message
import re
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.kit.authkit import (
    EMAIL,
    LIFETIME_S,
    PASSWORD,
    basic,
    call,
    login,
    request,
    service,
    with_token,
)


def test_basic_login_returns_201_and_the_documented_envelope():
    auth, clock = service()
    status, body, _ = call(
        auth, "POST", "/token/authenticate", headers={"Authorization": basic(EMAIL, PASSWORD)}
    )
    assert status == 201
    assert body["meta"] == {"validationUrl": "http://sim.test/token/validate"}
    assert (body["status"], body["statusMessage"]) == ("SUCCESS", "Login successful")
    info = body["tokenInfo"]
    assert info["expiresAt"] == int((clock.now + LIFETIME_S) * 1000)
    assert uuid.UUID(info["tokenId"]) != uuid.UUID(info["refreshTokenId"])
    assert all(ch in info["tokenValue"] for ch in ".+/=")
    assert auth.authenticate_api(f"AnaplanAuthToken {info['tokenValue']}") == EMAIL


@pytest.mark.parametrize(("user", "password"), [(EMAIL, "wrong"), ("nobody@example.com", PASSWORD)])
def test_bad_credentials_get_401(user, password):
    auth, _ = service()
    status, body, _ = call(
        auth, "POST", "/token/authenticate", headers={"Authorization": basic(user, password)}
    )
    assert status == 401
    assert body["status"] == "FAILURE_BAD_CREDENTIAL"
    assert body["statusMessage"]


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Basic",
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Digest abc",
    ],
)
def test_malformed_header_gets_400(header):
    auth, _ = service()
    headers = {"Authorization": header} if header else {}
    status, body, _ = call(auth, "POST", "/token/authenticate", headers=headers)
    assert (status, body["status"]) == (400, "FAILURE_BAD_HEADER")


def test_headers_are_matched_case_insensitively():
    auth, _ = service()
    headers = email.message.Message()
    headers["authorization"] = basic(EMAIL, PASSWORD)
    answer = auth.handle(request("POST", "/token/authenticate", headers))
    assert answer.status == 201


def test_refresh_keeps_the_token_value_and_extends_expiry():
    auth, clock = service()
    token = login(auth)
    clock.advance(600)
    status, body, _ = call(auth, "POST", "/token/refresh", headers=with_token(token))
    assert (status, body["statusMessage"]) == (200, "Token refreshed")
    assert body["tokenInfo"]["tokenValue"] == token
    assert body["tokenInfo"]["expiresAt"] == int((clock.now + LIFETIME_S) * 1000)
    clock.advance(LIFETIME_S - 1)  # alive past the original expiry
    assert auth.authenticate_api(f"AnaplanAuthToken {token}") == EMAIL


def test_validate_names_the_user():
    auth, _ = service()
    status, body, _ = call(auth, "GET", "/token/validate", headers=with_token(login(auth)))
    assert (status, body["status"], body["statusMessage"]) == (200, "SUCCESS", "Token validated")
    assert set(body["tokenInfo"]) == {"expiresAt", "tokenId"}
    user = body["userInfo"]
    assert user["userId"] == EMAIL
    assert re.fullmatch("[0-9a-f]{32}", user["userGuid"])
    assert re.fullmatch("[0-9a-f]{32}", user["customerGuid"])


def test_logout_kills_the_token():
    auth, _ = service()
    token = login(auth)
    assert call(auth, "POST", "/token/logout", headers=with_token(token)) == (204, None, {})
    assert call(auth, "GET", "/token/validate", headers=with_token(token))[0] == 401
    assert auth.authenticate_api(f"AnaplanAuthToken {token}") is None


def test_expired_token_gets_401_everywhere():
    auth, clock = service()
    token = login(auth)
    clock.advance(LIFETIME_S)
    for method, path in [
        ("GET", "/token/validate"),
        ("POST", "/token/refresh"),
        ("POST", "/token/logout"),
    ]:
        status, body, _ = call(auth, method, path, headers=with_token(token))
        assert (status, body["status"]) == (401, "FAILURE_BAD_CREDENTIAL"), path
    assert auth.authenticate_api(f"AnaplanAuthToken {token}") is None


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/token/validate", 400),
        ("POST", "/token/refresh", 400),
        ("POST", "/token/logout", 401),
    ],
)
def test_auth_api_refuses_bearer(method, path, expected):
    auth, _ = service()
    status, _, _ = call(auth, method, path, headers=with_token(login(auth), "Bearer"))
    assert status == expected


@pytest.mark.parametrize(
    "template", ["AnaplanAuthToken {}", "Bearer {}", "AnaplanAuthToken:{}", "anaplanauthtoken  {}"]
)
def test_integration_api_accepts_every_token_header_variant(template):
    auth, _ = service()
    assert auth.authenticate_api(template.format(login(auth))) == EMAIL


@pytest.mark.parametrize(
    "header", [None, "", "AnaplanAuthToken", "AnaplanAuthToken unknown", "Basic abc"]
)
def test_integration_api_refuses_anything_else(header):
    auth, _ = service()
    login(auth)
    assert auth.authenticate_api(header) is None


def test_reset_forgets_issued_tokens():
    auth, _ = service()
    token = login(auth)
    auth.reset()
    assert auth.authenticate_api(f"AnaplanAuthToken {token}") is None


def test_only_auth_paths_are_handled():
    auth, _ = service()
    assert auth.handle(request("GET", "/2/0/workspaces")) is None
    assert auth.handle(request("GET", "/authority")) is None
    assert call(auth, "GET", "/token/unknown")[0] == 404
    assert call(auth, "GET", "/token/authenticate")[0] == 405
    assert (
        call(
            auth, "POST", "/token/authenticate/", headers={"Authorization": basic(EMAIL, PASSWORD)}
        )[0]
        == 201
    )


def test_concurrent_logins_get_distinct_working_tokens():
    auth, _ = service()
    with ThreadPoolExecutor(max_workers=8) as pool:
        tokens = list(pool.map(lambda _: login(auth), range(40)))
    assert len(set(tokens)) == 40
    assert all(auth.authenticate_api(f"AnaplanAuthToken {t}") == EMAIL for t in tokens)


def test_a_scenario_certificate_that_is_not_pem_is_named():
    with pytest.raises(ValueError, match=r"users\[integration@example.com\].certificates\[0\]"):
        service(["not a certificate"])
