"""Other actions: listing, metadata, and DELETE_BY_SELECTION run as a task or a process step."""

from __future__ import annotations

import re

import pytest

from tests.kit.modelkit import (
    DASHBOARD_ACTION,
    DELETE_ACTION,
    DIRECT_PATH,
    FLAG_AND_DELETE,
    FLAGS_FILE,
    FLAGS_IMPORT,
    MODEL,
    PRODUCTS_LIST,
    REGIONS_LIST,
    SORT_ACTION,
    WORKSPACE_PATH,
    core_client,
    core_scenario,
    load,
    load_products_and_sales,
)
from tests.kit.simkit import Client, error, ok, page

BOTH_PATHS = pytest.mark.parametrize("prefix", [WORKSPACE_PATH, DIRECT_PATH])
FLAGS_HEADER = "Product,Delete\n"


def product_codes(api: Client) -> list[str]:
    return [i["code"] for i in api.sim.list_items(MODEL, "Products")]


def flag(api: Client, rows: str) -> None:
    """Set the Delete flags of the control module with the flag import."""
    load(api, FLAGS_IMPORT, FLAGS_FILE, FLAGS_HEADER + rows)


@BOTH_PATHS
def test_actions_are_listed_with_an_optional_type(core_api: Client, prefix: str) -> None:
    actions = page(core_api.get(f"{prefix}/actions"), "actions")
    assert actions == [
        {"id": DELETE_ACTION, "name": "Delete flagged products",
         "actionType": "DELETE_BY_SELECTION"},
        {"id": SORT_ACTION, "name": "Sort regions", "actionType": "ORDER_HIERARCHY"},
        {"id": DASHBOARD_ACTION, "name": "Open Dashboard"},
    ]  # fmt: skip
    assert page(core_api.get(f"{prefix}/actions", params={"offset": 2}), "actions") == [
        {"id": DASHBOARD_ACTION, "name": "Open Dashboard"}
    ]
    by_name = page(core_api.get(f"{prefix}/actions", params={"sort": "-name"}), "actions")
    assert [a["name"] for a in by_name] == ["Sort regions", "Open Dashboard",
                                            "Delete flagged products"]  # fmt: skip


@BOTH_PATHS
def test_delete_action_metadata_names_its_list_and_filter(core_api: Client, prefix: str) -> None:
    action = ok(core_api.get(f"{prefix}/actions/{DELETE_ACTION}"), "action")
    assert (action["id"], action["actionType"], action["listId"]) == (
        DELETE_ACTION, "DELETE_BY_SELECTION", PRODUCTS_LIST)  # fmt: skip
    assert len(action["filterLineItemId"]) == 12
    assert action["filterLineItemId"].isdigit()
    sort = ok(core_api.get(f"{prefix}/actions/{SORT_ACTION}"), "action")
    assert sort["listId"] == REGIONS_LIST
    assert "filterLineItemId" not in sort
    dashboard = ok(core_api.get(f"{prefix}/actions/{DASHBOARD_ACTION}"), "action")
    assert dashboard == {"id": DASHBOARD_ACTION, "name": "Open Dashboard"}
    error(core_api.get(f"{prefix}/actions/117999999999"), 404)


@BOTH_PATHS
def test_starting_an_action_needs_a_locale(core_api: Client, prefix: str) -> None:
    path = f"{prefix}/actions/{DELETE_ACTION}/tasks"
    error(core_api.call("POST", path, json={}), 400)
    error(core_api.call("POST", path), 400)
    error(core_api.call("POST", f"{prefix}/actions/117999999999/tasks",
                        json={"localeName": "en_US"}), 404)  # fmt: skip
    task = ok(core_api.call("POST", path, json={"localeName": "en_US"}), "task")
    assert re.fullmatch(r"[0-9A-F]{32}", task["taskId"])
    assert task["taskState"] == "NOT_STARTED"


def test_flag_then_delete_removes_the_flagged_items_and_their_cells(core_api: Client) -> None:
    load_products_and_sales(core_api)
    flag(core_api, "P1,false\nP2,true\nP3,\n")
    task_id = core_api.start(DELETE_ACTION, "actions")
    assert core_api.poll(DELETE_ACTION, task_id, "actions")["taskState"] == "IN_PROGRESS"
    assert product_codes(core_api) == ["P1", "P2", "P3"]
    done = core_api.poll(DELETE_ACTION, task_id, "actions")
    assert (done["taskState"], done["currentStep"]) == ("COMPLETE", "Complete.")
    assert done["result"] == {"successful": True, "failureDumpAvailable": False,
                              "objectId": DELETE_ACTION}  # fmt: skip
    assert product_codes(core_api) == ["P1", "P3"]
    assert [r["dimensions"]["Products"] for r in core_api.sim.module_rows(MODEL, "Sales")] == [
        "P1"]  # fmt: skip
    flags = core_api.sim.module_rows(MODEL, "Product Flags")
    assert [(r["dimensions"]["Products"], r["values"]["Delete"]) for r in flags] == [
        ("P1", False), ("P3", None)]  # fmt: skip
    tasks = page(core_api.get(f"@/actions/{DELETE_ACTION}/tasks"), "tasks")
    assert [t["taskId"] for t in tasks] == [task_id]


