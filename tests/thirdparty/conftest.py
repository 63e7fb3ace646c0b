"""The third-party client tier: anaplan-sdk (PyPI), unchanged, against the simulator.

The SDK hard-codes Anaplan's hosts (https://api.anaplan.com, https://auth.anaplan.com,
https://us1a.app.anaplan.com). The only thing bent is where its requests go: its Client
passes extra keyword arguments to its httpx2.Client, so a transport that carries every
request for an Anaplan host to the simulator's loopback port is handed in as `transport=`.
Outside CI a machine without the `test` extra's anaplan-sdk skips this tier (its test module
says why); in CI it fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from target_anaplan.simulator import Simulator
from tests.kit.extras import missing_extra
from tests.kit.simkit import MODEL_ID, WORKSPACE_ID

if not missing_extra("test", "anaplan_sdk"):  # else the tier's test module skips
    import anaplan_sdk

    from tests.kit.sdkkit import SimulatorTransport, sdk_scenario


@pytest.fixture
def sim(sim_with: Callable[..., Simulator]) -> Simulator:
    return sim_with(sdk_scenario())


@pytest.fixture
def transport(sim: Simulator) -> Iterator[SimulatorTransport]:
    carrier = SimulatorTransport(sim)
    yield carrier
    carrier.close()


@pytest.fixture
def sdk(transport: SimulatorTransport) -> Callable[..., anaplan_sdk.Client]:
    """Build an anaplan-sdk Client on the example model that talks to the simulator."""

    def build(**kwargs: Any) -> anaplan_sdk.Client:
        kwargs.setdefault("workspace_id", WORKSPACE_ID)
        kwargs.setdefault("model_id", MODEL_ID)
        return anaplan_sdk.Client(transport=transport, status_poll_delay=0, **kwargs)

    return build
