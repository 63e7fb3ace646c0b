"""Fixtures for the simulator's own tests: logged-in clients of the example scenario."""

from __future__ import annotations

import pytest

from target_anaplan.simulator import Simulator
from tests.kit import certgen
from tests.kit.modelkit import core_client, core_scenario
from tests.kit.oauthkit import oauth_scenario
from tests.kit.simkit import OTHER_USER, Client


@pytest.fixture
def api(simulator: Simulator) -> Client:
    """The example scenario's integration user, logged in."""
    return Client(simulator)


@pytest.fixture
def other_api(simulator: Simulator) -> Client:
    """A second user of the same model."""
    return Client(simulator, OTHER_USER)


@pytest.fixture(scope="module")
def cert_bundle() -> certgen.CertBundle:
    """A CA and a leaf certificate made at test time (key generation is slow: once a module)."""
    return certgen.generate()


@pytest.fixture
def cert_sim(sim_with, cert_bundle) -> Simulator:
    """The OAuth scenario with the leaf certificate registered for the integration user."""
    return sim_with(oauth_scenario(certificates=[cert_bundle.leaf_cert_pem]))


@pytest.fixture
def core_api(sim_with) -> Client:
    """The core scenario (child list, control module, delete action), logged in."""
    return core_client(sim_with(core_scenario()))
