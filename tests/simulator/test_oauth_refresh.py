"""OAuth refresh-token auth against the simulator: plain and rotating clients, token store
durability across processes and crashes, expiry, invalid_grant."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from target_anaplan.anaplan.errors import AuthenticationError
from target_anaplan.anaplan.token_store import TokenStore
from target_anaplan.simulator import Simulator
from tests.kit.oauthkit import (
    PLAIN,
    ROTATING,
    ROTATING_LIFESPAN_S,
    api_status,
    oauth_auth,
    oauth_scenario,
    spend,
)


@pytest.fixture
def sim(sim_with) -> Simulator:
    return sim_with(oauth_scenario())


def test_non_rotating_client_keeps_using_the_configured_token(sim, tmp_path):
    store = tmp_path / "plain.json"
    auth = oauth_auth(sim, PLAIN, store)
    first = auth.header()
    auth.invalidate(first)
    second = auth.header()

    assert first != second
    assert api_status(sim, second) == 200
    assert not store.exists()  # nothing rotated, nothing to keep
    assert spend(sim, PLAIN, PLAIN["refresh_token"]).status_code == 200


def test_rotating_client_persists_each_new_token_before_use(sim, tmp_path):
    store = TokenStore(tmp_path / "rot.json")
    auth = oauth_auth(sim, ROTATING, store.path)
    seen = []
    for _ in range(3):
        header = auth.header()
        assert api_status(sim, header) == 200
        seen.append(store.read().refresh_token)
        auth.invalidate(header)

    assert len(set(seen)) == 3
    assert ROTATING["refresh_token"] not in seen
    assert store.read().rotating is True
    # The stored token is the live one: unused, so it can still be spent.
    assert spend(sim, ROTATING, seen[-1]).status_code == 200


def test_a_new_run_starts_from_the_store_not_the_spent_configured_token(sim, tmp_path):
    store = tmp_path / "rot.json"
    oauth_auth(sim, ROTATING, store).header()
    second_run = oauth_auth(sim, ROTATING, store)
    assert api_status(sim, second_run.header()) == 200


def test_expiry_renews_the_access_token(sim, tmp_path):
    clock = sim.state.clock  # the auth sees the simulator's time, as a real client sees real time
    auth = oauth_auth(sim, ROTATING, tmp_path / "rot.json", clock=clock)
    first = auth.header()
    sim.advance_clock(2200)
    assert api_status(sim, first) == 401
    second = auth.header()
    assert second != first
    assert api_status(sim, second) == 200


def test_after_a_401_the_token_is_replaced(sim, tmp_path):
    auth = oauth_auth(sim, PLAIN, tmp_path / "plain.json")
    first = auth.header()
    sim.advance_clock(2200)
    assert api_status(sim, first) == 401
    auth.invalidate(first)
    assert api_status(sim, auth.header()) == 200


def test_a_token_spent_elsewhere_fails_with_reauthorize_instructions(sim, tmp_path):
    assert spend(sim, ROTATING, ROTATING["refresh_token"]).status_code == 200
    auth = oauth_auth(sim, ROTATING, tmp_path / "rot.json")
    with pytest.raises(AuthenticationError) as caught:
        auth.header()
    message = str(caught.value)
    assert "invalid_grant" in message
    assert "target-anaplan-admin login --client-id rot-client" in message
    assert ROTATING["refresh_token"] not in message
    assert ROTATING["client_secret"] not in message


def test_a_token_past_its_lifespan_fails_with_reauthorize_instructions(sim, tmp_path):
    auth = oauth_auth(sim, ROTATING, tmp_path / "rot.json", clock=sim.state.clock)
    auth.invalidate(auth.header())
    sim.advance_clock(ROTATING_LIFESPAN_S + 60)
    with pytest.raises(AuthenticationError, match="target-anaplan-admin login"):
        auth.header()


RUNNER = textwrap.dedent(
    """
    import os, sys
    import requests
    from target_anaplan.anaplan.oauth import OAuthRefreshAuth
    from target_anaplan.anaplan.token_store import TokenStore

    url, store_path, rounds, crash = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    if crash == "crash-after-persist":
        original = TokenStore.write
        def write_then_die(self, token, *, client_id):
            original(self, token, client_id=client_id)
            os._exit(9)  # killed after the rotated token is durable, before it is used
        TokenStore.write = write_then_die
    session = requests.Session()
    auth = OAuthRefreshAuth(session, url, client_id="rot-client", client_secret="rot-secret",
                            refresh_token="rot-rt", store=TokenStore(store_path))
    for _ in range(rounds):
        header = auth.header()
        status = session.get(url + "/2/0/workspaces", headers={"Authorization": header},
                             timeout=10).status_code
        assert status == 200, status
        auth.invalidate(header)  # force a refresh next round
    print("ok", rounds)
    """
)


def run_runner(sim: Simulator, store: Path, rounds: int, crash: str = "no") -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", RUNNER, sim.url, str(store), str(rounds), crash],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_processes_share_one_rotating_store_at_the_same_time(sim, tmp_path):
    store = tmp_path / "shared" / "rot.json"
    runs = [run_runner(sim, store, rounds=8) for _ in range(2)]
    results = [run.communicate(timeout=120) for run in runs]

    for run, (out, err) in zip(runs, results, strict=True):
        assert run.returncode == 0, err
        assert out.strip() == "ok 8"
    token = TokenStore(store).read().refresh_token
    assert spend(sim, ROTATING, token).status_code == 200  # the chain is intact


def test_a_crash_between_persisting_and_using_a_rotated_token_loses_nothing(sim, tmp_path):
    store = tmp_path / "rot.json"
    crashed = run_runner(sim, store, rounds=1, crash="crash-after-persist")
    crashed.communicate(timeout=60)
    assert crashed.returncode == 9
    persisted = TokenStore(store).read().refresh_token

    next_run = run_runner(sim, store, rounds=2)
    out, err = next_run.communicate(timeout=60)
    assert next_run.returncode == 0, err
    assert out.strip() == "ok 2"
    assert TokenStore(store).read().refresh_token != persisted
