"""Contract tests: one per Integration API endpoint (#7-#29 of anaplan-api.md's table)."""

from __future__ import annotations

import re

import pytest
import requests

from tests.kit.simkit import (
    MODEL_ID,
    MODEL_PATH,
    PROCESS,
    PRODUCTS_FILE,
    PRODUCTS_HEADER,
    PRODUCTS_IMPORT,
    SALES_HEADER,
    SALES_IMPORT,
    WORKSPACE_ID,
    Client,
    error,
    gz,
    ok,
    page,
)

HEX32_LOWER = re.compile(r"^[0-9a-f]{32}$")
HEX32_UPPER = re.compile(r"^[0-9A-F]{32}$")
BAD_PRODUCTS = PRODUCTS_HEADER + "P1,Widget,Tools,abc,2024-01-01,true\n"


def test_every_api_call_needs_a_valid_token(api: Client) -> None:
    url = f"{api.sim.url}/2/0/workspaces"
    error(requests.get(url, timeout=5), 401)
    error(requests.get(url, headers={"Authorization": "AnaplanAuthToken nope"}, timeout=5), 401)
    token = api.session.headers["Authorization"].split(" ", 1)[1]
    bearer = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert bearer.status_code == 200


def test_07_workspaces(api: Client) -> None:
    [ws] = page(api.get("/workspaces"), "workspaces")
    assert ws == {"id": WORKSPACE_ID, "name": "Demo Workspace", "active": True,
                  "sizeAllowance": 1073741824}  # fmt: skip
    assert HEX32_LOWER.match(ws["id"])
    [detailed] = page(api.get("/workspaces", params={"tenantDetails": "true"}), "workspaces")
    assert detailed["currentSize"] == 0
    response = api.get("/workspaces", params={"limit": 1, "offset": 1})
    assert page(response, "workspaces") == []
    assert "workspaces" not in response.json()
    assert response.json()["meta"]["paging"] == {"currentPageSize": 0, "offset": 1, "totalSize": 1}
    error(api.get("/workspaces", params={"limit": "x"}), 400)


@pytest.mark.parametrize("path", ["/models", f"/workspaces/{WORKSPACE_ID}/models"])
def test_08_models(api: Client, path: str) -> None:
    [model] = page(api.get(path), "models")
    assert HEX32_UPPER.match(model["id"])
    assert model["activeState"] == "UNLOCKED"
    assert model["currentWorkspaceId"] == WORKSPACE_ID
    assert set(model) >= {"id", "name", "activeState", "currentWorkspaceId",
                          "currentWorkspaceName", "modelUrl", "categoryValues"}  # fmt: skip


def test_09_model(api: Client) -> None:
    model = ok(api.get(f"/models/{MODEL_ID}"), "model")
    assert model["name"] == "Demo Model"
    error(api.get("/models/00000000000000000000000000000000"), 404)
    error(api.get(MODEL_PATH), 405)


@pytest.mark.parametrize("prefix", [MODEL_PATH, f"/models/{MODEL_ID}"])
def test_10_files_on_both_paths(api: Client, prefix: str) -> None:
    files = page(api.get(f"{prefix}/files"), "files")
    assert files[0] == {"id": PRODUCTS_FILE, "name": "products.csv", "chunkCount": 0,
                        "delimiter": '"', "encoding": "UTF-8", "firstDataRow": 2,
                        "format": "txt", "headerRow": 1, "separator": ","}  # fmt: skip


@pytest.mark.parametrize("path", ["@/imports", "@/imports/", f"/models/{MODEL_ID}/imports"])
def test_11_imports_with_and_without_slash(api: Client, path: str) -> None:
    imports = page(api.get(path), "imports")
    assert imports[0] == {
        "id": PRODUCTS_IMPORT,
        "name": "Products from products.csv",
        "importDataSourceId": PRODUCTS_FILE,
        "importType": "HIERARCHY_DATA",
    }


def test_12_import_metadata(api: Client) -> None:
    meta = ok(api.get(f"@/imports/{PRODUCTS_IMPORT}"), "importMetadata")
    assert meta == {
        "name": "Products from products.csv",
        "type": "FILE",
        "source": {"textEncoding": "UTF-8", "columnSeparator": ",", "textDelimiter": '"',
                   "headerRow": 1, "firstDataRow": 2, "decimalSeparator": ".",
                   "headerNames": ["Code", "Name", "Category", "Price", "Launched", "Active"],
                   "columnCount": 6},
    }  # fmt: skip
    assert ok(api.get(f"/models/{MODEL_ID}/imports/{SALES_IMPORT}"), "importMetadata")
    error(api.get("@/imports/112999999999"), 404)


