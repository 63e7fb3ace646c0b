"""Every injectable fault, over the control API and as Python methods."""

from __future__ import annotations

import pytest
import requests

from tests.kit.simkit import (
    MODEL_ID,
    PRODUCTS_FILE,
    PRODUCTS_HEADER,
    PRODUCTS_IMPORT,
    Client,
    control,
    values,
)

ROWS = PRODUCTS_HEADER + "".join(f"P{i},N{i},T,{i},2024-01-01,true\n" for i in range(1, 5))
CHUNK_PUT = r"/files/\d+/chunks/\d+$"


@pytest.mark.parametrize("status", [500, 503, 401, 409, 423])
def test_http_status_fault_hits_only_the_nth_match(api: Client, status: int) -> None:
    fault = control(api.sim, "POST", "/faults",
                    json={"kind": "http", "status": status, "method": "GET",
                          "path": "/imports/?$", "nth": 2})  # fmt: skip
    assert fault.status_code == 200
    assert fault.json()["fault"]["id"] >= 1
    assert api.get("@/imports").status_code == 200
    second = api.get("@/imports")
    assert second.status_code == status
    assert second.json()["status"]["code"] == status
    assert api.get("@/imports").status_code == 200
    assert api.get("@/files").status_code == 200


def test_429_carries_retry_after_for_k_following_requests(api: Client) -> None:
    api.sim.add_fault({"kind": "http", "status": 429, "retry_after": 7, "path": CHUNK_PUT,
                       "method": "PUT", "nth": 1, "following": 1})  # fmt: skip
    api.call("POST", f"@/files/{PRODUCTS_FILE}", json={"chunkCount": 1})
    statuses = []
    for _ in range(3):
        response = api.call("PUT", f"@/files/{PRODUCTS_FILE}/chunks/0", data=b"x")
        statuses.append((response.status_code, response.headers.get("Retry-After")))
    assert statuses == [(429, "7"), (429, "7"), (204, None)]
    assert api.get(f"@/files/{PRODUCTS_FILE}").content == b"x"
    log = [r["status"] for r in api.sim.requests() if r["path"].endswith("/chunks/0")]
    assert log == [429, 429, 204]


def test_dropped_connection(api: Client) -> None:
    api.sim.add_fault({"kind": "drop", "method": "POST", "path": "/tasks$"})
    with pytest.raises(requests.ConnectionError):
        api.call("POST", f"@/imports/{PRODUCTS_IMPORT}/tasks", json={"localeName": "en_US"})
    assert api.sim.tasks() == []
    assert api.sim.requests()[-1]["status"] is None
    retry = api.call("POST", f"@/imports/{PRODUCTS_IMPORT}/tasks", json={"localeName": "en_US"})
    assert retry.status_code == 200


def test_faults_apply_to_the_auth_api_too(simulator) -> None:
    simulator.add_fault({"kind": "http", "status": 503, "path": "^/token/authenticate$"})
    response = requests.post(f"{simulator.url}/token/authenticate", timeout=5)
    assert response.status_code == 503


def test_held_task_stays_in_progress(api: Client) -> None:
    api.upload(PRODUCTS_FILE, ROWS)
    api.sim.add_fault({"kind": "hold", "action_id": PRODUCTS_IMPORT, "polls": 3})
    task_id = api.start(PRODUCTS_IMPORT)
    states = [api.poll(PRODUCTS_IMPORT, task_id)["taskState"] for _ in range(5)]
    assert states == ["IN_PROGRESS"] * 4 + ["COMPLETE"]
    assert api.run(PRODUCTS_IMPORT)["taskState"] == "COMPLETE"


def test_hold_polls_from_the_scenario(sim_with) -> None:
    from tests.kit.simkit import _EXAMPLE  # noqa: PLC0415

    imports = _EXAMPLE["workspaces"][0]["models"][0]["imports"]
    held = [{**imports[0], "hold_polls": 2}, imports[1]]
    api = Client(sim_with(imports=held))
    task_id = api.start(PRODUCTS_IMPORT)
    states = [api.poll(PRODUCTS_IMPORT, task_id)["taskState"] for _ in range(4)]
    assert states == ["IN_PROGRESS", "IN_PROGRESS", "IN_PROGRESS", "COMPLETE"]


def test_failing_import(api: Client) -> None:
    api.upload(PRODUCTS_FILE, ROWS)
    control(
        api.sim,
        "POST",
        "/faults",
        json={"kind": "fail", "action_id": PRODUCTS_IMPORT, "message": "Model busy"},
    )
    task = api.run(PRODUCTS_IMPORT)
    assert task["currentStep"] == "Failed."
    assert task["result"]["successful"] is False
    assert task["result"]["details"][0]["localMessageText"] == "Model busy"
    assert api.sim.list_items(MODEL_ID, "Products") == []
    assert api.run(PRODUCTS_IMPORT)["result"]["successful"] is True


def test_rejected_rows(api: Client) -> None:
    api.upload(PRODUCTS_FILE, ROWS)
    api.sim.add_fault({"kind": "reject", "action_id": PRODUCTS_IMPORT, "rows": 2})
    task = api.run(PRODUCTS_IMPORT)
    result = task["result"]
    assert result["successful"] is True
    assert result["failureDumpAvailable"] is True
    assert values(result["details"][0])["failedCount"] == "2"
    assert [i["code"] for i in api.sim.list_items(MODEL_ID, "Products")] == ["P3", "P4"]
    dump = api.get(f"@/imports/{PRODUCTS_IMPORT}/tasks/{task['taskId']}/dump").text
    assert dump.count("simulated fault") == 2


def test_expired_token_after_clock_advance(api: Client) -> None:
    assert api.get("/workspaces").status_code == 200
    moved = control(api.sim, "POST", "/clock", json={"advance_s": 36 * 60})
    assert moved.status_code == 200
    assert moved.json()["now"] > 0
    assert api.get("/workspaces").status_code == 401


def test_bad_fault_bodies_are_400(simulator) -> None:
    for body in ({"kind": "http", "status": 418}, {"kind": "nope"}, {"kind": "hold"},
                 {"kind": "http", "status": 500, "path": "("}, [1]):  # fmt: skip
        response = control(simulator, "POST", "/faults", json=body)
        assert response.status_code == 400, body
        assert response.json()["error"]


def test_list_and_clear_faults(simulator) -> None:
    simulator.add_fault({"kind": "http", "status": 500})
    simulator.add_fault({"kind": "reject", "rows": 1})
    listed = control(simulator, "GET", "/faults").json()
    assert [f["kind"] for f in listed] == ["http", "reject"]
    assert control(simulator, "DELETE", "/faults").status_code == 200
    assert simulator.faults() == []
