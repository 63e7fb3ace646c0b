"""The singer-sdk standard target tests, loading into the simulator through real uploads.

``scenarios/sdk_standard.json`` has a data source (file + list import) for every stream
of ``singer_sdk/testing/target_test_streams`` that the default suite sends, so each test
uploads a CSV and runs an import. Tests of the default suite left out: none.
``TargetMultipleStateMessages`` is not in the SDK's default suite (it expects one STATE
per input STATE, which the SDK never emits: state goes out only after a full drain);
``test_insert_mode_emits_state_after_each_commit`` covers the behaviour instead.
"""

from __future__ import annotations

import atexit
import io
import json
from importlib import resources

import pytest
from singer_sdk.testing import get_target_test_class, target_test_streams

from target_anaplan.simulator import Simulator
from target_anaplan.target import TargetAnaplan
from tests.kit.targetkit import SCENARIOS, USER, list_items, sim_config

SCENARIO = SCENARIOS / "sdk_standard.json"
MODEL = "75A40874E6B64FA3AE0EB2C4D5E6F7C2"


def _streams() -> dict:
    """Every stream of the scenario, mapped to its file and import (list items by code)."""
    scenario = json.loads(SCENARIO.read_text())
    model = scenario["workspaces"][0]["models"][0]
    files = {f["id"]: f["name"] for f in model["files"]}
    streams = {}
    for imp in model["imports"]:
        file_name = files[imp["importDataSourceId"]]
        stream = (
            "test:SpecialChars!in?attributes"
            if file_name == "special_chars.csv"
            else file_name.removesuffix(".csv")
        )
        streams[stream] = {"file": file_name, "imports": [imp["name"]], "mode": "all"}
    return streams


# The generated class needs its config at import time, so the simulator starts here.
_SIM = Simulator(SCENARIO)
_SIM.start()
atexit.register(_SIM.stop)
CONFIG = sim_config(
    _SIM, workspace="SDK Standard Tests", model="Standard Streams", **USER, streams=_streams()
)

StandardTargetTests = get_target_test_class(TargetAnaplan, config=CONFIG)


class TestTargetAnaplanStandard(StandardTargetTests):
    """The SDK's default target suite against the simulator."""

    @pytest.fixture(scope="class")
    @classmethod
    def resource(cls):
        _SIM.reset()
        yield


def _run(name: str) -> None:
    text = (resources.files(target_test_streams) / f"{name}.singer").read_text(encoding="utf-8")
    TargetAnaplan(config=CONFIG).listen(io.StringIO(text))


def test_standard_streams_land_in_the_model():
    """The standard inputs are really loaded: read back a few of them from the lists."""
    _SIM.reset()
    for name in (
        "encoded_string_data",
        "special_chars_in_attributes",
        "schema_updates",
        "array_data",
    ):
        _run(name)

    strings = list_items(_SIM, "Strings", MODEL)
    assert strings["2"]["properties"]["info"] == "απλή συμβολοσειρά"
    assert strings["5"]["properties"]["info"] == 'quoted "string"'
    in_objects = list_items(_SIM, "StringsInObjects", MODEL)
    assert json.loads(in_objects["1"]["properties"]["info"])["name"]
    special = list_items(_SIM, "SpecialChars", MODEL)
    assert json.loads(special["a2e98886"]["properties"]["d"]) == {
        "env": "prod",
        "agent:type": "desktop",
        "agent:os:version": "10.13.1",
    }
    assert len(list_items(_SIM, "SchemaUpdates", MODEL)) == 6
    fruits = list_items(_SIM, "ArrayData", MODEL)
    assert all(isinstance(json.loads(i["properties"]["fruits"]), list) for i in fruits.values())
