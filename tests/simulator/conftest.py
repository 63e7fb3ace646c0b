"""Fixtures for the simulator's own tests: logged-in clients of the example scenario."""

from __future__ import annotations

import pytest
from simkit import OTHER_USER, Client

from target_anaplan.simulator import Simulator


@pytest.fixture
def api(simulator: Simulator) -> Client:
    """The example scenario's integration user, logged in."""
    return Client(simulator)


@pytest.fixture
def other_api(simulator: Simulator) -> Client:
    """A second user of the same model."""
    return Client(simulator, OTHER_USER)
