"""Contract tests for the listings: `modelDetails` fields (§3.3) and `sort` (§3.1) on every
list endpoint that takes it."""

from __future__ import annotations

import json
import re

import pytest

from target_anaplan.simulator import EXAMPLE_SCENARIO
from tests.kit.simkit import (
    ARCHIVE_MODEL_ID,
    MODEL_ID,
    PROCESS,
    PRODUCTS_FILE,
    PRODUCTS_HEADER,
    PRODUCTS_IMPORT,
    WORKSPACE_ID,
    Client,
    error,
    ok,
    page,
    with_archive_workspace,
)

ANAPLAN_DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$")
DETAIL_FIELDS = ("lastSavedSerialNumber", "lastModifiedByUserGuid", "memoryUsage",
                 "isoCreationDate", "lastModified")  # fmt: skip
LISTINGS = ["/models", f"/workspaces/{WORKSPACE_ID}/models"]
SECOND_PROCESS = {"id": "118000000001", "name": "Another process", "actions": [PRODUCTS_IMPORT]}


@pytest.fixture
def two_workspaces(sim_with) -> Client:
    scenario = with_archive_workspace(json.loads(EXAMPLE_SCENARIO.read_text(encoding="utf-8")))
    return Client(sim_with(scenario))


def listed_model(api: Client, path: str) -> dict:
    """The example model as GET `path` shows it with modelDetails."""
    if path == "/model":
        return ok(api.get(f"/models/{MODEL_ID}", params={"modelDetails": "true"}), "model")
    models = page(api.get(path, params={"modelDetails": "true"}), "models")
    return next(m for m in models if m["id"] == MODEL_ID)


def load_one_product(api: Client) -> None:
    api.upload(PRODUCTS_FILE, PRODUCTS_HEADER + "P1,Widget,Tools,2,2024-01-01,true\n")
    assert api.run(PRODUCTS_IMPORT)["result"]["successful"] is True


@pytest.mark.parametrize("path", [*LISTINGS, "/model"])
def test_model_details_carry_every_documented_field(api: Client, path: str) -> None:
    model = listed_model(api, path)
    assert isinstance(model["lastSavedSerialNumber"], int)
    assert re.fullmatch(r"[0-9a-f]{32}", model["lastModifiedByUserGuid"])
    assert isinstance(model["memoryUsage"], int)
    assert model["memoryUsage"] > 0
    assert ANAPLAN_DATE.match(model["isoCreationDate"])
    assert ANAPLAN_DATE.match(model["lastModified"])
    assert model["modelTransactionRunning"] is False


@pytest.mark.parametrize("path", LISTINGS)
def test_without_model_details_the_fields_stay_out(api: Client, path: str) -> None:
    [model] = page(api.get(path), "models")
    assert not set(DETAIL_FIELDS) & set(model)
    assert "lastSavedSerialNumber" not in ok(api.get(f"/models/{MODEL_ID}"), "model")


def test_an_applied_import_is_a_save_by_its_user(api: Client) -> None:
    before = listed_model(api, "/model")
    load_one_product(api)
    after = listed_model(api, "/model")
    assert after["lastSavedSerialNumber"] == before["lastSavedSerialNumber"] + 1
    validated = api.session.get(f"{api.sim.url}/token/validate", timeout=5).json()
    assert after["lastModifiedByUserGuid"] == validated["userInfo"]["userGuid"]
    assert after["lastModified"] > before["lastModified"]
    assert after["isoCreationDate"] == before["isoCreationDate"]
    assert after["memoryUsage"] > before["memoryUsage"]  # one more list item, more grid cells


def test_a_failed_import_saves_nothing(api: Client) -> None:
    before = listed_model(api, "/model")
    api.sim.add_fault({"kind": "fail", "action_id": PRODUCTS_IMPORT})
    api.upload(PRODUCTS_FILE, PRODUCTS_HEADER + "P1,Widget,Tools,2,2024-01-01,true\n")
    assert api.run(PRODUCTS_IMPORT)["result"]["successful"] is False
    assert listed_model(api, "/model")["lastSavedSerialNumber"] == before["lastSavedSerialNumber"]


def test_the_scenario_sets_creation_date_and_serial_number(sim_with) -> None:
    sim = sim_with(isoCreationDate="2021-03-04T05:06:07.000+0000", lastSavedSerialNumber=7)
    model = listed_model(Client(sim), "/model")
    assert (model["isoCreationDate"], model["lastModified"]) == (
        "2021-03-04T05:06:07.000+0000",
    ) * 2
    assert model["lastSavedSerialNumber"] == 7


# -- sort on the top-level lists: prefix required, a few fields only ----------------------------


def names(response, key: str) -> list[str]:
    return [item["name"] for item in page(response, key)]


def test_workspaces_sort_by_name_both_ways(two_workspaces: Client) -> None:
    api = two_workspaces
    assert names(api.get("/workspaces"), "workspaces") == ["Demo Workspace", "Archive Workspace"]
    ascending = names(api.get("/workspaces", params={"sort": "+name"}), "workspaces")
    assert ascending == ["Archive Workspace", "Demo Workspace"]
    descending = names(api.get("/workspaces", params={"sort": "-name"}), "workspaces")
    assert descending == ["Demo Workspace", "Archive Workspace"]
    both = api.get("/workspaces", params={"sort": "-sizeAllowance,+name"})
    assert names(both, "workspaces") == ascending  # equal allowances: the name decides


