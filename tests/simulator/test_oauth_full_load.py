"""Full target runs (real processes) with OAuth and basic auth: rows land, stores rotate,
two runs share a rotating store, a token refused mid-upload is replaced, nothing leaks."""

from __future__ import annotations

from typing import Any

import pytest

from target_anaplan.anaplan.token_store import TokenStore
from target_anaplan.simulator import Simulator
from tests.kit.oauthkit import (
    PLAIN,
    PRODUCTS,
    ROTATING,
    SECRET_SETTINGS,
    oauth_scenario,
    oauth_settings,
    product_codes,
    singer_input,
    spend,
    target_config,
    token_requests,
)
from tests.kit.targetkit import run_subprocess, start_target, write_config


@pytest.fixture
def sim(sim_with) -> Simulator:
    return sim_with(with_second_products_file(oauth_scenario()))


def with_second_products_file(scenario: dict[str, Any]) -> dict[str, Any]:
    """Two concurrent runs as one user must not share a file: uploads are private per user,
    not per run, so one run's upload could replace the other's before its import reads it."""
    model = scenario["workspaces"][0]["models"][0]
    first_file, first_import = model["files"][0], model["imports"][0]
    model["files"].append({**first_file, "id": "113000000009", "name": "products_b.csv"})
    model["imports"].append(
        {**first_import, "id": "112000000009", "name": "Products from products_b.csv",
         "importDataSourceId": "113000000009"}
    )  # fmt: skip
    return scenario


@pytest.mark.parametrize("method", ["basic", "oauth-non-rotating", "oauth-rotating"])
def test_full_load(sim, tmp_path, method):
    credentials = {
        "basic": {"username": "integration@example.com", "password": "demo-password"},
        "oauth-non-rotating": oauth_settings(PLAIN, tmp_path / "plain.json"),
        "oauth-rotating": oauth_settings(ROTATING, tmp_path / "rot.json"),
    }[method]
    run = run_subprocess(target_config(sim, **credentials), singer_input(["P1", "P2"]), tmp_path)

    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ['{"products": 2}']
    assert {"P1", "P2"} <= product_codes(sim)
    secrets = [v for k, v in credentials.items() if k in SECRET_SETTINGS]
    if method == "oauth-rotating":
        secrets.append(TokenStore(tmp_path / "rot.json").read().refresh_token)
    for secret in secrets:
        assert secret not in run.stdout + run.stderr


def test_two_target_runs_share_one_rotating_store_at_the_same_time(sim, tmp_path):
    credentials = oauth_settings(ROTATING, tmp_path / "store" / "rot.json")
    streams = [
        PRODUCTS,
        {"products": {"file": "products_b.csv", "imports": ["Products from products_b.csv"]}},
    ]
    runs = [
        start_target(
            write_config(
                {**target_config(sim, **credentials), "streams": streams[i]}, tmp_path / f"{i}.json"
            )
        )
        for i in range(2)
    ]
    for i, run in enumerate(runs):
        run.stdin.write(singer_input([f"R{i}"]))
        run.stdin.close()
    results = [(run.stdout.read(), run.stderr.read(), run.wait(timeout=120)) for run in runs]

    for _out, err, status in results:
        assert status == 0, err
        assert "invalid_grant" not in err
    assert {"R0", "R1"} <= product_codes(sim)
    assert token_requests(sim, "/oauth/token") == 2
    stored = TokenStore(tmp_path / "store" / "rot.json").read().refresh_token
    assert spend(sim, ROTATING, stored).status_code == 200  # the chain is intact


def test_a_token_refused_mid_upload_is_replaced_and_the_upload_finishes(sim, tmp_path):
    fault = {"kind": "http", "status": 401, "method": "PUT", "path": "/chunks/", "nth": 1}
    sim.add_fault(fault)
    credentials = oauth_settings(ROTATING, tmp_path / "rot.json")

    run = run_subprocess(target_config(sim, **credentials), singer_input(["M1"]), tmp_path)

    assert run.returncode == 0, run.stderr
    assert "M1" in product_codes(sim)
    assert token_requests(sim, "/oauth/token") == 2  # the refused token was replaced once


def test_second_run_uses_the_rotated_token_and_first_run_token_is_gone(sim, tmp_path):
    credentials = oauth_settings(ROTATING, tmp_path / "rot.json")
    for codes in (["A1"], ["A2"]):
        run = run_subprocess(target_config(sim, **credentials), singer_input(codes), tmp_path)
        assert run.returncode == 0, run.stderr
    assert {"A1", "A2"} <= product_codes(sim)
    assert spend(sim, ROTATING, ROTATING["refresh_token"]).status_code in (400, 401, 403)


def test_invalid_grant_run_fails_with_one_line_saying_how_to_reauthorize(sim, tmp_path):
    assert spend(sim, ROTATING, ROTATING["refresh_token"]).ok  # spent by "another machine"
    credentials = oauth_settings(ROTATING, tmp_path / "rot.json")
    run = run_subprocess(target_config(sim, **credentials), singer_input(["X1"]), tmp_path)
    assert run.returncode == 1
    assert run.stdout == ""
    assert "Traceback" not in run.stderr
    assert "target-anaplan-admin login --client-id rot-client" in run.stderr
    assert ROTATING["refresh_token"] not in run.stderr
