"""``target-anaplan-admin login``: get the first OAuth refresh token into the token store.

Anaplan has no client-credentials grant, so an unattended target lives on a refresh
token that a person obtained once, through the device grant or the authorization-code
grant. Anaplan refuses localhost redirect URIs, so the code flow asks the person to
paste the address the browser was sent to instead of listening for it.

Prompts go to stderr; the settings to use go to stdout. Secrets are never printed.
``target-anaplan-auth login`` (the command's first name) runs the same code.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

from target_anaplan.admin.terminal import Terminal
from target_anaplan.anaplan.errors import AnaplanError, AuthenticationError
from target_anaplan.anaplan.oauth import (
    SCOPE,
    OAuthError,
    TokenResponse,
    oauth_post,
    request_token,
)
from target_anaplan.anaplan.regions import resolve_hosts
from target_anaplan.anaplan.token_store import StoredToken, TokenStore

SECRET_ENV = "TARGET_ANAPLAN_OAUTH_CLIENT_SECRET"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SLOW_DOWN_STEP_S = 5
TIMEOUT_S = 60.0
HELP = "Authorize once and store the refresh token in the token store."


@dataclass(frozen=True)
class LoginRequest:
    """What ``login`` was asked to do."""

    client_id: str
    client_secret: str | None = field(repr=False)
    oauth_base_url: str
    store: TokenStore
    device: bool
    redirect_uri: str | None


def login(args: argparse.Namespace, terminal: Terminal) -> int:
    """Run the login ``add_arguments`` describes; returns the exit code."""
    session = requests.Session()
    if args.ca_bundle:
        session.verify = args.ca_bundle
    try:
        request = _login_request(args)
        granted = (
            device_login(session, request, terminal)
            if request.device
            else code_login(session, request, terminal)
        )
        store_refresh_token(request, granted)
    except (AnaplanError, ValueError) as error:
        terminal.say(f"error: {error}")
        return 1
    except KeyboardInterrupt:
        terminal.say("Cancelled; nothing was stored.")
        return 130
    _print_settings(request, args, terminal)
    return 0


def add_arguments(login_parser: argparse.ArgumentParser) -> None:
    """The options of ``login`` (the same under both command names)."""
    login_parser.add_argument("--client-id", required=True, help="OAuth client id from Anaplan.")
    login_parser.add_argument(
        "--client-secret",
        help=f"Client secret (code-grant clients; prefer the {SECRET_ENV} environment variable).",
    )
    flow = login_parser.add_mutually_exclusive_group(required=True)
    flow.add_argument("--device", action="store_true", help="Use the device grant.")
    flow.add_argument("--redirect-uri", help="Use the authorization-code grant with this callback.")
    where = login_parser.add_mutually_exclusive_group()
    where.add_argument("--region", default="us1", help="Anaplan region code (default us1).")
    where.add_argument("--oauth-base-url", help="OAuth host URL, overriding the region's.")
    login_parser.add_argument("--token-store", help="Token store path (default: per client id).")
    login_parser.add_argument(
        "--ca-bundle", help="CA bundle for TLS verification (corporate proxies)."
    )


def _login_request(args: argparse.Namespace) -> LoginRequest:
    hosts = resolve_hosts(args.region, oauth_base_url=args.oauth_base_url)
    store = (
        TokenStore(args.token_store) if args.token_store else TokenStore.for_client(args.client_id)
    )
    return LoginRequest(
        client_id=args.client_id,
        client_secret=args.client_secret or os.environ.get(SECRET_ENV) or None,
        oauth_base_url=hosts.oauth_base_url,
        store=store,
        device=args.device,
        redirect_uri=args.redirect_uri,
    )


def device_login(
    session: requests.Session, request: LoginRequest, terminal: Terminal
) -> TokenResponse:
    """RFC 8628: show the user code, then poll until the person approves it."""
    started = oauth_post(
        session,
        f"{request.oauth_base_url}/oauth/device/code",
        {"client_id": request.client_id, "scope": SCOPE},
        timeout_s=TIMEOUT_S,
    )
    try:
        device_code = str(started["device_code"])
        user_code = str(started["user_code"])
    except KeyError:
        raise AuthenticationError(
            "Anaplan's device-code answer lacks device_code or user_code."
        ) from None
    where = started.get("verification_uri_complete") or started.get("verification_uri")
    terminal.say(f"Open {where} in a browser, sign in, and confirm the code {user_code}.")
    terminal.say("Waiting for approval (Ctrl-C to cancel)...")
    body = {"grant_type": DEVICE_GRANT, "client_id": request.client_id, "device_code": device_code}
    if request.client_secret:
        body["client_secret"] = request.client_secret
    interval = float(started.get("interval") or 5)
    while True:
        terminal.sleep(interval)
        try:
            return request_token(session, request.oauth_base_url, body, timeout_s=TIMEOUT_S)
        except OAuthError as error:
            if error.error == "authorization_pending":
                continue
            if error.error == "slow_down":
                interval += SLOW_DOWN_STEP_S
                continue
            raise AuthenticationError(_device_failure(error.error)) from None


def _device_failure(error: str) -> str:
    if error == "expired_token":
        return "The device code expired before it was approved; run the login again."
    if error == "access_denied":
        return "The login was denied in the browser; nothing was stored."
    return (
        f"Anaplan refused the device login ({error}); check that --client-id is a "
        "device-grant client."
    )


def code_login(
    session: requests.Session, request: LoginRequest, terminal: Terminal
) -> TokenResponse:
    """Authorization-code grant: the person pastes the redirect address (or just the code)."""
    if not request.client_secret:
        raise AuthenticationError(
            "The authorization-code grant needs the client secret: pass --client-secret "
            f"or set {SECRET_ENV}."
        )
    state = secrets.token_urlsafe(16)
    query = {
        "response_type": "code",
        "client_id": request.client_id,
        "redirect_uri": request.redirect_uri,
        "scope": SCOPE,
        "state": state,
    }
    url = f"{request.oauth_base_url}/auth/authorize?{urlencode(query)}"
    terminal.say(f"Open this address in a browser and sign in:\n\n  {url}\n")
    terminal.say(
        "The browser then goes to your redirect URI. Paste that whole address (or the code):"
    )
    code = _code_from(terminal.stdin.readline(), state)
    body = {
        "grant_type": "authorization_code",
        "client_id": request.client_id,
        "client_secret": request.client_secret,
        "code": code,
        "redirect_uri": request.redirect_uri,
    }
    return request_token(session, request.oauth_base_url, body, timeout_s=TIMEOUT_S)


def _code_from(pasted: str, state: str) -> str:
    """The code in a pasted redirect address, checking its state; or the pasted code itself."""
    text = pasted.strip()
    if not text:
        raise AuthenticationError("Nothing was pasted; run the login again.")
    if "code=" not in text:
        return text
    params = parse_qs(urlsplit(text).query or text.split("?", 1)[-1])
    if "error" in params:
        raise AuthenticationError(f"The authorization failed: {params['error'][0]}.")
    if params.get("state", [state])[0] != state:
        raise AuthenticationError(
            "The pasted address belongs to another login (state differs); run the login again."
        )
    return params["code"][0]


def store_refresh_token(request: LoginRequest, granted: TokenResponse) -> None:
    """Put the new refresh token in the store, superseding any configured seed token."""
    if not granted.refresh_token:
        raise AuthenticationError(
            "Anaplan granted no refresh token; make sure the OAuth client allows refresh tokens "
            "(scope offline_access)."
        )
    with request.store.locked():
        try:
            previous = request.store.read()
        except AuthenticationError:  # a damaged store is what a new login repairs
            previous = None
        request.store.write(
            StoredToken(
                granted.refresh_token,
                issued_at=time.time(),
                # Keep the configured token's fingerprint: it has been superseded by this login.
                seed_sha256=previous.seed_sha256 if previous else None,
            ),
            client_id=request.client_id,
        )


def _print_settings(request: LoginRequest, args: argparse.Namespace, terminal: Terminal) -> None:
    settings: dict[str, Any] = {
        "auth_method": "oauth",
        "oauth_client_id": request.client_id,
        "oauth_token_store": str(request.store.path),
    }
    if args.oauth_base_url:
        settings["oauth_base_url"] = request.oauth_base_url
    else:
        settings["region"] = args.region
    terminal.say(f"Stored the refresh token in {request.store.path}. Use these target settings:")
    terminal.result(json.dumps(settings, indent=2))
    if not request.device:
        terminal.say("Also set oauth_client_secret (not shown). Leave oauth_refresh_token unset.")
    else:
        terminal.say("Leave oauth_refresh_token unset: the target reads the token store.")
