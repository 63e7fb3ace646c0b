"""Lists: metadata with parents, child-list imports, and the transactional item calls."""

from __future__ import annotations

import csv
import io

import pytest

from tests.kit.modelkit import (
    CITIES_FILE,
    CITIES_IMPORT,
    CITIES_LIST,
    DIRECT_PATH,
    MODEL,
    PRODUCTS_LIST,
    REGIONS_FILE,
    REGIONS_IMPORT,
    REGIONS_LIST,
    WORKSPACE_PATH,
    core_client,
    core_scenario,
    load,
    load_products_and_sales,
)
from tests.kit.simkit import Client, error, ok, page, values

BOTH_PATHS = pytest.mark.parametrize("prefix", [WORKSPACE_PATH, DIRECT_PATH])
CITIES_HEADER = "Code,Name,Region,Population\n"


def items_of(api: Client, list_id: str, **params: str) -> list[dict]:
    return ok(api.get(f"@/lists/{list_id}/items", params=params), "listItems")


def post_items(api: Client, list_id: str, action: str, items: list) -> dict:
    response = api.call("POST", f"@/lists/{list_id}/items", params={"action": action},
                        json={"items": items})  # fmt: skip
    assert response.status_code == 200, response.text
    return response.json()


def load_regions_and_cities(api: Client) -> dict:
    load(api, REGIONS_IMPORT, REGIONS_FILE, "Code\tName\nEMEA\tEurope\nAMER\tAmericas\n")
    api.upload(CITIES_FILE, CITIES_HEADER + (
        "PAR,Paris,EMEA,2100000\n"       # parent by code
        "NYC,New York,Americas,8300000\n"  # parent by name
        "XXX,Atlantis,Atlantic,0\n"        # no such region
        "TOP,Nowhere,,\n"                  # no parent at all
    ))  # fmt: skip
    return api.run(CITIES_IMPORT)


@BOTH_PATHS
def test_lists_are_paged_with_ids_and_names(core_api: Client, prefix: str) -> None:
    lists = page(core_api.get(f"{prefix}/lists"), "lists")
    assert lists[:2] == [{"id": PRODUCTS_LIST, "name": "Products"},
                         {"id": REGIONS_LIST, "name": "Regions"}]  # fmt: skip
    assert {"id": CITIES_LIST, "name": "Cities"} in lists
    second = core_api.get(f"{prefix}/lists", params={"limit": 1, "offset": 1})
    assert page(second, "lists") == [{"id": REGIONS_LIST, "name": "Regions"}]
    assert second.json()["meta"]["paging"]["totalSize"] == len(lists)


@BOTH_PATHS
def test_list_metadata_names_the_parent_only_when_there_is_one(
    core_api: Client, prefix: str
) -> None:
    cities = ok(core_api.get(f"{prefix}/lists/{CITIES_LIST}"), "metadata")
    assert cities["parent"] == {"id": REGIONS_LIST, "name": "Regions"}
    assert (cities["id"], cities["name"], cities["numberedList"], cities["itemCount"]) == (
        CITIES_LIST, "Cities", False, 0)  # fmt: skip
    assert cities["properties"] == [{"name": "Population", "format": "NUMBER"}]
    products = ok(core_api.get(f"{prefix}/lists/{PRODUCTS_LIST}"), "metadata")
    assert "parent" not in products
    assert "topLevelItem" not in products
    assert [p["format"] for p in products["properties"]] == ["TEXT", "NUMBER", "DATE", "BOOLEAN"]
    error(core_api.get(f"{prefix}/lists/101999999999"), 404)


def test_child_list_rows_need_an_existing_parent_item(core_api: Client) -> None:
    task = load_regions_and_cities(core_api)
    result = task["result"]
    counts = values(result["details"][0])
    assert (counts["successRowCount"], counts["failedCount"]) == ("3", "1")
    assert result["details"][1]["type"] == "hierarchyImportInvalidParent"
    dump = core_api.get(f"@/imports/{CITIES_IMPORT}/tasks/{task['taskId']}/dump").text
    assert dump.splitlines()[1] == (
        '"E","XXX","Atlantis","Atlantic","0","4",'
        "\"Invalid parent 'Atlantic' in column 'Region': not an item of list 'Regions'\""
    )
    cities = core_api.sim.list_items(MODEL, "Cities")
    assert [(c["code"], c["parent"]) for c in cities] == [
        ("PAR", "EMEA"), ("NYC", "Americas"), ("TOP", "")]  # fmt: skip
    assert ok(core_api.get(f"@/lists/{CITIES_LIST}"), "metadata")["itemCount"] == 3


