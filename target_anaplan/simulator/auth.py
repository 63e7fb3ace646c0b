"""Fake Anaplan sign-in: auth-service tokens (basic, CA certificate) and OAuth 2.0.

One AuthService owns every credential the simulator hands out, so `/token/*`, `/oauth/*`,
`/auth/*` and the `/2/0` token check all read the same tables. Behaviour follows
anaplan-api.md §2; where sources disagree, every variant a real client sends is accepted.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import re
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlencode

from cryptography import x509

from target_anaplan.simulator import certs
from target_anaplan.simulator.scenario import OAuthClientDef, Scenario, UserDef, user_guid
from target_anaplan.simulator.wire import Request, Response, json_response

logger = logging.getLogger(__name__)

DEVICE_CODE_LIFETIME_S = 900
DEVICE_POLL_INTERVAL_S = 5
AUTH_CODE_LIFETIME_S = 600
GRANTED_SCOPE = "openid email offline_access"  # Anaplan drops "profile" from the grant
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
BAD_CREDENTIAL = "FAILURE_BAD_CREDENTIAL"
BAD_HEADER = "FAILURE_BAD_HEADER"

_AUTH_PREFIXES = ("/token/", "/oauth/", "/auth/")
_USER_CODE_LETTERS = "BCDFGHJKLMNPQRSTVWXZ"  # no vowels: no words, no 0/O or 1/I mix-ups
_TOKEN_MARKER = b"\xfb\xff\xbf"  # base64 "+/+/": every token carries the awkward characters
# "Scheme value", also "Scheme:value" and "Scheme: value" as in some Anaplan help pages.
_AUTHORIZATION = re.compile(r"^\s*([A-Za-z]+)\s*(?::\s*|\s+)(\S+)\s*$")
_CUSTOMER_GUID = uuid.uuid5(uuid.NAMESPACE_URL, "anaplan-simulator:customer").hex


@dataclass
class _Session:
    """An auth-service token (also what an OAuth access token maps to)."""

    value: str
    token_id: str
    refresh_token_id: str
    email: str
    lifetime_s: float
    expires_at: float


@dataclass
class _RefreshToken:
    client_id: str
    email: str
    issued_at: float


@dataclass
class _DeviceLogin:
    device_code: str
    user_code: str
    client_id: str
    expires_at: float
    last_poll: float | None = None
    approved: bool = False


@dataclass
class _AuthCode:
    client_id: str
    redirect_uri: str
    expires_at: float


class _TokenError(Exception):
    """An auth-service (`/token/*`) refusal in Anaplan's status/statusMessage shape."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.response = json_response(status, {"status": code, "statusMessage": message})


