"""The Anaplan client package against the simulator: what a user would see happen.

Login, name resolution, catalog errors, upload + imports landing rows, failed and
cancelled tasks, retried faults, the model lock and expired tokens.
"""

from __future__ import annotations

import logging
import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from target_anaplan.anaplan.basic_auth import BasicAuth
from target_anaplan.anaplan.catalog import Catalog, resolve_model
from target_anaplan.anaplan.client import AnaplanClient, new_session
from target_anaplan.anaplan.dumps import download_dump, summarize_dump
from target_anaplan.anaplan.errors import (
    ActionFailedError,
    AnaplanError,
    AuthenticationError,
    ModelUnavailableError,
    NotFoundError,
)
from target_anaplan.anaplan.models import ModelRef
from target_anaplan.anaplan.regions import resolve_hosts
from target_anaplan.anaplan.retry import RetryPolicy
from target_anaplan.anaplan.tasks import run_actions
from target_anaplan.anaplan.upload import upload_file
from target_anaplan.simulator import Simulator

WORKSPACE, WORKSPACE_ID = "Demo Workspace", "8a81b09d5f3b4c7e9a1f2b3c4d5e6f70"
MODEL, MODEL_ID = "Demo Model", "75A40874E6B64FA3AE0EB2C4D5E6F7A8"
USER, PASSWORD = "integration@example.com", "demo-password"
PRODUCTS_IMPORT, SALES_IMPORT = "Products from products.csv", "Sales from sales.csv"
PROCESS = "Load products and sales"
PRODUCTS = [
    b"Code,Name,Category,Price,Launched,Active\n",
    b"P1,Widget,Tools,9.5,2024-01-01,true\nP2,Gadget,Toys,12,2024-02-01,false\n",
]
SALES = [b"Product,Region,Units,Revenue,Note\nP1,EMEA,3,28.5,first\nP2,AMER,1,12,\n"]
FAST = RetryPolicy(max_attempts=5, base_delay_s=0.01, max_delay_s=0.02, deadline_s=30)
POLL = {"poll_interval_s": 0.01}


def connect(sim: Simulator, password: str = PASSWORD) -> AnaplanClient:
    hosts = resolve_hosts(
        api_base_url=f"{sim.url}/2/0", auth_base_url=sim.url, oauth_base_url=sim.url
    )
    session = new_session()
    auth = BasicAuth(session, hosts.auth_base_url, USER, password)
    return AnaplanClient(hosts, auth, retry=FAST, timeout_s=10, session=session)


@pytest.fixture
def client(simulator):
    c = connect(simulator)
    yield c
    c.close()


@pytest.fixture
def model(client) -> ModelRef:
    return resolve_model(client, WORKSPACE, MODEL)


def requests_to(sim: Simulator, method: str, fragment: str) -> list[dict]:
    return [r for r in sim.requests() if r["method"] == method and fragment in r["path"]]


# --- login and names ----------------------------------------------------------------------


def test_wrong_password_names_the_user(simulator):
    with pytest.raises(AuthenticationError, match=USER) as caught:
        resolve_model(connect(simulator, "nope"), WORKSPACE, MODEL)
    assert "nope" not in str(caught.value)


@pytest.mark.parametrize(
    ("workspace", "model"),
    [
        (WORKSPACE, MODEL),
        (WORKSPACE_ID, MODEL_ID),
        (WORKSPACE, MODEL_ID),
        ("demo workspace", "demo model"),
    ],
)
def test_model_resolves_by_name_or_id(client, workspace, model):
    ref = resolve_model(client, workspace, model)
    assert ref == ModelRef(WORKSPACE_ID, WORKSPACE, MODEL_ID, MODEL)


def test_unknown_model_lists_the_models_that_exist(client):
    with pytest.raises(NotFoundError, match="Model 'Budget' not found") as caught:
        resolve_model(client, WORKSPACE, "Budget")
    assert f"'{MODEL}' ({MODEL_ID})" in str(caught.value)


def test_unknown_workspace_lists_the_workspaces_that_exist(client):
    with pytest.raises(NotFoundError, match="Workspace 'Sandbox' not found") as caught:
        resolve_model(client, "Sandbox", MODEL)
    assert f"'{WORKSPACE}' ({WORKSPACE_ID})" in str(caught.value)


def test_model_id_in_another_workspace_is_refused(client):
    with pytest.raises(NotFoundError, match=f"Set workspace to '{WORKSPACE}'"):
        resolve_model(client, "Other Workspace", MODEL_ID)


# --- catalog --------------------------------------------------------------------------------


