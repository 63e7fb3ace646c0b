"""`list` and `describe`: the tenant's and the model's objects by name and id, as a table
or JSON, from a config file, several merged, or the environment."""

from __future__ import annotations

import copy
import json

import pytest

from target_anaplan.admin.config import from_environment
from target_anaplan.admin.listing import COLUMNS
from target_anaplan.simulator import Simulator
from tests.kit.adminkit import admin, table, write_json
from tests.kit.targetkit import CORE, PRODUCTS, USER, core_config

# One expected row of each listing (the JSON objects; the table shows the same cells).
EXPECTED = {
    "workspaces": {"name": "Target Tests", "id": "8a81b09d5f3b4c7e9a1f2b3c4d5e6f71",
                   "active": True},
    "models": {"name": "Core Model", "id": "75A40874E6B64FA3AE0EB2C4D5E6F7B1",
               "activeState": "UNLOCKED", "workspace": "Target Tests"},
    "files": {"name": "regions.txt", "id": "113000000002", "imports": ["Regions from regions.txt"]},
    "imports": {"name": "Sales from sales.csv", "id": "112000000001", "importType": "MODULE_DATA",
                "file": "sales.csv", "fileId": "113000000001"},
    "processes": {"name": "Reload regions", "id": "118000000000"},
    "actions": {"name": "Delete flagged products", "id": "117000000000",
                "actionType": "DELETE_BY_SELECTION"},
    "lists": {"name": "Cities", "id": "101000000004"},
}  # fmt: skip
COUNTS = {"workspaces": 1, "models": 1, "files": 8, "imports": 8, "processes": 2, "actions": 3,
          "lists": 5}  # fmt: skip


@pytest.fixture
def config_file(sim, tmp_path):
    return write_json(tmp_path / "config.json", core_config(sim, {"products": PRODUCTS}))