class _OAuthError(Exception):
    """An RFC 6749 style refusal from the OAuth endpoints."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        body = {"error": error, "error_description": description}
        self.response = json_response(status, body, {"Cache-Control": "no-store"})


class AuthService:
    """Issues, refreshes and checks every simulated credential; thread safe (one lock)."""

    def __init__(self, scenario: Scenario, clock: Callable[[], float]) -> None:
        self._scenario = scenario
        self._clock = clock
        self._clients = scenario.oauth_clients
        self._lock = threading.Lock()
        self._routes: dict[tuple[str, str], Callable[[Request], Response]] = {
            ("POST", "/token/authenticate"): self._authenticate,
            ("POST", "/token/refresh"): self._refresh,
            ("GET", "/token/validate"): self._validate,
            ("POST", "/token/logout"): self._logout,
            ("POST", "/oauth/token"): self._oauth_token,
            ("POST", "/oauth/device/code"): self._device_code,
            ("GET", "/auth/authorize"): self._authorize,
            ("GET", "/auth/prelogin"): self._prelogin,
            ("GET", "/auth/device"): self._device_page,
        }
        self.reset()

    # -- public interface -------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every issued credential and run-time certificate: back to the scenario's."""
        with self._lock:
            now = self._clock()
            self._sessions: dict[str, _Session] = {}
            self._devices: dict[str, _DeviceLogin] = {}
            self._codes: dict[str, _AuthCode] = {}
            self._refresh_tokens = {
                token: _RefreshToken(client.client_id, client.user, now)
                for client in self._clients.values()
                for token in client.refresh_tokens
            }
            self._cert_owners = {
                certs.fingerprint(certificate): user.email
                for user in self._scenario.users.values()
                for certificate in user.certificates
            }

    def register_certificate(self, user: UserDef, certificate: x509.Certificate) -> str:
        """Let the user log in with this certificate from now on; returns its fingerprint."""
        fingerprint = certs.fingerprint(certificate)
        with self._lock:
            self._cert_owners[fingerprint] = user.email
        return fingerprint

    def handle(self, req: Request) -> Response | None:
        """Answer a `/token/`, `/oauth/` or `/auth/` request; None for any other path."""
        path = req.path.split("?", 1)[0].rstrip("/")
        if not (path + "/").startswith(_AUTH_PREFIXES):
            return None
        route = self._routes.get((req.method.upper(), path))
        if route is None:
            return self._no_route(req.method, path)
        with self._lock:
            try:
                return route(req)
            except (_TokenError, _OAuthError) as refusal:
                logger.info("auth refused %s %s: %s", req.method, path, refusal)  # no secrets
                return refusal.response

    def authenticate_api(self, authorization: str | None) -> str | None:
        """The user behind `AnaplanAuthToken <t>` or `Bearer <t>` for a `/2/0` call."""
        parsed = _split_authorization(authorization)
        if parsed is None or parsed[0] not in ("anaplanauthtoken", "bearer"):
            return None
        with self._lock:
            session = self._live_session(parsed[1])
            return session.email if session else None

    def approve_device(self, user_code: str) -> bool:
        """Play the user who enters the code at verification_uri; False if none is pending."""
        wanted = _normal_user_code(user_code)
        with self._lock:
            now = self._clock()
            for login in self._devices.values():
                if _normal_user_code(login.user_code) == wanted and now < login.expires_at:
                    login.approved = True
                    return True
            return False

    # -- auth service: /token/* -------------------------------------------------------------

    def _authenticate(self, req: Request) -> Response:
        parsed = _split_authorization(req.header("Authorization"))
        if parsed is not None and parsed[0] == "basic":
            email = self._check_password(parsed[1])
        elif parsed is not None and parsed[0] == "cacertificate":
            email = self._check_certificate(parsed[1], req)
        else:
            raise _TokenError(
                400, BAD_HEADER, "Authorization must be 'Basic ...' or 'CACertificate ...'"
            )
        session = self._open_session(email, self._user_lifetime(email))
        logger.info("login for %s", email)
        return json_response(201, _token_envelope(session, "Login successful", req))

    def _check_password(self, credentials: str) -> str:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, ValueError) as exc:
            raise _TokenError(400, BAD_HEADER, "Basic credentials are not base64") from exc
        username, colon, password = decoded.partition(":")
        if not colon:
            raise _TokenError(400, BAD_HEADER, "Basic credentials must be 'user:password'")
        user = self._scenario.user(username)
        if user is None or not _same_secret(password, user.password):
            raise _TokenError(401, BAD_CREDENTIAL, "Invalid username or password")
        return user.email

    def _check_certificate(self, credentials: str, req: Request) -> str:
        try:
            certificate = certs.certificate_from_header(credentials)
            email = self._cert_owners.get(certs.fingerprint(certificate))
            if email is None:
                raise certs.CertificateError(401, "The certificate is not registered for any user")
            certs.verify_login(certificate, _certificate_payload(req), self._clock())
        except certs.CertificateError as exc:
            code = BAD_HEADER if exc.status == 400 else BAD_CREDENTIAL
            raise _TokenError(exc.status, code, exc.message) from exc
        return email

    def _refresh(self, req: Request) -> Response:
        session = self._session_for(req, bearer_status=400)
        session.expires_at = self._clock() + session.lifetime_s
        return json_response(200, _token_envelope(session, "Token refreshed", req))

    def _validate(self, req: Request) -> Response:
        session = self._session_for(req, bearer_status=400)
        body = {
            "status": "SUCCESS",
            "statusMessage": "Token validated",
            "tokenInfo": {"expiresAt": _ms(session.expires_at), "tokenId": session.token_id},
            "userInfo": {
                "userGuid": user_guid(session.email),
                "userId": session.email,
                "customerGuid": _CUSTOMER_GUID,
            },
        }
        return json_response(200, body)

    def _logout(self, req: Request) -> Response:
        session = self._session_for(req, bearer_status=401)
        del self._sessions[session.value]
        return Response(204)

    def _session_for(self, req: Request, bearer_status: int) -> _Session:
        """The live session named by `AnaplanAuthToken`; the auth API refuses Bearer."""
        parsed = _split_authorization(req.header("Authorization"))
        if parsed is not None and parsed[0] == "bearer":
            raise _TokenError(bearer_status, BAD_HEADER, "Use 'AnaplanAuthToken', not Bearer")
        if parsed is None or parsed[0] != "anaplanauthtoken":
            raise _TokenError(401, BAD_CREDENTIAL, "An AnaplanAuthToken header is required")
        session = self._live_session(parsed[1])
        if session is None:
            raise _TokenError(401, BAD_CREDENTIAL, "The token is invalid, expired or logged out")
        return session

    def _open_session(self, email: str, lifetime_s: float) -> _Session:
        session = _Session(
            value=_opaque_token(),
            token_id=str(uuid.uuid4()),
            refresh_token_id=str(uuid.uuid4()),
            email=email,
            lifetime_s=lifetime_s,
            expires_at=self._clock() + lifetime_s,
        )
        self._sessions[session.value] = session
        return session

    def _user_lifetime(self, email: str) -> float:
        """The user's own token lifetime, else the scenario's."""
        user = self._scenario.user(email)
        own = user.token_lifetime_s if user is not None else None
        return own or self._scenario.token_lifetime_s

    def _live_session(self, value: str) -> _Session | None:
        session = self._sessions.get(value)
        if session is not None and self._clock() >= session.expires_at:
            del self._sessions[value]
            return None
        return session

    # -- OAuth: /oauth/* --------------------------------------------------------------------

    def _oauth_token(self, req: Request) -> Response:
        params = _oauth_params(req)
        grants = {
            "authorization_code": self._grant_code,
            "refresh_token": self._grant_refresh,
            DEVICE_GRANT: self._grant_device,
        }
        grant = grants.get(params.get("grant_type", ""))
        if grant is None:
            raise _OAuthError(400, "unsupported_grant_type", "Unsupported grant_type")
        return grant(self._authenticated_client(req, params), params)

    def _grant_code(self, client: OAuthClientDef, params: dict[str, str]) -> Response:
        _require_grant(client, "authorization_code")
        code = self._codes.pop(str(params.get("code") or ""), None)
        if code is None or code.client_id != client.client_id or self._clock() >= code.expires_at:
            raise _OAuthError(400, "invalid_grant", "The code is unknown, used or expired")
        if params.get("redirect_uri") not in (None, code.redirect_uri):
            raise _OAuthError(400, "invalid_grant", "redirect_uri differs from the authorize call")
        return self._issue(client, self._new_refresh_token(client))

    def _grant_refresh(self, client: OAuthClientDef, params: dict[str, str]) -> Response:
        value = str(params.get("refresh_token") or "")
        token = self._refresh_tokens.get(value)
        if token is None or token.client_id != client.client_id:
            raise _OAuthError(400, "invalid_grant", "The refresh token is unknown, revoked or used")
        if not client.rotating:
            return self._issue(client, value, token.email)
        del self._refresh_tokens[value]  # rotating tokens are single use
        lifespan = client.refresh_token_lifespan_s
        if lifespan is not None and self._clock() - token.issued_at > lifespan:
            raise _OAuthError(400, "invalid_grant", "The refresh token expired; authorize again")
        return self._issue(client, self._new_refresh_token(client, token.email), token.email)

    def _grant_device(self, client: OAuthClientDef, params: dict[str, str]) -> Response:
        _require_grant(client, "device")
        login = self._devices.get(str(params.get("device_code") or ""))
        if login is None or login.client_id != client.client_id:
            raise _OAuthError(400, "invalid_grant", "The device_code is unknown or used")
        now = self._clock()
        if now >= login.expires_at:
            raise _OAuthError(400, "expired_token", "The device_code expired; start again")
        if not login.approved:
            raise _still_pending(login, now)
        del self._devices[login.device_code]
        return self._issue(client, self._new_refresh_token(client))

    def _device_code(self, req: Request) -> Response:
        params = _oauth_params(req)
        client = self._clients.get(params.get("client_id", ""))
        if client is None:
            raise _OAuthError(401, "invalid_client", "Unknown client_id")
        _require_grant(client, "device")
        login = _DeviceLogin(
            device_code=secrets.token_urlsafe(32),
            user_code=self._new_user_code(),
            client_id=client.client_id,
            expires_at=self._clock() + DEVICE_CODE_LIFETIME_S,
        )
        self._devices[login.device_code] = login
        uri = f"{req.base_url}/auth/device"
        body = {
            "device_code": login.device_code,
            "user_code": login.user_code,
            "verification_uri": uri,
            "verification_uri_complete": f"{uri}?{urlencode({'user_code': login.user_code})}",
            "expires_in": DEVICE_CODE_LIFETIME_S,
            "interval": DEVICE_POLL_INTERVAL_S,
        }
        return json_response(200, body, {"Cache-Control": "no-store"})

    def _authenticated_client(self, req: Request, params: dict[str, str]) -> OAuthClientDef:
        """Client credentials from the body or, as oauthlib may send them, HTTP Basic."""
        basic_id, basic_secret = _basic_client_credentials(req.header("Authorization"))
        client = self._clients.get(params.get("client_id") or basic_id or "")
        if client is None:
            raise _OAuthError(401, "invalid_client", "Unknown client_id")
        secret = params.get("client_secret") or basic_secret
        needs_secret = client.grant != "device"
        if (needs_secret or secret) and not _same_secret(secret, client.client_secret):
            raise _OAuthError(401, "invalid_client", "Wrong or missing client_secret")
        return client

    def _issue(
        self, client: OAuthClientDef, refresh_token: str, email: str | None = None
    ) -> Response:
        owner = email or client.user
        lifetime_s = client.access_token_lifetime_s or self._user_lifetime(owner)
        session = self._open_session(owner, lifetime_s)
        body = {
            "access_token": session.value,
            "refresh_token": refresh_token,
            "expires_in": int(lifetime_s),
            "token_type": "Bearer",
            "scope": GRANTED_SCOPE,
        }
        return json_response(200, body, {"Cache-Control": "no-store"})

    def _new_refresh_token(self, client: OAuthClientDef, email: str | None = None) -> str:
        value = secrets.token_urlsafe(32)
        owner = email or client.user
        self._refresh_tokens[value] = _RefreshToken(client.client_id, owner, self._clock())
        return value

    def _new_user_code(self) -> str:
        taken = {login.user_code for login in self._devices.values()}
        while True:
            letters = "".join(secrets.choice(_USER_CODE_LETTERS) for _ in range(8))
            code = f"{letters[:4]}-{letters[4:]}"
            if code not in taken:
                return code

    # -- browser pages: /auth/* -------------------------------------------------------------

    def _authorize(self, req: Request) -> Response:
        """The user is taken as already logged in: straight back to the client with a code."""
        return Response(302, b"", {"Location": self._grant_authorization(req)})

    def _prelogin(self, req: Request) -> Response:
        """The page a browser would show; it links on to the client's callback."""
        link = escape(self._grant_authorization(req))
        return _html(f'<!DOCTYPE html><html><body><a href="{link}">Continue</a></body></html>')

    def _device_page(self, req: Request) -> Response:
        """Stands in for verification_uri; approval itself goes through the control API."""
        code = escape(_first(req.query, "user_code") or "")
        page = (
            "<!DOCTYPE html><html><body><p>Simulated device login"
            f"{f' for code {code}' if code else ''}. Approve with POST /__sim__/device/approve."
            "</p></body></html>"
        )
        return _html(page)

    def _grant_authorization(self, req: Request) -> str:
        """Check an authorize request and return the callback URL carrying a fresh code."""
        if _first(req.query, "response_type") != "code":
            raise _OAuthError(400, "unsupported_response_type", "response_type must be 'code'")
        client = self._clients.get(_first(req.query, "client_id") or "")
        if client is None:
            raise _OAuthError(400, "invalid_request", "Unknown client_id")
        _require_grant(client, "authorization_code")
        registered = client.redirect_uris
        redirect_uri = _first(req.query, "redirect_uri")
        if redirect_uri is None and len(registered) == 1:
            redirect_uri = registered[0]
        if redirect_uri not in registered:
            raise _OAuthError(400, "invalid_request", "redirect_uri is not registered for client")
        code = secrets.token_urlsafe(24)
        expires_at = self._clock() + AUTH_CODE_LIFETIME_S
        self._codes[code] = _AuthCode(client.client_id, redirect_uri, expires_at)
        reply = {"code": code}
        state = _first(req.query, "state")
        if state is not None:
            reply["state"] = state
        separator = "&" if "?" in redirect_uri else "?"
        return f"{redirect_uri}{separator}{urlencode(reply)}"

    # -- helpers ----------------------------------------------------------------------------

    def _no_route(self, method: str, path: str) -> Response:
        known_path = any(route_path == path for _, route_path in self._routes)
        status = 405 if known_path else 404
        reason = "Method not allowed" if known_path else "No such endpoint"
        body = {"error": "invalid_request", "error_description": f"{reason}: {path}"}
        return json_response(status, body)


