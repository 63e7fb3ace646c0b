"""The control API over HTTP: reset, read-backs, request log, model state, device approval."""

from __future__ import annotations

import pytest
import requests
from simkit import (
    MODEL_ID,
    PRODUCTS_FILE,
    PRODUCTS_HEADER,
    PRODUCTS_IMPORT,
    Client,
    control,
)

from target_anaplan.simulator import ScenarioError, Simulator, load_scenario


def test_read_back_lists_modules_files_tasks(api: Client) -> None:
    api.upload(PRODUCTS_FILE, PRODUCTS_HEADER + "P1,Widget,T,2,2024-01-01,true\n")
    task = api.run(PRODUCTS_IMPORT)
    sim = api.sim
    regions = control(sim, "GET", f"/models/{MODEL_ID}/lists/Regions").json()["items"]
    assert [r["code"] for r in regions] == ["EMEA", "AMER", "APAC"]
    products = control(sim, "GET", f"/models/{MODEL_ID}/lists/Products").json()["items"]
    assert products[0]["properties"]["Price"] == 2
    assert control(sim, "GET", f"/models/{MODEL_ID}/modules/Sales").json() == {"rows": []}
    files = control(sim, "GET", "/files").json()
    assert {f["id"]: f["uploads"] for f in files}[PRODUCTS_FILE] == 1
    [listed] = control(sim, "GET", "/tasks").json()
    assert (listed["taskId"], listed["actionId"], listed["taskState"]) == (
        task["taskId"], PRODUCTS_IMPORT, "COMPLETE")  # fmt: skip
    assert listed["result"]["successful"] is True
    assert control(sim, "GET", f"/models/{MODEL_ID}/lists/Nope").status_code == 404


def test_request_log_has_timestamps_and_statuses(api: Client) -> None:
    api.get("/workspaces")
    api.get("/models/NOPE")
    log = control(api.sim, "GET", "/requests").json()
    assert [(r["method"], r["path"], r["status"]) for r in log[-2:]] == [
        ("GET", "/2/0/workspaces", 200), ("GET", "/2/0/models/NOPE", 404)]  # fmt: skip
    assert all(isinstance(r["time"], float) for r in log)
    assert not any(r["path"].startswith("/__sim__") for r in log)


def test_reset_restores_the_scenario(api: Client) -> None:
    api.upload(PRODUCTS_FILE, PRODUCTS_HEADER + "P1,Widget,T,2,2024-01-01,true\n")
    api.run(PRODUCTS_IMPORT)
    api.sim.add_fault({"kind": "http", "status": 500, "path": "never"})
    assert control(api.sim, "POST", "/reset").json() == {"ok": True}
    assert api.sim.list_items(MODEL_ID, "Products") == []
    assert api.sim.tasks() == []
    assert api.sim.faults() == []
    assert api.sim.requests() == []
    assert all(f["uploads"] == 0 for f in api.sim.files())


def test_model_state_can_change_at_run_time(api: Client) -> None:
    assert control(api.sim, "POST", f"/models/{MODEL_ID}",
                   json={"activeState": "LOCKED"}).status_code == 200  # fmt: skip
    assert api.get(f"/models/{MODEL_ID}").json()["model"]["activeState"] == "LOCKED"
    assert api.get("@/imports").status_code == 200
    assert control(api.sim, "POST", f"/models/{MODEL_ID}",
                   json={"activeState": "BROKEN"}).status_code == 400  # fmt: skip


def test_device_approval_is_delegated_to_auth(simulator: Simulator) -> None:
    response = control(simulator, "POST", "/device/approve", json={"user_code": "NOPE-NOPE"})
    assert response.status_code == 404
    assert control(simulator, "GET", "/nothing").status_code == 404


def test_model_access_list_hides_models(sim_with) -> None:
    sim = sim_with(users=["integration@example.com"])
    assert Client(sim).get(f"/models/{MODEL_ID}").status_code == 200
    other = Client(sim, "other@example.com")
    assert other.get(f"/models/{MODEL_ID}").status_code == 404
    assert "models" not in other.get("/models").json()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {
                "imports": [
                    {
                        "id": "1",
                        "name": "x",
                        "importDataSourceId": "999",
                        "source": {"headerNames": []},
                        "list": "Products",
                    }
                ]
            },
            "not a file",
        ),
        ({"modules": [{"name": "M", "dimensions": ["Nope"]}]}, "is not a list"),
        ({"lists": [{"name": "L", "properties": {"p": "money"}}]}, "has type 'money'"),
    ],
)
def test_scenario_errors_name_the_problem(change: dict, message: str) -> None:
    from simkit import _EXAMPLE  # noqa: PLC0415

    scenario = {**_EXAMPLE, "workspaces": [{**_EXAMPLE["workspaces"][0]}]}
    model = {**_EXAMPLE["workspaces"][0]["models"][0], **change}
    if "imports" not in change:
        model["imports"], model["processes"] = [], []
    scenario["workspaces"][0]["models"] = [model]
    with pytest.raises(ScenarioError, match=message):
        load_scenario(scenario)


def test_device_login_approved_through_the_control_api(sim_with) -> None:
    client = {"client_id": "device-client", "grant": "device", "rotating": True,
              "user": "integration@example.com"}  # fmt: skip
    sim = sim_with(top={"oauth_clients": [client]})
    code = requests.post(f"{sim.url}/oauth/device/code", timeout=5,
                         json={"client_id": "device-client", "scope": "openid"}).json()  # fmt: skip
    grant = {"grant_type": "urn:ietf:params:oauth:grant-type:device_code",
             "client_id": "device-client", "device_code": code["device_code"]}  # fmt: skip
    pending = requests.post(f"{sim.url}/oauth/token", json=grant, timeout=5)
    assert pending.json()["error"] == "authorization_pending"
    approved = control(sim, "POST", "/device/approve", json={"user_code": code["user_code"]})
    assert approved.json() == {"approved": True}
    token = requests.post(f"{sim.url}/oauth/token", json=grant, timeout=5).json()["access_token"]
    workspaces = requests.get(f"{sim.url}/2/0/workspaces", timeout=5,
                              headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert workspaces.status_code == 200


def test_names_with_spaces_are_url_decoded(sim_with) -> None:
    sim = sim_with(lists=[{"name": "Sales Regions", "items": [{"code": "N", "name": "North"}]}],
                   modules=[], imports=[], processes=[])  # fmt: skip
    response = control(sim, "GET", f"/models/{MODEL_ID}/lists/Sales%20Regions")
    assert response.json()["items"][0]["name"] == "North"