def test_the_file_and_layout_come_from_the_import(client, model):
    target = Catalog(client, model).data_source(
        "anything", file=None, imports=[PRODUCTS_IMPORT], processes=[]
    )
    assert (target.file_id, target.file_name) == ("113000000000", "products.csv")
    assert target.layout.header_names == ("Code", "Name", "Category", "Price", "Launched", "Active")
    assert (target.layout.separator, target.layout.encoding) == (",", "UTF-8")
    assert [a.id for a in target.actions] == ["112000000000"]


def test_a_process_alone_gives_the_layout_of_its_step_reading_the_file(client, model):
    target = Catalog(client, model).data_source("sales", file=None, imports=[], processes=[PROCESS])
    assert target.file_name == "sales.csv"
    assert target.layout.header_names == ("Product", "Region", "Units", "Revenue", "Note")
    assert [(a.kind, a.id) for a in target.actions] == [("processes", "118000000000")]


def test_unknown_import_lists_the_imports(client, model):
    with pytest.raises(NotFoundError, match="Import 'Load orders' not found") as caught:
        Catalog(client, model).data_source(
            "orders", file=None, imports=["Load orders"], processes=[]
        )
    assert f"'{PRODUCTS_IMPORT}' (112000000000)" in str(caught.value)
    assert f"'{SALES_IMPORT}' (112000000001)" in str(caught.value)


def test_unknown_file_lists_the_files(client, model):
    with pytest.raises(NotFoundError, match="File 'orders' not found") as caught:
        Catalog(client, model).data_source("orders", file=None, imports=[], processes=[])
    assert "'products.csv' (113000000000)" in str(caught.value)


def test_an_import_reading_another_file_is_refused(client, model):
    with pytest.raises(NotFoundError, match=re.escape("reads file 'sales.csv'")):
        Catalog(client, model).data_source(
            "products", file="products", imports=[SALES_IMPORT], processes=[]
        )


def test_without_an_import_the_columns_come_from_the_file_content(client, model):
    with pytest.raises(AnaplanError, match="Add an import that reads this file to `imports`"):
        Catalog(client, model).data_source("products", file="products", imports=[], processes=[])
    upload_file(client, model, "113000000000", PRODUCTS)
    target = Catalog(client, model).data_source("products", file=None, imports=[], processes=[])
    assert target.layout.header_names[:2] == ("Code", "Name")
    assert target.actions == ()


# --- upload and run -----------------------------------------------------------------------


def test_upload_and_two_imports_land_rows(simulator, client, model):
    catalog = Catalog(client, model)
    products = catalog.data_source("products", file=None, imports=[PRODUCTS_IMPORT], processes=[])
    sales = catalog.data_source("sales", file=None, imports=[SALES_IMPORT], processes=[])
    stats = upload_file(client, model, products.file_id, PRODUCTS)
    assert stats.chunks == 2
    # One chunk given as its pieces, as the spool hands them out: compressed piece by piece.
    pieces = [SALES[0][:20], SALES[0][20:]]
    stats = upload_file(client, model, sales.file_id, lambda: iter([iter(pieces)]))
    assert (stats.chunks, stats.raw_bytes) == (1, len(SALES[0]))
    outcomes = run_actions(client, model, products.actions + sales.actions, **POLL)
    assert [o.counts["failedCount"] for o in outcomes] == [0, 0]
    items = {i["code"]: i for i in simulator.list_items(MODEL_ID, "Products")}
    assert items["P2"]["name"] == "Gadget"
    assert items["P2"]["properties"]["Price"] == 12
    rows = simulator.module_rows(MODEL_ID, "Sales")
    assert {(r["dimensions"]["Products"], r["values"]["Units"]) for r in rows} >= {("P1", 3)}


def test_a_process_reports_nested_results(simulator, client, model):
    upload_file(client, model, "113000000000", PRODUCTS)
    upload_file(client, model, "113000000001", SALES)
    target = Catalog(client, model).data_source("sales", file=None, imports=[], processes=[PROCESS])
    (outcome,) = run_actions(client, model, target.actions, parallel=False, **POLL)
    assert [n.action.id for n in outcome.nested] == ["112000000000", "112000000001"]
    assert outcome.counts["successRowCount"] == 4
    assert len(simulator.module_rows(MODEL_ID, "Sales")) >= 2


def test_a_failed_import_raises_with_anaplan_message(simulator, client, model):
    simulator.add_fault({"kind": "fail", "action_id": "112000000000", "message": "Disk on fire."})
    upload_file(client, model, "113000000000", PRODUCTS)
    target = Catalog(client, model).data_source(
        "p", file=None, imports=[PRODUCTS_IMPORT], processes=[]
    )
    with pytest.raises(ActionFailedError, match=f"Import '{PRODUCTS_IMPORT}'.*Disk on fire"):
        run_actions(client, model, target.actions, **POLL)


