"""The control API over HTTP: reset, read-backs, request log, model state, device approval,
certificates registered at run time, models named by id or name."""

from __future__ import annotations

import json
import re

import pytest
import requests

from target_anaplan.anaplan.certificate import CertificateAuth
from target_anaplan.anaplan.errors import AuthenticationError
from target_anaplan.simulator import EXAMPLE_SCENARIO, ScenarioError, Simulator, load_scenario
from tests.kit import certgen
from tests.kit.oauthkit import api_status
from tests.kit.simkit import (
    MODEL_ID,
    PRODUCTS_FILE,
    PRODUCTS_HEADER,
    PRODUCTS_IMPORT,
    WORKSPACE_ID,
    Client,
    control,
    with_archive_workspace,
)


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
    from tests.kit.simkit import _EXAMPLE  # noqa: PLC0415

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


def test_models_lists_what_the_scenario_holds(api: Client) -> None:
    api.upload(PRODUCTS_FILE, PRODUCTS_HEADER + "P1,Widget,T,2,2024-01-01,true\n")
    api.run(PRODUCTS_IMPORT)
    [model] = control(api.sim, "GET", "/models").json()
    assert (model["id"], model["name"]) == (MODEL_ID, "Demo Model")
    assert model["activeState"] == "UNLOCKED"
    assert model["workspace"] == {"id": WORKSPACE_ID, "name": "Demo Workspace"}
    counts = [(lst["name"], lst["items"]) for lst in model["lists"]]
    assert counts == [("Products", 1), ("Regions", 3)]
    assert model["modules"] == [{"name": "Sales", "dimensions": ["Products", "Regions"],
                                 "line_items": {"Units": "number", "Revenue": "number",
                                                "Note": "text"}, "rows": 0}]  # fmt: skip
    assert [f["name"] for f in model["files"]] == ["products.csv", "sales.csv"]
    assert model["imports"][0] == {"id": PRODUCTS_IMPORT, "name": "Products from products.csv",
                                   "file": PRODUCTS_FILE, "list": "Products"}  # fmt: skip
    assert model["processes"][0]["actions"] == [PRODUCTS_IMPORT, "112000000001"]


@pytest.mark.parametrize("model", [MODEL_ID, "Demo%20Model"])
def test_control_paths_take_a_model_id_or_name(simulator: Simulator, model: str) -> None:
    regions = control(simulator, "GET", f"/models/{model}/lists/Regions").json()["items"]
    assert [r["code"] for r in regions] == ["EMEA", "AMER", "APAC"]
    assert control(simulator, "GET", f"/models/{model}/modules/Sales").json() == {"rows": []}
    changed = control(simulator, "POST", f"/models/{model}", json={"activeState": "LOCKED"})
    assert changed.status_code == 200
    assert simulator.state.model_states[MODEL_ID] == "LOCKED"
    missing = control(simulator, "GET", f"/models/{model}/lists/Nope")
    assert missing.json() == {"error": f"no list 'Nope' in model Demo Model ({MODEL_ID})"}


def test_an_unknown_model_says_it_is_neither_id_nor_name(simulator: Simulator) -> None:
    unknown = control(simulator, "GET", "/models/Nope/lists/Regions")
    assert unknown.status_code == 404
    assert unknown.json() == {"error": "no model 'Nope': neither a model id nor a model name"}


def test_a_name_two_models_share_is_refused(sim_with) -> None:
    scenario = with_archive_workspace(json.loads(EXAMPLE_SCENARIO.read_text(encoding="utf-8")))
    twin = {"id": "1" * 32, "name": "Demo Model"}
    scenario["workspaces"][1] = {**scenario["workspaces"][1], "models": [twin]}
    response = control(sim_with(scenario), "GET", "/models/Demo%20Model/lists/Regions")
    assert response.status_code == 400
    assert MODEL_ID in response.json()["error"]
    assert "ambiguous" in response.json()["error"]


def test_a_certificate_registered_at_run_time_logs_in_until_reset(simulator: Simulator) -> None:
    bundle = certgen.generate("integration@example.com")

    def cert_login() -> CertificateAuth:
        return CertificateAuth(requests.Session(), simulator.url,
                               certificate=bundle.leaf_cert_pem, private_key=bundle.leaf_key_pem,
                               clock=simulator.state.clock)  # fmt: skip

    auth = cert_login()
    with pytest.raises(AuthenticationError, match="registered"):
        auth.header()
    path = "/users/INTEGRATION@example.com/certificates"
    registered = control(simulator, "POST", path, json={"certificate": bundle.leaf_cert_pem})
    assert registered.status_code == 200
    assert registered.json()["user"] == "integration@example.com"
    assert re.fullmatch(r"[0-9a-f]{64}", registered.json()["fingerprint"])
    assert api_status(simulator, auth.header()) == 200
    simulator.reset()
    with pytest.raises(AuthenticationError, match="registered"):
        cert_login().header()


@pytest.mark.parametrize(
    ("path", "body", "status", "fragment"),
    [("/users/integration@example.com/certificates", {"certificate": "nope"}, 400, "PEM"),
     ("/users/integration@example.com/certificates", {}, 400, "PEM"),
     ("/users/nobody@example.com/certificates", None, 404, "no user 'nobody@example.com'")],
)  # fmt: skip
def test_certificate_registration_refusals(simulator, cert_bundle, path, body, status, fragment):
    body = body if body is not None else {"certificate": cert_bundle.leaf_cert_pem}
    response = control(simulator, "POST", path, json=body)
    assert response.status_code == status
    assert fragment in response.json()["error"]
