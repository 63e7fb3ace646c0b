"""The target tests' core scenario (tests/target/scenarios/core.json), which the simulator's
list and action tests share: a child list, a control module, a flag import, a delete action
and a process that runs both."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from target_anaplan.simulator import Simulator
from tests.kit.simkit import Client

SCENARIOS = Path(__file__).parents[1] / "target" / "scenarios"
CORE = SCENARIOS / "core.json"
_CORE = json.loads(CORE.read_text(encoding="utf-8"))
_WORKSPACE = _CORE["workspaces"][0]
MODEL = _WORKSPACE["models"][0]["id"]
WORKSPACE_PATH = f"/workspaces/{_WORKSPACE['id']}/models/{MODEL}"
DIRECT_PATH = f"/models/{MODEL}"
USER = _CORE["users"][0]["email"]
PRODUCTS_LIST, REGIONS_LIST, CITIES_LIST = "101000000000", "101000000001", "101000000004"
PRODUCTS_IMPORT, SALES_IMPORT, REGIONS_IMPORT = "112000000000", "112000000001", "112000000002"
CITIES_IMPORT, FLAGS_IMPORT = "112000000006", "112000000007"
PRODUCTS_FILE, SALES_FILE, REGIONS_FILE = "113000000000", "113000000001", "113000000002"
CITIES_FILE, FLAGS_FILE = "113000000006", "113000000007"
DELETE_ACTION, SORT_ACTION, DASHBOARD_ACTION = "117000000000", "117000000001", "117000000002"
FLAG_AND_DELETE = "118000000001"


def core_scenario(**top: Any) -> dict[str, Any]:
    """A fresh copy of core.json with top-level keys (list_read_limit, ...) set."""
    return {**copy.deepcopy(_CORE), **top}


def core_client(sim: Simulator, model_path: str = WORKSPACE_PATH) -> Client:
    """The core scenario's user, logged in; "@" paths are relative to `model_path`."""
    return Client(sim, USER, model_path)


def load(api: Client, import_id: str, file_id: str, text: str) -> dict[str, Any]:
    """Upload `text` to the file and run the import; its task result."""
    api.upload(file_id, text)
    task = api.run(import_id)
    assert task["result"]["successful"] is True, task
    return task["result"]


def load_products_and_sales(api: Client) -> None:
    """P1, P2, P3 in Products, EMEA and AMER in Regions, and a Sales cell for P1 and P2."""
    load(api, REGIONS_IMPORT, REGIONS_FILE, "Code\tName\nEMEA\tEurope\nAMER\tAmericas\n")
    products = "Code,Name,Category,Price,Launched,Active\n" + "".join(
        f"{code},Product {code},Tools,{n},2024-01-0{n},true\n"
        for n, code in enumerate(["P1", "P2", "P3"], 1)
    )
    load(api, PRODUCTS_IMPORT, PRODUCTS_FILE, products)
    sales = "Product,Region,Units,Revenue,Note\nP1,EMEA,1,10,a\nP2,EMEA,2,20,b\nP2,AMER,3,30,c\n"
    load(api, SALES_IMPORT, SALES_FILE, sales)