def test_a_child_list_loaded_before_its_parent_fails_every_row(core_api: Client) -> None:
    core_api.upload(CITIES_FILE, CITIES_HEADER + "PAR,Paris,EMEA,2100000\n")
    result = core_api.run(CITIES_IMPORT)["result"]
    assert values(result["details"][0])["failedCount"] == "1"
    assert core_api.sim.list_items(MODEL, "Cities") == []


def test_items_name_their_parent_item_and_list(core_api: Client) -> None:
    load_regions_and_cities(core_api)
    regions = {r["code"]: r for r in items_of(core_api, REGIONS_LIST)}
    paris, new_york, top = items_of(core_api, CITIES_LIST)
    assert paris == {"id": paris["id"], "name": "Paris", "code": "PAR", "parent": "Europe",
                     "parentId": regions["EMEA"]["id"], "listId": REGIONS_LIST,
                     "listName": "Regions"}  # fmt: skip
    assert new_york["parentId"] == regions["AMER"]["id"]
    assert top == {"id": top["id"], "name": "Nowhere", "code": "TOP"}
    assert len({paris["id"], new_york["id"], top["id"]}) == 3
    assert all(len(i["id"]) == 12 and i["id"].isdigit() for i in (paris, new_york, top))


def test_include_all_adds_properties_as_strings(core_api: Client) -> None:
    load_products_and_sales(core_api)
    assert "properties" not in items_of(core_api, PRODUCTS_LIST)[0]
    first = items_of(core_api, PRODUCTS_LIST, includeAll="true")[0]
    assert first["properties"] == {"Category": "Tools", "Price": "1", "Launched": "2024-01-01",
                                   "Active": "true"}  # fmt: skip
    assert first["subsets"] == {}


def test_items_as_csv(core_api: Client) -> None:
    load_regions_and_cities(core_api)
    response = core_api.get(f"@/lists/{CITIES_LIST}/items", params={"includeAll": "true"},
                            headers={"Accept": "text/csv"})  # fmt: skip
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["id", "name", "code", "parent", "parentId", "listId", "listName",
                       "Population"]  # fmt: skip
    assert rows[1][1:4] + rows[1][5:] == ["Paris", "PAR", "Europe", REGIONS_LIST, "Regions",
                                          "2100000"]  # fmt: skip
    assert len(rows) == 4


def test_reading_more_items_than_the_cap_is_400(sim_with) -> None:
    api = core_client(sim_with(core_scenario(list_read_limit=2)))
    load_products_and_sales(api)
    body = error(api.get(f"@/lists/{PRODUCTS_LIST}/items"), 400)
    assert "readRequests" in body["status"]["message"]
    assert len(items_of(api, REGIONS_LIST)) == 2


@BOTH_PATHS
def test_add_items_counts_and_reports_each_failure(core_api: Client, prefix: str) -> None:
    core_api.model_path = prefix
    load_products_and_sales(core_api)
    answer = post_items(core_api, PRODUCTS_LIST, "add", [
        {"name": "Product P4", "code": "P4", "properties": {"Price": "4.5", "Active": "false"}},
        {"name": "Product P1", "code": "P9"},
        {"name": "Other", "code": "P2"},
        {"code": "P5"},
        {"name": "Bad", "code": "P6", "properties": {"Price": "four"}},
        {"name": "Odd", "code": "P7", "properties": {"Colour": "red"}},
        {"name": 8, "code": 8},
    ])  # fmt: skip
    assert (answer["added"], answer["ignored"], answer["total"]) == (2, 5, 7)
    assert [(f["requestIndex"], f["failureType"]) for f in answer["failures"]] == [
        (1, "DUPLICATE"), (2, "DUPLICATE"), (3, "INCOMPLETE_DATA"), (4, "INCORRECT_FORMAT"),
        (5, "INCORRECT_FORMAT")]  # fmt: skip
    assert "column name:Price" in answer["failures"][3]["failureMessageDetails"]
    added = {i["code"]: i for i in core_api.sim.list_items(MODEL, "Products")}
    assert added["P4"] == {"code": "P4", "name": "Product P4", "parent": "",
                           "properties": {"Price": 4.5, "Active": False}}  # fmt: skip
    assert added["8"]["name"] == "8"
    clean = post_items(core_api, PRODUCTS_LIST, "add", [{"name": "Ten", "code": "P10"}])
    assert clean["failures"] == []