def test_13_set_chunk_count_and_create_unknown_file(api: Client) -> None:
    file = ok(api.call("POST", f"@/files/{PRODUCTS_FILE}", json={"chunkCount": 1}), "file")
    assert file["id"] == PRODUCTS_FILE
    created = ok(api.call("POST", "@/files/new.csv", json={"chunkCount": -1}), "file")
    assert created["name"] == "new.csv"
    assert created["id"].startswith("113")
    assert created["id"] != PRODUCTS_FILE
    assert created["id"] in {f["id"] for f in page(api.get("@/files"), "files")}
    error(api.call("POST", f"@/files/{PRODUCTS_FILE}", json={}), 400)


def test_14_put_whole_file(api: Client) -> None:
    response = api.call("PUT", f"@/files/{PRODUCTS_FILE}", data=b"a,b\n",
                        headers={"Content-Type": "application/octet-stream"})  # fmt: skip
    assert response.status_code == 204
    assert response.content == b""
    assert api.get(f"@/files/{PRODUCTS_FILE}").content == b"a,b\n"
    error(api.call("PUT", "@/files/113999999999", data=b"x"), 404)


def test_15_put_chunk_plain_and_gzip(api: Client) -> None:
    api.call("POST", f"@/files/{PRODUCTS_FILE}", json={"chunkCount": 2})
    plain = api.call("PUT", f"@/files/{PRODUCTS_FILE}/chunks/0", data=b"one,",
                     headers={"Content-Type": "application/octet-stream"})  # fmt: skip
    assert plain.status_code == 204
    assert "Content-Type" not in plain.headers
    packed = api.call("PUT", f"@/files/{PRODUCTS_FILE}/chunks/1", data=gz("two\n"),
                      headers={"Content-Type": "application/x-gzip"})  # fmt: skip
    assert packed.status_code == 204
    assert api.get(f"@/files/{PRODUCTS_FILE}").content == b"one,two\n"


def test_16_complete(api: Client) -> None:
    api.call("POST", f"@/files/{PRODUCTS_FILE}", json={"chunkCount": -1})
    api.call("PUT", f"@/files/{PRODUCTS_FILE}/chunks/0", data=b"x")
    no_body = api.call("POST", f"@/files/{PRODUCTS_FILE}/complete")
    assert no_body.status_code == 500
    assert no_body.content == b""
    file = ok(api.call("POST", f"@/files/{PRODUCTS_FILE}/complete",
                       json={"id": PRODUCTS_FILE}), "file")  # fmt: skip
    assert file["chunkCount"] == 1


def test_17_chunk_list(api: Client) -> None:
    response = api.get(f"@/files/{PRODUCTS_FILE}/chunks")
    assert page(response, "chunks") == []
    assert "chunks" not in response.json()
    api.upload(PRODUCTS_FILE, "abcdef", chunks=3)
    chunks = page(api.get(f"@/files/{PRODUCTS_FILE}/chunks"), "chunks")
    assert chunks == [{"id": str(i), "name": f"Chunk {i}"} for i in range(3)]


def test_18_download_file_and_chunks(api: Client) -> None:
    error(api.get(f"@/files/{PRODUCTS_FILE}"), 404)
    api.upload(PRODUCTS_FILE, "abcdef", chunks=2)
    whole = api.get(f"@/files/{PRODUCTS_FILE}")
    assert whole.headers["Content-Type"] == "application/octet-stream"
    assert whole.content == b"abcdef"
    assert api.get(f"@/files/{PRODUCTS_FILE}/chunks/1").content == b"def"
    error(api.get(f"@/files/{PRODUCTS_FILE}/chunks/2"), 404)


def test_19_delete_file(api: Client) -> None:
    api.upload(PRODUCTS_FILE, "abc", chunks=1)
    response = api.call("DELETE", f"@/files/{PRODUCTS_FILE}")
    assert response.status_code == 204
    error(api.get(f"@/files/{PRODUCTS_FILE}"), 404)