def test_rejected_rows_come_back_in_a_failure_dump(simulator, client, model, tmp_path):
    simulator.add_fault({"kind": "reject", "action_id": "112000000000", "rows": 1})
    upload_file(client, model, "113000000000", PRODUCTS)
    target = Catalog(client, model).data_source(
        "p", file=None, imports=[PRODUCTS_IMPORT], processes=[]
    )
    (outcome,) = run_actions(client, model, target.actions, **POLL)
    assert outcome.counts["failedCount"] == 1
    assert outcome.failure_dump_available
    (dump,) = download_dump(client, model, outcome, tmp_path)
    assert summarize_dump(dump) == [("Row rejected (simulated fault)", 1)]


def test_transient_faults_are_retried(simulator, client, model):
    simulator.add_fault({"status": 503, "method": "PUT", "path": "/chunks/1$"})
    simulator.add_fault({"status": 429, "retry_after": 0, "method": "GET", "path": "/files$"})
    simulator.add_fault({"kind": "drop", "method": "POST", "path": "/complete$"})
    target = Catalog(client, model).data_source(
        "p", file=None, imports=[PRODUCTS_IMPORT], processes=[]
    )
    upload_file(client, model, target.file_id, PRODUCTS)
    (outcome,) = run_actions(client, model, target.actions, **POLL)
    assert outcome.counts["successRowCount"] == 2
    assert [r["status"] for r in requests_to(simulator, "PUT", "/chunks/1")] == [503, 204]
    assert len(requests_to(simulator, "POST", "/complete")) == 2


def test_a_failed_task_start_is_not_doubled(simulator, client, model):
    simulator.add_fault({"status": 500, "method": "POST", "path": "/imports/112000000000/tasks$"})
    upload_file(client, model, "113000000000", PRODUCTS)
    target = Catalog(client, model).data_source(
        "p", file=None, imports=[PRODUCTS_IMPORT], processes=[]
    )
    run_actions(client, model, target.actions, **POLL)
    assert len([t for t in simulator.tasks() if t["actionId"] == "112000000000"]) == 1
    assert len(requests_to(simulator, "GET", "/imports/112000000000/tasks")) >= 1


def test_queued_tasks_wait_for_the_model_lock(simulator, client, model, caplog):
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    simulator.add_fault({"kind": "hold", "action_id": "112000000000", "polls": 6})
    upload_file(client, model, "113000000000", PRODUCTS)
    upload_file(client, model, "113000000001", SALES)
    catalog = Catalog(client, model)
    actions = [
        catalog.data_source(s, file=None, imports=[i], processes=[]).actions[0]
        for s, i in (("p", PRODUCTS_IMPORT), ("s", SALES_IMPORT))
    ]
    caplog.set_level(logging.INFO, logger="target_anaplan.anaplan.tasks")
    outcomes = run_actions(
        client, model, actions, poll_interval_s=30, sleep=sleep, clock=lambda: now[0]
    )
    assert [o.successful for o in outcomes] == [True, True]
    assert f"Import '{SALES_IMPORT}' (112000000001) is waiting for the model lock" in caplog.text


def test_a_task_that_outlives_the_timeout_is_cancelled(simulator, client, model):
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    simulator.add_fault({"kind": "hold", "action_id": "112000000000", "polls": 1000})
    upload_file(client, model, "113000000000", PRODUCTS)
    target = Catalog(client, model).data_source(
        "p", file=None, imports=[PRODUCTS_IMPORT], processes=[]
    )
    with pytest.raises(ActionFailedError, match="did not finish within 60 s"):
        run_actions(
            client,
            model,
            target.actions,
            poll_interval_s=10,
            timeout_s=60,
            sleep=sleep,
            clock=lambda: now[0],
        )
    (task,) = simulator.tasks()
    assert task["taskState"] in ("CANCELLING", "CANCELLED")


def test_an_expired_token_is_replaced_once(simulator, client, model):
    Catalog(client, model).files()
    simulator.advance_clock(2200)  # past the 35-minute token lifetime
    assert Catalog(client, model).files()
    assert len(requests_to(simulator, "POST", "/token/authenticate")) == 2
    assert [r["status"] for r in requests_to(simulator, "GET", "/files")] == [200, 401, 200]


def test_a_locked_model_refuses_uploads_with_a_clear_message(simulator, client, model):
    simulator.set_model_state(MODEL_ID, "LOCKED")
    with pytest.raises(ModelUnavailableError, match="locked"):
        upload_file(client, model, "113000000000", PRODUCTS)


def test_parallel_callers_share_one_login(simulator):
    client = connect(simulator)  # not logged in yet: eight threads race for the first token
    model = ModelRef(WORKSPACE_ID, WORKSPACE, MODEL_ID, MODEL)
    catalog_calls = [Catalog(client, model) for _ in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        listed = list(pool.map(lambda c: c.files(), catalog_calls))
    assert all(len(files) == 2 for files in listed)
    assert len(requests_to(simulator, "POST", "/token/authenticate")) == 1
