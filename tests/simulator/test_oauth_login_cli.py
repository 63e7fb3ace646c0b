"""`target-anaplan-auth login`: device and authorization-code grants against the simulator."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest
import requests

from target_anaplan.anaplan.token_store import StoredToken, TokenStore, seed_hash
from target_anaplan.auth_cli import Terminal, main
from target_anaplan.simulator import Simulator
from tests.kit.oauthkit import (
    CALLBACK,
    PLAIN,
    ApprovingSleep,
    PastingStdin,
    api_status,
    oauth_auth,
    oauth_scenario,
)


@pytest.fixture
def sim(sim_with) -> Simulator:
    return sim_with(oauth_scenario())


def test_device_login_polls_politely_and_stores_a_token_the_target_can_use(sim, tmp_path):
    store = tmp_path / "device.json"
    stdout, stderr = io.StringIO(), io.StringIO()
    sleep = ApprovingSleep(sim, stderr)
    terminal = Terminal(stdin=io.StringIO(), stdout=stdout, stderr=stderr, sleep=sleep)

    argv = ["login", "--client-id", "device-client", "--device",
            "--oauth-base-url", sim.url, "--token-store", str(store)]  # fmt: skip
    assert main(argv, terminal) == 0

    assert sleep.waits == [5, 5, 10]  # interval, then +5 s after slow_down
    assert f"{sim.url}/auth/device?user_code=" in stderr.getvalue()
    assert json.loads(stdout.getvalue()) == {
        "auth_method": "oauth",
        "oauth_client_id": "device-client",
        "oauth_token_store": str(store),
        "oauth_base_url": sim.url,
    }
    auth = oauth_auth(sim, {"client_id": "device-client"}, store)
    assert api_status(sim, auth.header()) == 200


def test_device_login_that_is_never_approved_expires(sim, tmp_path):
    stderr = io.StringIO()
    terminal = Terminal(stdin=io.StringIO(), stdout=io.StringIO(), stderr=stderr,
                        sleep=lambda s: sim.advance_clock(1000))  # fmt: skip
    argv = ["login", "--client-id", "device-client", "--device", "--oauth-base-url", sim.url,
            "--token-store", str(tmp_path / "d.json")]  # fmt: skip
    assert main(argv, terminal) == 1
    assert "expired before it was approved" in stderr.getvalue()
    assert not (tmp_path / "d.json").exists()


@pytest.mark.parametrize("code_only", [False, True])
def test_code_login_takes_the_pasted_address_or_code(sim, tmp_path, monkeypatch, code_only):
    monkeypatch.setenv("TARGET_ANAPLAN_OAUTH_CLIENT_SECRET", PLAIN["client_secret"])
    store = TokenStore(tmp_path / "code.json")
    # A run had adopted a configured token; logging in again must supersede it.
    store.write(StoredToken("old-rt", 0.0, seed_hash(PLAIN["refresh_token"])), client_id="x")
    stdout, stderr = io.StringIO(), io.StringIO()
    terminal = Terminal(PastingStdin(stderr, code_only=code_only), stdout, stderr)

    argv = ["login", "--client-id", PLAIN["client_id"], "--redirect-uri", CALLBACK,
            "--oauth-base-url", sim.url, "--token-store", str(store.path)]  # fmt: skip
    assert main(argv, terminal) == 0

    stored = store.read()
    assert stored.refresh_token != "old-rt"
    assert stored.seed_sha256 == seed_hash(PLAIN["refresh_token"])
    assert "oauth_client_secret" in stderr.getvalue()
    assert PLAIN["client_secret"] not in stdout.getvalue() + stderr.getvalue()
    # The target still configured with the old token now starts from the login's token.
    auth = oauth_auth(sim, PLAIN, store.path)
    assert api_status(sim, auth.header()) == 200


def test_code_login_rejects_an_address_from_another_login(sim, tmp_path):
    stderr = io.StringIO()
    stdin = io.StringIO(f"{CALLBACK}?code=abc&state=someone-else\n")
    argv = ["login", "--client-id", PLAIN["client_id"], "--client-secret", "plain-secret",
            "--redirect-uri", CALLBACK, "--oauth-base-url", sim.url,
            "--token-store", str(tmp_path / "c.json")]  # fmt: skip
    assert main(argv, Terminal(stdin, io.StringIO(), stderr)) == 1
    assert "state differs" in stderr.getvalue()


def test_console_command_runs_the_code_flow_end_to_end(sim, tmp_path):
    store = tmp_path / "cli.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "target_anaplan.auth_cli", "login",
         "--client-id", PLAIN["client_id"], "--redirect-uri", CALLBACK,
         "--oauth-base-url", sim.url, "--token-store", str(store)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TARGET_ANAPLAN_OAUTH_CLIENT_SECRET": PLAIN["client_secret"]},
    )  # fmt: skip
    url = ""
    while "/auth/authorize?" not in url:
        url = process.stderr.readline()
        assert url, "the command ended without printing the authorize URL"
    location = requests.get(url.strip(), allow_redirects=False, timeout=10).headers["Location"]
    out, _ = process.communicate(location + "\n", timeout=60)

    assert process.returncode == 0
    assert json.loads(out)["oauth_token_store"] == str(store)
    assert TokenStore(store).read().refresh_token


def test_usage_errors_exit_nonzero_without_a_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "target_anaplan.auth_cli", "login", "--client-id", "x",
         "--device", "--region", "zz9", "--token-store", str(tmp_path / "t.json")],
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert "Unknown Anaplan region 'zz9'" in result.stderr
    assert "Traceback" not in result.stderr
