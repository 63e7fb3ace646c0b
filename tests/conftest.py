"""Shared fixtures: an in-process Anaplan simulator, one as a separate process, and a builder
for scenario dicts."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from demo import stack
from target_anaplan.simulator import EXAMPLE_SCENARIO, Simulator

EXTRA_USERS = [{"email": "other@example.com", "password": "other-password", "certificates": []}]


@pytest.fixture(autouse=True)
def private_change_store(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Each test gets its own default change store: what one test loaded must not make
    another skip rows. Subprocesses inherit it."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("data")))


def example_scenario() -> dict[str, Any]:
    """A fresh copy of the packaged example scenario, with a second user for privacy tests."""
    scenario = json.loads(EXAMPLE_SCENARIO.read_text(encoding="utf-8"))
    scenario["users"] += copy.deepcopy(EXTRA_USERS)
    return scenario


def make_scenario(*, top: dict[str, Any] | None = None, **model_overrides: Any) -> dict[str, Any]:
    """The example scenario with keys of its one model (lists, imports, files, ...) and of the
    scenario itself (`top`: users, dump_chunk_bytes, ...) replaced."""
    scenario = example_scenario()
    scenario.update(copy.deepcopy(top or {}))
    model = scenario["workspaces"][0]["models"][0]
    model.update(copy.deepcopy(model_overrides))
    return scenario


def start_simulator(scenario: dict[str, Any] | None = None) -> Simulator:
    """A started in-process simulator."""
    return Simulator(scenario or example_scenario()).start()


@pytest.fixture
def simulator(request: pytest.FixtureRequest) -> Iterator[Simulator]:
    """In-process simulator on the example scenario, or on `indirect` parametrized dict."""
    sim = start_simulator(getattr(request, "param", None))
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def sim_with() -> Iterator[Callable[..., Simulator]]:
    """Start simulators on `make_scenario(**model_overrides)` (or a whole scenario dict)."""
    started: list[Simulator] = []

    def start(
        scenario: dict[str, Any] | None = None,
        *,
        top: dict[str, Any] | None = None,
        **model_overrides: Any,
    ) -> Simulator:
        sim = start_simulator(scenario or make_scenario(top=top, **model_overrides))
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


@pytest.fixture
def simulator_process(tmp_path: Path) -> Iterator[stack.SimulatorProcess]:
    """`anaplan-simulator` on the example scenario as a separate process, as a user runs it;
    its control API over HTTP has the in-process Simulator's method names."""
    process = stack.SimulatorProcess(log_path=tmp_path / "simulator.log").start()
    yield process
    process.stop()


ARTIFACTS_DIR = Path(__file__).resolve().parent.parent / "test-artifacts"
_KEPT = pytest.StashKey[list[Path]]()


@pytest.fixture
def artifact(request: pytest.FixtureRequest) -> Callable[[str], Path]:
    """A path under test-artifacts/ (gitignored) for a file the run keeps, e.g. a screenshot;
    the paths are listed at the end of the run."""

    def path(name: str) -> Path:
        ARTIFACTS_DIR.mkdir(exist_ok=True)
        kept = request.config.stash.setdefault(_KEPT, [])
        kept.append(ARTIFACTS_DIR / name)
        return kept[-1]

    return path


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    for path in config.stash.get(_KEPT, []):
        if path.exists():
            terminalreporter.write_line(f"test artifact kept: {path}")
