"""A local Anaplan API simulator for tests: auth, Integration API v2 and a control API.

Imports nothing from the rest of target_anaplan so it stays an independent stand-in.
"""

from __future__ import annotations

from target_anaplan.simulator.scenario import EXAMPLE_SCENARIO, ScenarioError, load_scenario
from target_anaplan.simulator.server import Simulator

__all__ = ["EXAMPLE_SCENARIO", "ScenarioError", "Simulator", "load_scenario"]
