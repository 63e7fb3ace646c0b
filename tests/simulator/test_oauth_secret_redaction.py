"""Every auth flow, run with distinctive secrets: none may show up in any output."""

from __future__ import annotations

import base64
import io
import logging
from dataclasses import replace
from pathlib import Path

import pytest
import requests

from target_anaplan.anaplan.credentials import Credentials, make_auth
from target_anaplan.anaplan.errors import AnaplanError
from target_anaplan.anaplan.regions import resolve_hosts
from target_anaplan.anaplan.token_store import TokenStore
from target_anaplan.auth_cli import Terminal, main
from target_anaplan.settings import Settings
from tests.kit.certgen import generate
from tests.kit.oauthkit import (
    CALLBACK,
    ROTATING,
    ApprovingSleep,
    PastingStdin,
    encrypted,
    oauth_scenario,
    spend,
)

PASSWORD = "pw-Qx7Password-SECRET"
CLIENT_SECRET = "cs-Qx7ClientSecret-SECRET"
REFRESH_TOKEN = "rt-Qx7RefreshToken-SECRET"
PASSPHRASE = "pp-Qx7Passphrase-SECRET"


def settings(**values: object) -> Credentials:
    """The credentials a target config with these settings hands to the client."""
    return Settings.from_config({"workspace": "w", "model": "m", **values}).credentials()


@pytest.fixture
def bundle():
    return generate()


@pytest.fixture
def sim(sim_with, bundle):
    scenario = oauth_scenario(certificates=[bundle.leaf_cert_pem])
    scenario["users"][0]["password"] = PASSWORD
    rotating = next(c for c in scenario["oauth_clients"] if c["client_id"] == ROTATING["client_id"])
    rotating.update(client_secret=CLIENT_SECRET, refresh_tokens=[REFRESH_TOKEN])
    return sim_with(scenario)


def test_no_secret_reaches_logs_messages_reprs_or_terminal(sim, bundle, tmp_path, caplog, capsys):
    hosts = resolve_hosts("us1", api_base_url=f"{sim.url}/2/0", auth_base_url=sim.url,
                          oauth_base_url=sim.url)  # fmt: skip
    key_pem = encrypted(bundle.leaf_key_pem, PASSPHRASE)
    store = tmp_path / "rot.json"
    configs = {
        "basic": settings(auth_method="basic", username="integration@example.com",
                          password=PASSWORD),
        "oauth": settings(auth_method="oauth", oauth_client_id=ROTATING["client_id"],
                          oauth_client_secret=CLIENT_SECRET, oauth_refresh_token=REFRESH_TOKEN,
                          oauth_token_store=str(store), oauth_refresh_token_lifespan_s=3600),
        "certificate": settings(auth_method="certificate", certificate=bundle.leaf_cert_pem,
                                private_key=key_pem, private_key_passphrase=PASSPHRASE),
    }  # fmt: skip
    failing = {
        "basic": settings(auth_method="basic", username="integration@example.com",
                          password=PASSWORD + "-wrong"),
        "certificate": settings(auth_method="certificate", certificate=bundle.leaf_cert_pem,
                                private_key=key_pem, private_key_passphrase=PASSPHRASE + "x"),
    }  # fmt: skip
    texts: list[str] = []
    issued: list[str] = []

    with caplog.at_level(logging.DEBUG):
        for config in configs.values():
            auth = make_auth(config, hosts, requests.Session())
            texts.append(repr(auth))
            for _ in range(2):  # log in, then replace the token as after a 401
                header = auth.header()
                issued.append(header.split(" ", 1)[1])
                auth.invalidate(header)
        stored = TokenStore(store).read()
        issued.append(stored.refresh_token)
        # The stored token gets spent elsewhere and is old: the next run warns that it is
        # past its lifespan, then fails with invalid_grant.
        assert spend(sim, {**ROTATING, "client_secret": CLIENT_SECRET}, issued[-1]).ok
        TokenStore(store).write(replace(stored, issued_at=0.0), client_id="rot-client")
        failing["oauth"] = configs["oauth"]
        for config in failing.values():
            with pytest.raises(AnaplanError) as caught:
                make_auth(config, hosts, requests.Session()).header()
            texts += [str(caught.value), repr(caught.value)]

        printed, stored_by_login = run_logins(sim, tmp_path)
        texts += printed
        issued += stored_by_login

    own_logs = [
        r.getMessage() for r in caplog.records if not r.name.startswith("target_anaplan.simulator")
    ]
    captured = capsys.readouterr()
    output = "\n".join([*texts, *own_logs, captured.out, captured.err])
    assert any("has probably expired" in text for text in own_logs)  # the lifespan warning
    key_lines = [line for line in key_pem.splitlines() if not line.startswith("-----")]
    basic = base64.b64encode(f"integration@example.com:{PASSWORD}".encode()).decode()
    for secret in [PASSWORD, CLIENT_SECRET, REFRESH_TOKEN, PASSPHRASE, basic, *issued, *key_lines]:
        assert secret not in output


def cli_login(argv: list[str], terminal: Terminal, store: Path) -> tuple[list[str], str]:
    """Run the login command; return what it printed and the refresh token it stored."""
    assert main([*argv, "--token-store", str(store)], terminal) == 0
    return [terminal.stdout.getvalue(), terminal.stderr.getvalue()], TokenStore(
        store
    ).read().refresh_token


def run_logins(sim, tmp_path) -> tuple[list[str], list[str]]:
    """The code grant (with the client secret on the command line) and the device grant."""
    stderr = io.StringIO()
    code_out, code_token = cli_login(
        ["login", "--client-id", ROTATING["client_id"], "--client-secret", CLIENT_SECRET,
         "--redirect-uri", CALLBACK, "--oauth-base-url", sim.url],
        Terminal(PastingStdin(stderr), io.StringIO(), stderr),
        tmp_path / "code.json",
    )  # fmt: skip
    stderr = io.StringIO()
    device_out, device_token = cli_login(
        ["login", "--client-id", "device-client", "--device", "--oauth-base-url", sim.url],
        Terminal(io.StringIO(), io.StringIO(), stderr, ApprovingSleep(sim, stderr)),
        tmp_path / "device.json",
    )
    return code_out + device_out, [code_token, device_token]
