"""Import semantics: rows landing, header checks, row failures and dumps, queueing, processes."""

from __future__ import annotations

import base64

import pytest
import requests

from tests.kit.simkit import (
    MODEL_ID,
    MODEL_PATH,
    PROCESS,
    PRODUCTS_FILE,
    PRODUCTS_HEADER,
    PRODUCTS_IMPORT,
    SALES_FILE,
    SALES_HEADER,
    SALES_IMPORT,
    USER,
    Client,
    values,
)

PRODUCTS = PRODUCTS_HEADER + (
    'P1,"Widget, large",Tools,12.5,2024-01-02,true\nP2,Gadget,Toys,3,2024-02-29,FALSE\n'
)
SALES = SALES_HEADER + "P1,EMEA,3,37.5,first\nP2,Americas,1,3,\n"


def test_full_round_trip_with_real_basic_login(simulator) -> None:
    basic = base64.b64encode(b"integration@example.com:demo-password").decode()
    login = requests.post(f"{simulator.url}/token/authenticate",
                          headers={"Authorization": f"Basic {basic}"}, timeout=5)  # fmt: skip
    assert login.status_code in (200, 201)
    token = login.json()["tokenInfo"]["tokenValue"]
    session = requests.Session()
    session.headers["Authorization"] = f"AnaplanAuthToken {token}"
    listed = session.get(f"{simulator.url}/2/0/models/{MODEL_ID}/imports", timeout=5)
    assert listed.status_code == 200
    assert len(listed.json()["imports"]) == 2


def test_upload_two_imports_and_read_rows_back(api: Client) -> None:
    api.upload(PRODUCTS_FILE, PRODUCTS, chunks=3)
    api.upload(SALES_FILE, SALES, chunks=2)
    products = api.run(PRODUCTS_IMPORT)
    sales = api.run(SALES_IMPORT)

    assert products["result"]["successful"] is True
    counts = values(products["result"]["details"][0])
    assert counts["successRowCount"] == "2"
    assert counts["failedCount"] == "0"
    assert counts["totalRowCount"] == "2"
    assert api.sim.list_items(MODEL_ID, "Products") == [
        {"code": "P1", "name": "Widget, large", "parent": "",
         "properties": {"Category": "Tools", "Price": 12.5, "Launched": "2024-01-02",
                        "Active": True}},
        {"code": "P2", "name": "Gadget", "parent": "",
         "properties": {"Category": "Toys", "Price": 3, "Launched": "2024-02-29",
                        "Active": False}},
    ]  # fmt: skip
    assert values(sales["result"]["details"][0])["successRowCount"] == "2"
    assert api.sim.module_rows(MODEL_ID, "Sales") == [
        {"dimensions": {"Products": "P1", "Regions": "EMEA"},
         "values": {"Units": 3, "Revenue": 37.5, "Note": "first"}},
        {"dimensions": {"Products": "P2", "Regions": "AMER"},
         "values": {"Units": 1, "Revenue": 3, "Note": ""}},
    ]  # fmt: skip


def test_second_import_updates_by_code(api: Client) -> None:
    api.upload(PRODUCTS_FILE, PRODUCTS)
    api.run(PRODUCTS_IMPORT)
    api.upload(PRODUCTS_FILE, PRODUCTS_HEADER + "P1,Renamed,Tools,1,2024-01-02,true\n")
    result = api.run(PRODUCTS_IMPORT)["result"]
    assert values(result["details"][0])["successUpdateCount"] == "1"
    names = {i["code"]: i["name"] for i in api.sim.list_items(MODEL_ID, "Products")}
    assert names == {"P1": "Renamed", "P2": "Gadget"}


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        ("Code,Name,Category,Price,Active,Launched", "column 5: expected 'Launched'"),
        ("Code,Name,Category,Price,Launched", "expected 6 columns, found 5"),
        ("code,Name,Category,Price,Launched,Active", "column 1: expected 'Code', found 'code'"),
    ],
)
def test_header_mismatch_fails_the_task(api: Client, header: str, fragment: str) -> None:
    api.upload(PRODUCTS_FILE, header + "\nP1,W,T,1,2024-01-01,true\n")
    task = api.run(PRODUCTS_IMPORT)
    assert task["taskState"] == "COMPLETE"
    assert task["currentStep"] == "Failed."
    assert task["result"]["successful"] is False
    assert fragment in task["result"]["details"][0]["localMessageText"]
    assert api.sim.list_items(MODEL_ID, "Products") == []