def test_added_child_items_need_a_known_parent(core_api: Client) -> None:
    load(core_api, REGIONS_IMPORT, REGIONS_FILE, "Code\tName\nEMEA\tEurope\n")
    answer = post_items(core_api, CITIES_LIST, "add", [
        {"name": "Paris", "code": "PAR", "parent": "Europe"},
        {"name": "Atlantis", "code": "ATL", "parent": "Atlantic"},
    ])  # fmt: skip
    assert (answer["added"], answer["failures"][0]["requestIndex"]) == (1, 1)
    assert items_of(core_api, CITIES_LIST)[0]["parent"] == "Europe"


def test_empty_failures_can_be_left_out(sim_with) -> None:
    api = core_client(sim_with(core_scenario(list_empty_failures=False)))
    answer = post_items(api, PRODUCTS_LIST, "add", [{"name": "One", "code": "P1"}])
    assert answer["added"] == 1
    assert "failures" not in answer


def test_too_many_items_or_a_bad_body_is_400(core_api: Client) -> None:
    path = f"@/lists/{PRODUCTS_LIST}/items"
    many = {"items": [{"code": str(i)} for i in range(100_001)]}
    for action in ("add", "delete"):
        error(core_api.call("POST", path, params={"action": action}, json=many), 400)
    error(core_api.call("PUT", path, json=many), 400)
    error(core_api.call("POST", path, params={"action": "add"}, json={"items": "P1"}), 400)
    error(core_api.call("POST", path, json={"items": []}), 400)
    error(core_api.call("POST", "@/lists/101999999999/items", params={"action": "add"},
                        json={"items": []}), 404)  # fmt: skip


@BOTH_PATHS
def test_update_items_by_id_code_or_name(core_api: Client, prefix: str) -> None:
    core_api.model_path = prefix
    load_products_and_sales(core_api)
    p1 = items_of(core_api, PRODUCTS_LIST)[0]
    response = core_api.call("PUT", f"@/lists/{PRODUCTS_LIST}/items", json={"items": [
        {"id": p1["id"], "name": "Renamed", "properties": {"Price": "7"}},
        {"code": "P2", "properties": {"Category": "Toys"}},
        {"name": "Product P3", "properties": {"Category": "Toys"}},
        {"code": "P9", "name": "Ghost"},
        {"id": p1["id"], "code": ""},
    ]})  # fmt: skip
    answer = ok(response, "updated")
    body = response.json()
    assert (answer, body["ignored"], body["total"]) == (2, 3, 5)
    assert [(f["requestIndex"], f["failureType"]) for f in body["failures"]] == [
        (2, "INCOMPLETE_DATA"), (3, "Not found"), (4, "INCOMPLETE_DATA")]  # fmt: skip
    products = {i["code"]: i for i in core_api.sim.list_items(MODEL, "Products")}
    assert (products["P1"]["name"], products["P1"]["properties"]["Price"]) == ("Renamed", 7)
    assert products["P1"]["properties"]["Category"] == "Tools"
    assert products["P2"]["properties"]["Category"] == "Toys"


def test_a_new_code_rekeys_the_item_and_its_cells(core_api: Client) -> None:
    load_products_and_sales(core_api)
    p2 = items_of(core_api, PRODUCTS_LIST)[1]
    response = core_api.call("PUT", f"@/lists/{PRODUCTS_LIST}/items",
                             json={"items": [{"id": p2["id"], "code": "P2-NEW"}]})  # fmt: skip
    assert ok(response, "updated") == 1
    assert [i["code"] for i in core_api.sim.list_items(MODEL, "Products")] == [
        "P1", "P2-NEW", "P3"]  # fmt: skip
    rows = core_api.sim.module_rows(MODEL, "Sales")
    assert [r["dimensions"]["Products"] for r in rows] == ["P1", "P2-NEW", "P2-NEW"]
    assert items_of(core_api, PRODUCTS_LIST)[1]["id"] == p2["id"]