def as_cell(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return ", ".join(value) if isinstance(value, list) else str(value)


@pytest.mark.parametrize("kind", list(EXPECTED))
def test_list_prints_names_ids_and_kinds_as_a_table_and_as_json(config_file, kind):
    shown = admin("list", kind, "--config", config_file)
    as_json = admin("list", kind, "--config", config_file, "--json")

    assert (shown.code, as_json.code) == (0, 0), shown.err + as_json.err
    assert shown.out.splitlines()[0].split() == list(COLUMNS[kind])
    rows = table(shown)
    assert len(rows) == len(as_json.json) == COUNTS[kind]
    assert {k: as_cell(v) for k, v in EXPECTED[kind].items()} in rows
    assert EXPECTED[kind] in as_json.json
    assert all(list(row) == list(COLUMNS[kind]) for row in as_json.json)


def test_an_action_without_a_type_shows_a_dash(config_file):
    rows = table(admin("list", "actions", "--config", config_file))
    assert {"name": "Open Dashboard", "id": "117000000002", "actionType": "-"} in rows


def test_describe_import_shows_what_it_loads_and_the_layout_it_expects(config_file):
    shown = admin("describe", "import", "Regions from regions.txt", "--config", config_file)
    as_json = admin("describe", "import", "112000000002", "--config", config_file, "--json")

    assert as_json.json == {
        "import": "Regions from regions.txt",
        "id": "112000000002",
        "importType": "HIERARCHY_DATA",
        "loads": "list Regions",
        "file": "regions.txt",
        "fileId": "113000000002",
        "separator": "\t",
        "textDelimiter": '"',
        "encoding": "UTF-8",
        "headerRow": 1,
        "firstDataRow": 2,
        "header": ["Code", "Name"],
    }
    assert shown.code == 0
    assert shown.out.splitlines() == [
        "import         Regions from regions.txt",
        "id             112000000002",
        "importType     HIERARCHY_DATA",
        "loads          list Regions",
        "file           regions.txt",
        "fileId         113000000002",
        "separator      tab",
        'textDelimiter  "',
        "encoding       UTF-8",
        "headerRow      1",
        "firstDataRow   2",
        "header         1. Code",
        "               2. Name",
    ]


def test_describe_import_names_the_module_a_module_import_loads(config_file):
    described = admin(
        "describe", "import", "sales from sales.csv", "--config", config_file, "--json"
    )
    assert described.json["loads"] == "module Sales"
    assert described.json["header"] == ["Product", "Region", "Units", "Revenue", "Note"]


def test_describe_file_shows_its_readers_and_layout(config_file):
    described = admin("describe", "file", "customers_latin1", "--config", config_file, "--json")
    assert described.code == 0, described.err
    assert described.json == {
        "file": "customers_latin1.csv",
        "id": "113000000005",
        "imports": ["Customers from customers_latin1.csv"],
        "layoutFrom": "import 'Customers from customers_latin1.csv' (112000000005)",
        "separator": ",",
        "textDelimiter": '"',
        "encoding": "ISO-8859-1",
        "headerRow": 1,
        "firstDataRow": 2,
        "header": ["id", "city"],
    }
    shown = admin("describe", "file", "customers_latin1", "--config", config_file)
    assert "imports        1. Customers from customers_latin1.csv" in shown.out.splitlines()


def test_describe_file_no_import_reads_takes_the_header_from_its_content(tmp_path):
    scenario = json.loads(CORE.read_text(encoding="utf-8"))
    model = scenario["workspaces"][0]["models"][0]
    model["files"].append({"id": "113000000099", "name": "template.csv", "separator": ";",
                           "content": "Code;Label;Amount\n"})  # fmt: skip
    with Simulator(scenario) as sim:
        config = write_json(tmp_path / "c.json", core_config(sim, {}))
        described = admin("describe", "file", "template", "--config", config, "--json")
    assert described.json["layoutFrom"] == "the file's header row"
    assert described.json["imports"] == []
    assert (described.json["separator"], described.json["header"]) == (
        ";",
        ["Code", "Label", "Amount"],
    )


def test_an_unknown_or_ambiguous_name_is_one_line_naming_what_exists(sim, tmp_path):
    scenario = json.loads(CORE.read_text(encoding="utf-8"))
    imports = scenario["workspaces"][0]["models"][0]["imports"]
    twin = copy.deepcopy(imports[1]) | {"id": "112000000098"}
    imports.append(twin)
    config = write_json(tmp_path / "c.json", core_config(sim, {}))
    unknown = admin("describe", "import", "Load everything", "--config", config)
    assert unknown.code == 1
    assert unknown.out == ""
    assert unknown.err.startswith(
        "error: Import 'Load everything' not found in model 'Core Model'."
    )
    assert "'Sales from sales.csv' (112000000001)" in unknown.err
    assert len(unknown.err.splitlines()) == 1

    with Simulator(scenario) as twins:
        config = write_json(tmp_path / "t.json", core_config(twins, {}))
        ambiguous = admin("describe", "import", "Sales from sales.csv", "--config", config)
    assert ambiguous.code == 1
    assert "Import name 'Sales from sales.csv' is ambiguous" in ambiguous.err
    assert "Use the id instead." in ambiguous.err


def test_wrong_credentials_fail_in_one_line_without_the_password(sim, tmp_path):
    config = core_config(sim, {}, password="not-the-password")
    listed = admin("list", "files", "--config", write_json(tmp_path / "c.json", config))
    assert listed.code == 1
    assert listed.err.startswith("error: Anaplan refused the user name or password")
    assert "not-the-password" not in listed.err + listed.out
    assert "Traceback" not in listed.err


def test_list_workspaces_and_models_need_no_model_in_the_config(sim, tmp_path):
    config = core_config(sim, {})
    del config["workspace"], config["model"]
    path = write_json(tmp_path / "c.json", config)
    assert admin("list", "workspaces", "--config", path, "--json").json[0]["name"] == "Target Tests"
    models = admin("list", "models", "--config", path, "--workspace", "Target Tests", "--json")
    assert [m["name"] for m in models.json] == ["Core Model"]
    files = admin("list", "files", "--config", path)
    assert files.code == 1
    assert files.err == (
        "error: Setting `workspace` is required. Set `workspace` to a name or id.\n"
    )


def test_config_files_merge_left_to_right(sim, tmp_path):
    first = write_json(tmp_path / "a.json", {**core_config(sim, {}), "model": "No Such Model"})
    second = write_json(tmp_path / "b.json", {"model": "Core Model"})
    assert admin("list", "lists", "--config", first).code == 1
    merged = admin("list", "lists", "--config", first, "--config", second, "--json")
    assert merged.code == 0, merged.err
    assert len(merged.json) == 5


def test_without_config_the_target_anaplan_environment_is_read(sim, monkeypatch):
    """As under `meltano invoke`: upper-cased names, lists and objects as JSON text, and
    values the SDK's own parser cannot take (warn for a row threshold)."""
    env = {
        "API_BASE_URL": f"{sim.url}/2/0",
        "AUTH_BASE_URL": sim.url,
        "USERNAME": USER["username"],
        "PASSWORD": USER["password"],
        "WORKSPACE": "Target Tests",
        "MODEL": "Core Model",
        "STREAMS": json.dumps({"products": PRODUCTS}),
        "LOAD_ORDER": json.dumps(["products"]),
        "MAX_FAILED_ROWS": "warn",
        "CHUNK_SIZE_MB": "10",
        "IMPORT_TIMEOUT_S": "",  # Meltano may export an unset setting as empty: ignored
    }
    for name, value in env.items():
        monkeypatch.setenv(f"TARGET_ANAPLAN_{name}", value)
    described = admin("describe", "file", "products", "--json")
    assert described.code == 0, described.err
    assert described.json["header"][:2] == ["Code", "Name"]

    monkeypatch.setenv("TARGET_ANAPLAN_LOAD_ORDER", "products")
    broken = admin("list", "files")
    assert broken.code == 1
    assert broken.err.startswith(
        "error: Environment variable TARGET_ANAPLAN_LOAD_ORDER is not valid JSON"
    )


def test_streams_flattened_by_meltano_are_nested_again():
    """Meltano exports an object setting with its nested keys joined by dots."""
    flat = {
        "public.products.imports": ["Products from products.csv"],
        "public.products.mode": "upsert",
        "public.products.columns.Code": "code",
        "public.products.columns.Unit.Price": "price",
        "sales": {"imports": ["Sales from sales.csv"]},
    }
    config = from_environment({"TARGET_ANAPLAN_STREAMS": json.dumps(flat)})
    assert config == {
        "streams": {
            "public.products": {
                "imports": ["Products from products.csv"],
                "mode": "upsert",
                "columns": {"Code": "code", "Unit.Price": "price"},
            },
            "sales": {"imports": ["Sales from sales.csv"]},
        }
    }
    not_json = from_environment({"TARGET_ANAPLAN_STREAMS": "{products"})
    assert not_json == {"streams": "{products"}  # for the settings table to refuse, naming it