BAD_ROWS = PRODUCTS_HEADER + (
    "P1,Good,Tools,1,2024-01-01,true\n"
    'P2,"Say ""hi""",Tools,abc,2024-01-01,true\n'
    "P3,BadDate,Tools,1,2024-13-01,true\n"
    "P4,BadBool,Tools,1,2024-01-01,maybe\n"
    "\n"
    "P5,Short,Tools\n"
)


def test_bad_values_reject_rows_with_a_dump(api: Client) -> None:
    api.upload(PRODUCTS_FILE, BAD_ROWS)
    task = api.run(PRODUCTS_IMPORT)
    result = task["result"]
    assert task["currentStep"] == "Complete."
    assert result["successful"] is True
    assert result["failureDumpAvailable"] is True
    counts = values(result["details"][0])
    assert (counts["successRowCount"], counts["failedCount"], counts["ignoredCount"],
            counts["totalRowCount"]) == ("1", "4", "1", "6")  # fmt: skip
    assert result["details"][0]["type"] == "hierarchyRowsProcessedWithFailures"
    assert [i["code"] for i in api.sim.list_items(MODEL_ID, "Products")] == ["P1"]
    dump = api.get(f"@/imports/{PRODUCTS_IMPORT}/tasks/{task['taskId']}/dump").text
    lines = dump.splitlines()
    assert lines[0] == ('"_Status_","Code","Name","Category","Price","Launched","Active",'
                        '"_Line_","_Error_1_"')  # fmt: skip
    assert lines[1] == ('"E","P2","Say ""hi""","Tools","abc","2024-01-01","true","3",'
                        '"Invalid number: \'abc\' in column \'Price\'"')  # fmt: skip
    assert '"P3"' in lines[2] and "Invalid date" in lines[2]
    assert '"P4"' in lines[3] and "Invalid boolean" in lines[3]
    assert lines[4].startswith('"E","P5","Short","Tools","","","","7"')
    assert len(lines) == 5


def test_unknown_dimension_item_rejects_the_module_row(api: Client) -> None:
    api.upload(PRODUCTS_FILE, PRODUCTS)
    api.run(PRODUCTS_IMPORT)
    api.upload(SALES_FILE, SALES_HEADER + "P1,EMEA,1,1,x\nP9,EMEA,1,1,y\nP1,Mars,1,1,z\n")
    result = api.run(SALES_IMPORT)["result"]
    assert values(result["details"][0])["failedCount"] == "2"
    assert result["failureDumpAvailable"] is True
    assert len(api.sim.module_rows(MODEL_ID, "Sales")) == 1


def test_source_options_decimal_comma_semicolon_latin1(sim_with) -> None:
    sim = sim_with(
        files=[{"id": "113000000000", "name": "products.csv", "separator": ";",
                "delimiter": "'", "encoding": "ISO-8859-1", "headerRow": 2, "firstDataRow": 4}],
        imports=[{"id": "112000000000", "name": "Products", "importDataSourceId": "113000000000",
                  "importType": "HIERARCHY_DATA", "list": "Products",
                  "importMetadata": {"source": {"headerNames": ["Code", "Name", "Price"],
                                                "decimalSeparator": ","}},
                  "mapping": {"Code": "code", "Name": "name", "Price": "Price"}}],
        processes=[],
    )  # fmt: skip
    api = Client(sim)
    meta = api.get("@/imports/112000000000").json()["importMetadata"]["source"]
    assert (meta["columnSeparator"], meta["textDelimiter"], meta["textEncoding"],
            meta["headerRow"], meta["firstDataRow"]) == (";", "'", "ISO-8859-1", 2, 4)  # fmt: skip
    text = "title line\nCode;Name;Price\nskipped line\nP1;'Caf\u00e9; bar';1,5\nP2;Two;2.5\n"
    api.upload("113000000000", text, encoding="latin-1")
    result = api.run("112000000000")["result"]
    assert values(result["details"][0])["failedCount"] == "1"
    [item] = sim.list_items(MODEL_ID, "Products")
    assert item["name"] == "Caf\u00e9; bar"
    assert item["properties"]["Price"] == 1.5