def test_20_start_task(api: Client) -> None:
    task = ok(api.call("POST", f"@/imports/{PRODUCTS_IMPORT}/tasks",
                       json={"localeName": "en_US"}), "task")  # fmt: skip
    assert HEX32_UPPER.match(task["taskId"])
    assert task["taskState"] == "NOT_STARTED"
    assert isinstance(task["creationTime"], int)
    error(api.call("POST", f"@/imports/{PRODUCTS_IMPORT}/tasks", json={}), 400)
    error(api.call("POST", f"@/imports/{PRODUCTS_IMPORT}/tasks"), 400)
    error(api.call("POST", "@/imports/112999999999/tasks", json={"localeName": "en_US"}), 404)


def test_21_task_list(api: Client) -> None:
    task_id = api.start(PRODUCTS_IMPORT)
    tasks = page(api.get(f"@/imports/{PRODUCTS_IMPORT}/tasks"), "tasks")
    assert [t["taskId"] for t in tasks] == [task_id]
    assert set(tasks[0]) == {"taskId", "taskState", "creationTime"}
    unknown = api.get("@/imports/112999999999/tasks")
    assert page(unknown, "tasks") == []
    assert "tasks" not in unknown.json()


def test_22_poll_task_to_completion(api: Client) -> None:
    api.upload(PRODUCTS_FILE, PRODUCTS_HEADER + "P1,Widget,Tools,1,2024-01-01,true\n")
    task_id = api.start(PRODUCTS_IMPORT)
    running = api.poll(PRODUCTS_IMPORT, task_id)
    assert running["taskState"] == "IN_PROGRESS"
    assert 0 <= running["progress"] < 1
    assert running["currentStep"] == "Processing ..."
    assert "result" not in running
    done = api.poll(PRODUCTS_IMPORT, task_id)
    assert done["taskState"] == "COMPLETE"
    assert done["progress"] == 1.0
    assert done["currentStep"] == "Complete."
    result = done["result"]
    assert result["successful"] is True
    assert result["failureDumpAvailable"] is False
    assert result["objectId"] == PRODUCTS_IMPORT
    detail = result["details"][0]
    assert set(detail) == {"type", "localMessageText", "occurrences", "values"}
    error(api.get(f"@/imports/{PRODUCTS_IMPORT}/tasks/{'0' * 32}"), 404)


def test_23_cancel_task(api: Client) -> None:
    api.upload(PRODUCTS_FILE, PRODUCTS_HEADER + "P1,Widget,Tools,1,2024-01-01,true\n")
    task_id = api.start(PRODUCTS_IMPORT)
    cancelling = ok(api.call("DELETE", f"@/imports/{PRODUCTS_IMPORT}/tasks/{task_id}"), "task")
    assert cancelling["taskState"] == "CANCELLING"
    assert api.poll(PRODUCTS_IMPORT, task_id)["taskState"] == "CANCELLED"
    assert api.sim.list_items(MODEL_ID, "Products") == []


def test_24_dump(api: Client) -> None:
    api.upload(PRODUCTS_FILE, BAD_PRODUCTS)
    task = api.run(PRODUCTS_IMPORT)
    assert task["result"]["failureDumpAvailable"] is True
    dump = api.get(f"@/imports/{PRODUCTS_IMPORT}/tasks/{task['taskId']}/dump")
    assert dump.status_code == 200
    assert dump.text.splitlines()[0].startswith('"_Status_","Code"')
    api.upload(PRODUCTS_FILE, PRODUCTS_HEADER)
    clean = api.run(PRODUCTS_IMPORT)
    error(api.get(f"@/imports/{PRODUCTS_IMPORT}/tasks/{clean['taskId']}/dump"), 404)


def test_25_dump_chunks(sim_with) -> None:
    sim = sim_with(top={"dump_chunk_bytes": 40})
    api = Client(sim)
    api.upload(PRODUCTS_FILE, BAD_PRODUCTS)
    task_id = api.run(PRODUCTS_IMPORT)["taskId"]
    base = f"@/imports/{PRODUCTS_IMPORT}/tasks/{task_id}/dump"
    whole = api.get(base).content
    chunks = page(api.get(f"{base}/chunks"), "chunks")
    assert len(chunks) > 1
    parts = [api.get(f"{base}/chunks/{c['id']}").content for c in chunks]
    assert b"".join(parts) == whole


