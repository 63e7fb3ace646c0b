"""Fixtures for the admin command's tests: the core scenario's simulator, in process."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The target tier's kit (configs, Singer messages, in-process runs) and the OAuth kit.
TESTS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(TESTS / "target"), str(TESTS / "simulator")]

from targetkit import CORE  # noqa: E402

from target_anaplan.simulator import Simulator  # noqa: E402


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(CORE) as simulator:
        yield simulator