def test_content_not_in_the_source_encoding_fails(sim_with) -> None:
    sim = sim_with(files=[{"id": "113000000000", "name": "products.csv", "encoding": "UTF-8"},
                          {"id": "113000000001", "name": "sales.csv"}])  # fmt: skip
    api = Client(sim)
    api.upload(PRODUCTS_FILE, PRODUCTS_HEADER + "P1,Caf\u00e9,T,1,2024-01-01,true\n",
               encoding="latin-1")  # fmt: skip
    task = api.run(PRODUCTS_IMPORT)
    assert task["result"]["successful"] is False
    assert "UTF-8" in task["result"]["details"][0]["localMessageText"]


def test_import_without_uploaded_content_fails(api: Client) -> None:
    task = api.run(PRODUCTS_IMPORT)
    assert task["result"]["successful"] is False
    assert task["result"]["details"][0]["type"] == "uploadedFileNoLongerAvailable"


def test_model_lock_queues_the_second_task(api: Client) -> None:
    api.upload(PRODUCTS_FILE, PRODUCTS)
    api.upload(SALES_FILE, SALES)
    api.sim.add_fault({"kind": "hold", "action_id": PRODUCTS_IMPORT, "polls": 2})
    first = api.start(PRODUCTS_IMPORT)
    second = api.start(SALES_IMPORT)
    assert api.poll(PRODUCTS_IMPORT, first)["taskState"] == "IN_PROGRESS"
    assert api.poll(SALES_IMPORT, second)["taskState"] == "NOT_STARTED"
    assert api.poll(SALES_IMPORT, second)["taskState"] == "NOT_STARTED"
    assert api.poll(PRODUCTS_IMPORT, first)["taskState"] == "COMPLETE"
    assert api.poll(SALES_IMPORT, second)["taskState"] == "IN_PROGRESS"
    assert api.poll(SALES_IMPORT, second)["taskState"] == "COMPLETE"
    assert len(api.sim.module_rows(MODEL_ID, "Sales")) == 2


def test_cancel_while_running_applies_nothing(api: Client) -> None:
    api.upload(PRODUCTS_FILE, PRODUCTS)
    task_id = api.start(PRODUCTS_IMPORT)
    assert api.poll(PRODUCTS_IMPORT, task_id)["taskState"] == "IN_PROGRESS"
    cancel = api.call("DELETE", f"@/imports/{PRODUCTS_IMPORT}/tasks/{task_id}")
    assert cancel.json()["task"]["taskState"] == "CANCELLING"
    assert api.poll(PRODUCTS_IMPORT, task_id)["taskState"] == "CANCELLED"
    assert api.poll(PRODUCTS_IMPORT, task_id)["taskState"] == "CANCELLED"
    assert api.sim.list_items(MODEL_ID, "Products") == []


def test_process_reports_nested_results_and_per_action_dump(api: Client) -> None:
    api.upload(PRODUCTS_FILE, PRODUCTS)
    api.upload(SALES_FILE, SALES + "P1,Nowhere,1,1,x\n")
    task = api.run(PROCESS, kind="processes")
    result = task["result"]
    assert result["successful"] is True
    assert result["failureDumpAvailable"] is True
    products, sales = result["nestedResults"]
    assert (products["objectId"], products["failureDumpAvailable"]) == (PRODUCTS_IMPORT, False)
    assert (sales["objectId"], sales["failureDumpAvailable"]) == (SALES_IMPORT, True)
    assert values(sales["details"][0])["successRowCount"] == "2"
    dump = api.get(f"@/processes/{PROCESS}/tasks/{task['taskId']}/dumps/{SALES_IMPORT}")
    assert '"Nowhere"' in dump.text
    assert len(api.sim.module_rows(MODEL_ID, "Sales")) == 2


def test_process_stops_at_a_failed_step(api: Client) -> None:
    api.upload(PRODUCTS_FILE, "Wrong,Header\n")
    api.upload(SALES_FILE, SALES)
    task = api.run(PROCESS, kind="processes")
    assert task["currentStep"] == "Failed."
    assert task["result"]["successful"] is False
    assert [n["objectId"] for n in task["result"]["nestedResults"]] == [PRODUCTS_IMPORT]
    assert api.sim.module_rows(MODEL_ID, "Sales") == []