def test_26_processes_and_metadata(api: Client) -> None:
    assert page(api.get("@/processes"), "processes") == [
        {"id": PROCESS, "name": "Load products and sales"}
    ]
    meta = ok(api.get(f"/models/{MODEL_ID}/processes/{PROCESS}",
                      params={"showImportDataSource": "true"}), "processMetadata")  # fmt: skip
    assert meta["name"] == "Load products and sales"
    assert [a["id"] for a in meta["actions"]] == [PRODUCTS_IMPORT, SALES_IMPORT]
    first = meta["actions"][0]
    assert first["actionType"] == "IMPORT"
    assert first["importDataSourceId"] == PRODUCTS_FILE
    assert first["importDataSource"] == {"importDataSourceId": PRODUCTS_FILE, "type": "FILE"}
    error(api.get("@/processes/118999999999"), 404)


def test_27_process_task(api: Client) -> None:
    api.upload(PRODUCTS_FILE, PRODUCTS_HEADER + "P1,Widget,Tools,1,2024-01-01,true\n")
    api.upload("113000000001", SALES_HEADER + "P1,EMEA,3,30,ok\n")
    task = api.run(PROCESS, kind="processes")
    result = task["result"]
    assert result["objectId"] == PROCESS
    assert result["successful"] is True
    nested = result["nestedResults"]
    assert [n["objectId"] for n in nested] == [PRODUCTS_IMPORT, SALES_IMPORT]
    assert all(set(n) >= {"successful", "failureDumpAvailable", "details"} for n in nested)
    tasks = page(api.get(f"@/processes/{PROCESS}/tasks"), "tasks")
    assert tasks[0]["taskId"] == task["taskId"]


def test_28_process_dumps(api: Client) -> None:
    api.upload(PRODUCTS_FILE, BAD_PRODUCTS)
    api.upload("113000000001", SALES_HEADER)
    task = api.run(PROCESS, kind="processes")
    assert task["result"]["failureDumpAvailable"] is True
    base = f"@/processes/{PROCESS}/tasks/{task['taskId']}/dumps"
    dump = api.get(f"{base}/{PRODUCTS_IMPORT}")
    assert dump.status_code == 200
    assert '"abc"' in dump.text
    chunks = page(api.get(f"{base}/{PRODUCTS_IMPORT}/chunks"), "chunks")
    assert api.get(f"{base}/{PRODUCTS_IMPORT}/chunks/{chunks[0]['id']}").content == dump.content
    error(api.get(f"{base}/{SALES_IMPORT}"), 404)


def test_29_model_status(api: Client) -> None:
    response = api.get(f"/models/{MODEL_ID}/status")
    assert response.status_code == 200
    status = response.json()["requestStatus"]
    assert status["currentStep"] == "Open"
    assert status["progress"] == -1.0
    assert isinstance(status["creationTime"], int)
    api.start(PRODUCTS_IMPORT)
    api.get(f"@/imports/{PRODUCTS_IMPORT}/tasks")
    task_id = api.sim.tasks()[0]["taskId"]
    api.poll(PRODUCTS_IMPORT, task_id)
    busy = ok(api.call("POST", f"{MODEL_PATH}/status"), "requestStatus")
    assert busy["currentStep"] == "Processing ..."
    assert busy["taskId"] == task_id


@pytest.mark.parametrize(
    ("active_state", "code"), [("ARCHIVED", 422), ("LOCKED", 423), ("MAINTENANCE", 424)]
)
def test_model_states_refuse_work(api: Client, active_state: str, code: int) -> None:
    api.sim.set_model_state(MODEL_ID, active_state)
    assert ok(api.get(f"/models/{MODEL_ID}"), "model")["activeState"] == active_state
    error(api.call("POST", f"@/imports/{PRODUCTS_IMPORT}/tasks", json={"localeName": "en_US"}),
          code)  # fmt: skip
    error(api.call("PUT", f"@/files/{PRODUCTS_FILE}", data=b"x"), code)


def test_unknown_api_path_is_404(api: Client) -> None:
    error(api.get("/nothing/here"), 404)
    error(api.get("@/files/113000000000/nowhere"), 404)
    error(api.call("PATCH", "@/files"), 405)
