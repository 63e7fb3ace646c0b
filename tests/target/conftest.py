"""Fixtures for the target tests: a fresh simulator of the core scenario per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from target_anaplan.simulator import Simulator
from tests.kit.targetkit import CORE


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(CORE) as simulator:
        yield simulator