def test_dump_belongs_to_the_user_who_ran_the_task(api: Client, other_api: Client) -> None:
    api.upload(PRODUCTS_FILE, BAD_ROWS)
    task = api.run(PRODUCTS_IMPORT)
    path = f"{MODEL_PATH}/imports/{PRODUCTS_IMPORT}/tasks/{task['taskId']}/dump"
    assert api.get(path).status_code == 200
    assert other_api.get(path).status_code == 404
    assert api.sim.tasks()[0]["user"] == USER


def test_crlf_and_quoted_newlines_keep_source_line_numbers(api: Client) -> None:
    text = PRODUCTS_HEADER.replace("\n", "\r\n") + (
        'P1,"Two\r\nlines",T,1,2024-01-01,true\r\nP2,Bad,T,x,2024-01-01,true\r\n'
    )
    api.upload(PRODUCTS_FILE, text)
    task = api.run(PRODUCTS_IMPORT)
    assert [i["name"] for i in api.sim.list_items(MODEL_ID, "Products")] == ["Two\r\nlines"]
    dump = api.get(f"@/imports/{PRODUCTS_IMPORT}/tasks/{task['taskId']}/dump").text
    assert dump.splitlines()[1].endswith("\"4\",\"Invalid number: 'x' in column 'Price'\"")


def test_empty_values_clear_module_cells(api: Client) -> None:
    api.upload(PRODUCTS_FILE, PRODUCTS)
    api.run(PRODUCTS_IMPORT)
    api.upload(SALES_FILE, SALES)
    api.run(SALES_IMPORT)
    api.upload(SALES_FILE, SALES_HEADER + "P1,EMEA,,,\n")
    result = api.run(SALES_IMPORT)["result"]
    assert values(result["details"][0])["successUpdateCount"] == "1"
    assert api.sim.module_rows(MODEL_ID, "Sales")[0] == {
        "dimensions": {"Products": "P1", "Regions": "EMEA"},
        "values": {"Units": None, "Revenue": None, "Note": ""},
    }


def test_a_large_file_counts_lines_across_quoted_newlines(api: Client) -> None:
    rows = [f'P{n},"Name\r\n{n}",Tools,{n},2024-01-02,true\n' for n in range(1200)]
    rows[1100] = "P1100,Bad,Tools,x,2024-01-02,true\n"
    api.upload(PRODUCTS_FILE, PRODUCTS_HEADER + "".join(rows), chunks=7)
    task = api.run(PRODUCTS_IMPORT)
    counts = values(task["result"]["details"][0])
    assert (counts["successCreateCount"], counts["failedCount"]) == ("1199", "1")
    dump = api.get(f"@/imports/{PRODUCTS_IMPORT}/tasks/{task['taskId']}/dump").text
    assert dump.splitlines()[1].startswith(
        '"E","P1100","Bad","Tools","x","2024-01-02","true","2202"'
    )
    items = api.sim.list_items(MODEL_ID, "Products")
    assert (len(items), items[-1]["name"]) == (1199, "Name\r\n1199")


def test_a_cr_ending_one_field_and_a_lf_starting_the_next_are_two_lines(api: Client) -> None:
    rows = [f"P{n},Name,Tools,1,2024-01-02,true\n" for n in range(900)]
    for at in (100, 600):  # in the file's first batch of records, and in a later one
        rows[at] = f'Q{at},"ends\r","\nstarts",1,2024-01-02,true\n'
    rows[300] = "B1,Bad,Tools,x,2024-01-02,true\n"
    rows[700] = "B2,Bad,Tools,x,2024-01-02,true\n"
    api.upload(PRODUCTS_FILE, PRODUCTS_HEADER + "".join(rows))
    task = api.run(PRODUCTS_IMPORT)
    dump = api.get(f"@/imports/{PRODUCTS_IMPORT}/tasks/{task['taskId']}/dump").text
    assert [line.split(",")[-2] for line in dump.splitlines()[1:]] == ['"304"', '"706"']