@pytest.fixture
def three_models(sim_with) -> Client:
    """The example workspace holding, after the example model, an ARCHIVED model and an
    UNLOCKED one whose names sort before and after it: every sort differs from the stored
    order, on /models and on the workspace's listing alike."""
    scenario = json.loads(EXAMPLE_SCENARIO.read_text(encoding="utf-8"))
    scenario["workspaces"][0]["models"] += [
        {"id": ARCHIVE_MODEL_ID, "name": "Archive Model", "activeState": "ARCHIVED"},
        {"id": "0D1E2F3A4B5C4D6E8F9A0B1C2D3E4F5B", "name": "Zeta Model"},
    ]
    return Client(sim_with(scenario))


@pytest.mark.parametrize("path", LISTINGS)
def test_models_sort_by_name_and_state(three_models: Client, path: str) -> None:
    def listed(sort: str | None = None) -> list[str]:
        return names(three_models.get(path, params={"sort": sort} if sort else {}), "models")

    assert listed() == ["Demo Model", "Archive Model", "Zeta Model"]
    assert listed("+name") == ["Archive Model", "Demo Model", "Zeta Model"]
    assert listed("-name") == ["Zeta Model", "Demo Model", "Archive Model"]
    # ARCHIVED < UNLOCKED; the two UNLOCKED models keep their order, reversed with `-`.
    assert listed("+activeState") == ["Archive Model", "Demo Model", "Zeta Model"]
    assert listed("-activeState,+name") == ["Demo Model", "Zeta Model", "Archive Model"]


@pytest.mark.parametrize("path", ["/workspaces", "/models", f"/workspaces/{WORKSPACE_ID}/models"])
@pytest.mark.parametrize(
    ("value", "message"),
    [("name", "Bad sort order format: 'name'"), ("+id", "Failed to parse sort parameter"),
     ("+name,currentSize", "Bad sort order format: 'currentSize'")],
)  # fmt: skip
def test_top_level_sort_needs_a_prefix_and_a_sortable_field(
    two_workspaces: Client, path: str, value: str, message: str
) -> None:
    body = error(two_workspaces.get(path, params={"sort": value}), 400)
    assert body["status"]["message"].startswith(message)


# -- sort on the model-level lists: prefix optional, unknown fields ignored ---------------------


@pytest.fixture
def two_of_each(sim_with) -> Client:
    """Two files, two imports, two processes and three lists, listed in id order."""
    processes = [{"id": PROCESS, "name": "Load products and sales",
                  "actions": ["112000000000", "112000000001"]}, SECOND_PROCESS]  # fmt: skip
    example = json.loads(EXAMPLE_SCENARIO.read_text(encoding="utf-8"))
    lists = [*example["workspaces"][0]["models"][0]["lists"], {"name": "Channels"}]
    return Client(sim_with(processes=processes, lists=lists))


@pytest.mark.parametrize(
    ("kind", "stored"),
    [("files", ["products.csv", "sales.csv"]),
     ("imports", ["Products from products.csv", "Sales from sales.csv"]),
     ("processes", ["Load products and sales", "Another process"]),
     ("lists", ["Products", "Regions", "Channels"])],
)  # fmt: skip
def test_model_level_lists_sort_by_any_field(two_of_each: Client, kind: str, stored: list) -> None:
    api = two_of_each
    for prefix in ("@", f"/models/{MODEL_ID}"):
        assert names(api.get(f"{prefix}/{kind}"), kind) == stored
        assert names(api.get(f"{prefix}/{kind}", params={"sort": "-id"}), kind) == stored[::-1]
        assert names(api.get(f"{prefix}/{kind}", params={"sort": "+id"}), kind) == stored
    ascending = sorted(stored)
    assert names(api.get(f"@/{kind}", params={"sort": "name"}), kind) == ascending
    assert names(api.get(f"@/{kind}", params={"sort": "+name"}), kind) == ascending
    assert names(api.get(f"@/{kind}", params={"sort": "-name"}), kind) == ascending[::-1]
    ignored = api.get(f"@/{kind}", params={"sort": "+zzzNoSuchField"})
    assert names(ignored, kind) == stored


def test_task_lists_sort_by_creation_date_and_state(api: Client) -> None:
    load_one_product(api)
    finished = api.get(f"@/imports/{PRODUCTS_IMPORT}/tasks").json()["tasks"][0]["taskId"]
    queued = api.start(PRODUCTS_IMPORT)

    def task_ids(sort: str) -> list[str]:
        response = api.get(f"@/imports/{PRODUCTS_IMPORT}/tasks", params={"sort": sort})
        return [t["taskId"] for t in page(response, "tasks")]

    assert task_ids("creationDate") == [finished, queued]
    assert task_ids("-creationDate") == [queued, finished]
    assert task_ids("+taskState") == [finished, queued]  # COMPLETE < NOT_STARTED
    assert task_ids("-taskState") == [queued, finished]
    assert task_ids("-invalid_field") == [finished, queued]
