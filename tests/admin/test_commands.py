"""The command itself: `login` under its new name, the console script, usage errors."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from target_anaplan.admin.cli import main
from target_anaplan.admin.terminal import Terminal
from target_anaplan.simulator import Simulator
from tests.kit.adminkit import admin, write_json
from tests.kit.oauthkit import api_status, approve_device_login, oauth_auth, oauth_scenario
from tests.kit.targetkit import PRODUCTS, core_config


def test_login_stores_a_token_the_target_can_use(tmp_path):
    """The device login of `target-anaplan-auth login`, now `target-anaplan-admin login`."""
    store = tmp_path / "device.json"
    with Simulator(oauth_scenario()) as sim:
        stderr = io.StringIO()

        def approve(_seconds: float) -> None:
            approve_device_login(sim, stderr.getvalue())

        stdout = io.StringIO()
        argv = ["login", "--client-id", "device-client", "--device",
                "--oauth-base-url", sim.url, "--token-store", str(store)]  # fmt: skip
        assert main(argv, Terminal(io.StringIO(), stdout, stderr, sleep=approve)) == 0
        assert json.loads(stdout.getvalue())["oauth_token_store"] == str(store)
        auth = oauth_auth(sim, {"client_id": "device-client"}, store)
        assert api_status(sim, auth.header()) == 200


def test_the_console_script_prints_results_on_stdout_and_errors_in_one_line(sim, tmp_path):
    good = write_json(tmp_path / "good.json", core_config(sim, {"products": PRODUCTS}))
    bad = write_json(tmp_path / "bad.json", {**core_config(sim, {}), "model": "Nope"})

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "target_anaplan.admin.cli", *args],
                              capture_output=True, text=True, timeout=60, check=False)  # fmt: skip

    listed = run("list", "imports", "--config", good, "--json")
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == 8

    failed = run("describe", "file", "products", "--config", bad)
    assert failed.returncode == 1
    assert failed.stdout == ""
    assert failed.stderr.startswith("error: Model 'Nope' not found in workspace 'Target Tests'.")
    assert "Traceback" not in failed.stderr
    assert "loader-password" not in failed.stderr


@pytest.mark.parametrize(
    "argv",
    [["list"], ["list", "everything"], ["describe", "import"], ["init"], ["frobnicate"]],
)
def test_usage_errors_exit_2_with_the_usage(argv):
    with pytest.raises(SystemExit) as exited:
        admin(*argv)
    assert exited.value.code == 2


def test_a_config_file_that_is_not_json_is_one_line(tmp_path):
    path = tmp_path / "c.json"
    path.write_text("{not json")
    result = admin("list", "files", "--config", str(path))
    assert result.code == 1
    assert result.err.startswith(f"error: --config {path} is not valid JSON")
