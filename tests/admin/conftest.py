"""Fixtures for the admin command's tests: the core scenario's simulator, in process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from target_anaplan.simulator import Simulator
from tests.kit.targetkit import CORE


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(CORE) as simulator:
        yield simulator