def test_a_flag_cleared_by_an_empty_value_deletes_nothing(core_api: Client) -> None:
    load_products_and_sales(core_api)
    flag(core_api, "P1,true\nP2,true\n")
    flag(core_api, "P1,\n")
    assert core_api.run(DELETE_ACTION, "actions")["result"]["successful"] is True
    assert product_codes(core_api) == ["P1", "P3"]


def test_a_cancelled_delete_deletes_nothing(core_api: Client) -> None:
    load_products_and_sales(core_api)
    flag(core_api, "P1,true\n")
    task_id = core_api.start(DELETE_ACTION, "actions")
    cancel = ok(core_api.call("DELETE", f"@/actions/{DELETE_ACTION}/tasks/{task_id}"), "task")
    assert cancel["taskState"] == "CANCELLING"
    assert core_api.poll(DELETE_ACTION, task_id, "actions")["taskState"] == "CANCELLED"
    assert product_codes(core_api) == ["P1", "P2", "P3"]


def test_a_failed_delete_deletes_nothing(core_api: Client) -> None:
    load_products_and_sales(core_api)
    flag(core_api, "P1,true\n")
    core_api.sim.add_fault({"kind": "fail", "action_id": DELETE_ACTION, "message": "No access"})
    task = core_api.run(DELETE_ACTION, "actions")
    assert (task["currentStep"], task["result"]["successful"]) == ("Failed.", False)
    assert task["result"]["details"][0]["type"] == "deleteFromSelectionFailed"
    assert product_codes(core_api) == ["P1", "P2", "P3"]


def test_other_actions_run_and_change_nothing(core_api: Client) -> None:
    load_products_and_sales(core_api)
    for action in (SORT_ACTION, DASHBOARD_ACTION):
        result = core_api.run(action, "actions")["result"]
        assert (result["successful"], result["objectId"]) == (True, action)
    assert product_codes(core_api) == ["P1", "P2", "P3"]


def test_a_delete_can_report_details(sim_with) -> None:
    scenario = core_scenario()
    scenario["workspaces"][0]["models"][0]["actions"][0]["details"] = True
    api = core_client(sim_with(scenario))
    load_products_and_sales(api)
    flag(api, "P1,true\nP3,true\n")
    [detail] = api.run(DELETE_ACTION, "actions")["result"]["details"]
    assert detail["type"] == "deleteFromSelectionSucceeded"
    assert detail["values"] == ["listName", "Products", "deletedCount", "2"]


def test_a_process_flags_then_deletes(core_api: Client) -> None:
    load_products_and_sales(core_api)
    meta = ok(core_api.get(f"@/processes/{FLAG_AND_DELETE}"), "processMetadata")
    assert [(a["id"], a["actionType"]) for a in meta["actions"]] == [
        (FLAGS_IMPORT, "IMPORT"), (DELETE_ACTION, "DELETE_BY_SELECTION")]  # fmt: skip
    assert "importDataSourceId" not in meta["actions"][1]
    core_api.upload(FLAGS_FILE, FLAGS_HEADER + "P3,true\n")
    result = core_api.run(FLAG_AND_DELETE, "processes")["result"]
    assert result["successful"] is True
    assert [n["objectId"] for n in result["nestedResults"]] == [FLAGS_IMPORT, DELETE_ACTION]
    assert result["nestedResults"][1]["failureDumpAvailable"] is False
    assert product_codes(core_api) == ["P1", "P2"]


def test_a_process_stops_before_the_delete_when_the_flag_import_fails(core_api: Client) -> None:
    load_products_and_sales(core_api)
    core_api.upload(FLAGS_FILE, "Wrong,Header\nP1,true\n")
    result = core_api.run(FLAG_AND_DELETE, "processes")["result"]
    assert result["successful"] is False
    assert [n["objectId"] for n in result["nestedResults"]] == [FLAGS_IMPORT]
    assert product_codes(core_api) == ["P1", "P2", "P3"]