@BOTH_PATHS
def test_delete_items_by_id_or_code_removes_their_cells(core_api: Client, prefix: str) -> None:
    core_api.model_path = prefix
    load_products_and_sales(core_api)
    p1 = items_of(core_api, PRODUCTS_LIST)[0]
    answer = post_items(core_api, PRODUCTS_LIST, "delete", [{"id": int(p1["id"])}, {"code": "P2"}])
    assert answer["deleted"] == 2
    assert "failures" not in answer
    assert [i["code"] for i in core_api.sim.list_items(MODEL, "Products")] == ["P3"]
    assert core_api.sim.module_rows(MODEL, "Sales") == []
    assert [i["code"] for i in core_api.sim.list_items(MODEL, "Regions")] == ["EMEA", "AMER"]


def test_delete_reports_ambiguous_and_missing_items(core_api: Client) -> None:
    load_products_and_sales(core_api)
    p1 = items_of(core_api, PRODUCTS_LIST)[0]
    answer = post_items(core_api, PRODUCTS_LIST, "delete", [
        {"id": p1["id"], "code": "P1"}, {"code": "P9"}, {"id": "201999999999"}, {"code": "P3"},
        {"code": "P3"}, {"name": "Product P2"},
    ])  # fmt: skip
    assert answer["deleted"] == 1
    assert [(f["requestIndex"], f["failureType"]) for f in answer["failures"]] == [
        (0, "Ambiguous criteria"), (1, "Not found"), (2, "Not found"), (4, "Not found"),
        (5, "Not found")]  # fmt: skip
    assert answer["failures"][0]["failureMessageDetails"].startswith(
        "Specifying both ID and code not supported"
    )
    assert answer["failures"][1]["failureMessageDetails"] == "Code 'P9' not found"
    assert [i["code"] for i in core_api.sim.list_items(MODEL, "Products")] == ["P1", "P2"]


def test_delete_failures_can_come_nested_in_a_result(sim_with) -> None:
    api = core_client(sim_with(core_scenario(list_delete_response="nested")))
    load_products_and_sales(api)
    answer = post_items(api, PRODUCTS_LIST, "delete", [{"code": "P1"}, {"code": "P9"}])
    assert answer["result"]["numberOfItemsDeleted"] == 1
    assert answer["result"]["failures"][0]["requestIndex"] == 1
    assert "deleted" not in answer
    assert post_items(api, PRODUCTS_LIST, "delete", [{"code": "P2"}])["deleted"] == 1


def test_reset_index_needs_an_empty_list(core_api: Client) -> None:
    load_products_and_sales(core_api)
    path = f"/models/{MODEL}/lists/{PRODUCTS_LIST}/resetIndex"
    error(core_api.call("POST", path), 400)
    first_id = items_of(core_api, PRODUCTS_LIST)[0]["id"]
    post_items(core_api, PRODUCTS_LIST, "delete", [{"code": c} for c in ("P1", "P2", "P3")])
    response = core_api.call("POST", path)
    assert (response.status_code, response.content) == (200, b"")
    post_items(core_api, PRODUCTS_LIST, "add", [{"name": "Again", "code": "P1"}])
    assert items_of(core_api, PRODUCTS_LIST)[0]["id"] == first_id


def test_list_changes_are_model_saves(core_api: Client) -> None:
    def serial() -> int:
        model = ok(core_api.get(DIRECT_PATH, params={"modelDetails": "true"}), "model")
        return model["lastSavedSerialNumber"]

    load_products_and_sales(core_api)
    before = serial()
    post_items(core_api, PRODUCTS_LIST, "delete", [{"code": "P9"}])
    assert serial() == before
    post_items(core_api, PRODUCTS_LIST, "add", [{"name": "Four", "code": "P4"}])
    post_items(core_api, PRODUCTS_LIST, "delete", [{"code": "P4"}])
    assert serial() == before + 2