def _split_authorization(value: str | None) -> tuple[str, str] | None:
    """(lower-case scheme, credentials) from an Authorization header, or None if malformed."""
    match = _AUTHORIZATION.match(value or "")
    return (match.group(1).lower(), match.group(2)) if match else None


def _basic_client_credentials(value: str | None) -> tuple[str | None, str | None]:
    """RFC 6749 §2.3.1 client authentication: Basic base64(urlencoded id:secret)."""
    parsed = _split_authorization(value)
    if parsed is None or parsed[0] != "basic":
        return None, None
    try:
        decoded = base64.b64decode(parsed[1], validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None, None
    client_id, _, secret = decoded.partition(":")
    return unquote_plus(client_id), unquote_plus(secret) or None


def _oauth_params(req: Request) -> dict[str, str]:
    """The body's string fields; anything else can match no client, code or token."""
    try:
        params = _body_params(req)
    except ValueError as exc:
        raise _OAuthError(400, "invalid_request", "Send a JSON or form-urlencoded body") from exc
    return {name: value for name, value in params.items() if isinstance(value, str)}


def _certificate_payload(req: Request) -> dict[str, Any]:
    try:
        return _body_params(req)
    except ValueError as exc:
        raise certs.CertificateError(401, "The body must be JSON with encodedData") from exc


def _body_params(req: Request) -> dict[str, Any]:
    """The body as JSON or as a form (PM/JAVA send JSON, oauthlib sends a form)."""
    text = req.body.decode("utf-8").strip()
    content_type = (req.header("Content-Type") or "").lower()
    is_json = "json" in content_type or text.startswith("{")
    if "form" in content_type or not is_json:
        return {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("the body is not a JSON object")
    return data


def _html(page: str) -> Response:
    return Response(200, page.encode("utf-8"), {"Content-Type": "text/html; charset=utf-8"})


def _still_pending(login: _DeviceLogin, now: float) -> _OAuthError:
    """RFC 8628 polling answer; a poll sooner than the interval after the last one is too fast."""
    too_fast = login.last_poll is not None and now - login.last_poll < DEVICE_POLL_INTERVAL_S
    login.last_poll = now
    if too_fast:
        return _OAuthError(400, "slow_down", f"Poll at most every {DEVICE_POLL_INTERVAL_S} s")
    return _OAuthError(400, "authorization_pending", "The user has not approved yet")


def _require_grant(client: OAuthClientDef, grant: str) -> None:
    """One Anaplan OAuth client serves either the code grant or the device grant."""
    if client.grant != grant:
        raise _OAuthError(400, "unauthorized_client", f"This client is not a {grant} client")


def _token_envelope(session: _Session, message: str, req: Request) -> dict[str, Any]:
    return {
        "meta": {"validationUrl": f"{req.base_url}/token/validate"},
        "status": "SUCCESS",
        "statusMessage": message,
        "tokenInfo": {
            "expiresAt": _ms(session.expires_at),
            "tokenId": session.token_id,
            "tokenValue": session.value,
            "refreshTokenId": session.refresh_token_id,
        },
    }


def _opaque_token() -> str:
    """Contains '.', '+', '/' and '=' on purpose: clients must send the value untouched."""
    body = base64.b64encode(_TOKEN_MARKER + secrets.token_bytes(31)).decode("ascii")
    return f"{secrets.token_hex(4)}.{body}"


def _same_secret(given: object, expected: object) -> bool:
    if not isinstance(given, str) or not isinstance(expected, str):
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def _normal_user_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def _first(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _ms(epoch_s: float) -> int:
    return int(epoch_s * 1000)
