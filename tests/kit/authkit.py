"""Helpers for the AuthService unit tests: a fake clock, a scenario, request shorthands."""

from __future__ import annotations

import base64
import json
import time
from typing import Any
from urllib.parse import urlencode

from target_anaplan.simulator import load_scenario
from target_anaplan.simulator.auth import AuthService
from target_anaplan.simulator.wire import Request

EMAIL = "integration@example.com"
PASSWORD = "demo-password"
LIFETIME_S = 2100
ROTATING_LIFESPAN_S = 3600


class FakeClock:
    """Starts at real time (certificates and v2 timestamps are checked against it)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def scenario(certificates: list[str] | None = None) -> dict[str, Any]:
    """One user and one OAuth client of each kind the simulator knows."""
    return {
        "token_lifetime_s": LIFETIME_S,
        "users": [{"email": EMAIL, "password": PASSWORD, "certificates": certificates or []}],
        "oauth_clients": [
            {"client_id": "code-client", "client_secret": "code-secret",
             "grant": "authorization_code", "rotating": False, "user": EMAIL,
             "refresh_tokens": ["static-refresh"],
             "redirect_uris": ["https://example.com/callback", "https://example.com/cb?x=1"]},
            {"client_id": "rotating-client", "client_secret": "rotating-secret",
             "grant": "authorization_code", "rotating": True, "user": EMAIL,
             "refresh_tokens": ["first-refresh"], "redirect_uris": ["https://example.com/callback"],
             "refresh_token_lifespan_s": ROTATING_LIFESPAN_S},
            {"client_id": "device-client", "grant": "device", "rotating": True, "user": EMAIL,
             "refresh_tokens": []},
        ],
    }  # fmt: skip


def service(certificates: list[str] | None = None) -> tuple[AuthService, FakeClock]:
    return service_for(scenario(certificates))


def service_for(raw: dict[str, Any]) -> tuple[AuthService, FakeClock]:
    """The auth service of a scenario dict (e.g. `scenario()` with keys changed)."""
    clock = FakeClock()
    return AuthService(load_scenario(raw), clock), clock


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def call(
    auth: AuthService,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    query: dict[str, list[str]] | None = None,
) -> tuple[int, Any, dict[str, str]]:
    """One request straight to the service: (status, JSON body or text or None, headers)."""
    answer = auth.handle(request(method, path, headers or {}, body, query))
    assert answer is not None, f"{path} is not an auth path"
    return answer.status, _decoded(answer.body, answer.headers), answer.headers


def request(
    method: str,
    path: str,
    headers: Any = None,
    body: bytes = b"",
    query: dict[str, list[str]] | None = None,
) -> Request:
    """A request as the simulator's server would hand it over, from host sim.test."""
    return Request(method, path, query or {}, headers or {}, body, base_url="http://sim.test")


def _decoded(body: bytes, headers: dict[str, str]) -> Any:
    if not body:
        return None
    if headers.get("Content-Type", "").startswith("application/json"):
        return json.loads(body)
    return body.decode("utf-8")


def login(auth: AuthService) -> str:
    status, body, _ = call(
        auth, "POST", "/token/authenticate", headers={"Authorization": basic(EMAIL, PASSWORD)}
    )
    assert status == 201, body
    return body["tokenInfo"]["tokenValue"]


def with_token(token: str, scheme: str = "AnaplanAuthToken") -> dict[str, str]:
    return {"Authorization": f"{scheme} {token}"}


def oauth(
    auth: AuthService,
    path: str,
    params: dict[str, str],
    *,
    form: bool = False,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, dict[str, str]]:
    """POST an OAuth request as JSON (PM, JAVA) or as a form (oauthlib)."""
    if form:
        content_type, body = "application/x-www-form-urlencoded", urlencode(params).encode()
    else:
        content_type, body = "application/json", json.dumps(params).encode()
    return call(
        auth, "POST", path, headers={"Content-Type": content_type, **(headers or {})}, body=body
    )
