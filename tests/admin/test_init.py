"""`init`: a `streams` block for chosen imports, matched against a tap's catalog, that the
target accepts and loads with, and that `check` passes."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from target_anaplan.admin.check import preflight
from target_anaplan.admin.init_streams import as_yaml
from target_anaplan.admin.tap_catalog import read_tap_catalog
from target_anaplan.errors import ConfigError
from target_anaplan.settings import Settings
from tests.kit.adminkit import (
    PRODUCT_FIELDS,
    SALE_FIELDS,
    admin,
    catalog_file,
    tap_stream,
    write_json,
)
from tests.kit.singer import lines, record, schema, state
from tests.kit.targetkit import core_config, list_items, run_in_process

IMPORTS = ("Products from products.csv", "Sales from sales.csv")


@pytest.fixture
def catalog(tmp_path):
    return catalog_file(
        tmp_path / "catalog.json",
        tap_stream("public-products", PRODUCT_FIELDS, ["sku"]),
        tap_stream("public-sales", SALE_FIELDS),
    )


@pytest.fixture
def config(sim):
    return core_config(sim, {})


def init(config, tmp_path, *args: str):
    return admin("init", "--config", write_json(tmp_path / "c.json", config), *args)


def test_init_maps_every_column_by_exact_and_near_names(config, catalog, tmp_path):
    proposed = init(config, tmp_path, "--imports", *IMPORTS, "--catalog", catalog)

    assert proposed.code == 0, proposed.err
    assert yaml.safe_load(proposed.out) == {
        "streams": {
            "public-products": {
                "file": "products.csv",
                "imports": ["Products from products.csv"],
                "mode": "upsert",
                "key": ["sku"],
                # Code: the key of a list import; Price, Active: the nearest names.
                "columns": {
                    "Code": "sku",
                    "Name": "name",
                    "Category": "category",
                    "Price": "price_usd",
                    "Launched": "launched_at",
                    "Active": "is_active",
                },
                "formats": {"Launched": "date"},
            },
            "public-sales": {
                "file": "sales.csv",
                "imports": ["Sales from sales.csv"],
                "columns": {c: c for c in ("Product", "Region", "Units", "Revenue", "Note")},
            },
        }
    }
    assert proposed.out.startswith("# target-anaplan streams for model 'Core Model'")
    assert proposed.err == ""


def test_init_json_is_the_same_block(config, catalog, tmp_path):
    as_text = init(config, tmp_path, "--imports", *IMPORTS, "--catalog", catalog)
    as_json = init(config, tmp_path, "--imports", *IMPORTS, "--catalog", catalog, "--json")
    assert as_json.json == yaml.safe_load(as_text.out)


def test_the_target_accepts_the_block_and_check_passes_on_it(sim, config, catalog, tmp_path):
    streams = init(config, tmp_path, "--imports", *IMPORTS, "--catalog", catalog, "--json")
    ready = {**config, **streams.json}
    assert set(Settings.from_config(ready).streams) == {"public-products", "public-sales"}

    report = preflight(ready, read_tap_catalog(catalog))
    assert report.problems == 0, report.findings

    product = {"sku": "P1", "name": "Widget", "category": "Tools", "price_usd": 9.5,
               "launched_at": "2024-01-31T18:30:00Z", "is_active": True}  # fmt: skip
    run_in_process(
        ready,
        lines(
            schema("public-products", PRODUCT_FIELDS, ["sku"]),
            record("public-products", product),
            state({"bookmarks": {}}),
        ),
    )
    assert list_items(sim, "Products")["P1"]["properties"] == {
        "Category": "Tools",
        "Price": 9.5,
        "Launched": "2024-01-31",
        "Active": True,
    }


def test_a_column_no_field_matches_is_todo_and_check_names_it(config, tmp_path):
    fields = {k: v for k, v in SALE_FIELDS.items() if k != "Note"} | {"id": {"type": "string"}}
    catalog = catalog_file(tmp_path / "cat.json", tap_stream("sales", fields))
    proposed = init(config, tmp_path, "--imports", "Sales from sales.csv", "--catalog", catalog)

    assert proposed.code == 0
    block = yaml.safe_load(proposed.out)["streams"]["sales"]
    assert block["columns"]["Note"] == "TODO"
    assert proposed.err == "note: sales: no field matched 'Note'; replace the TODOs.\n"

    report = preflight({**config, "streams": {"sales": block}}, read_tap_catalog(catalog))
    problems = [f for f in report.findings if f.status == "problem"]
    assert [f.check for f in problems] == ["stream sales header"]
    assert "'Note' (read from field 'TODO')" in problems[0].detail


def test_without_a_catalog_streams_are_named_after_their_files(config, tmp_path):
    proposed = init(config, tmp_path, "--imports", "112000000002", "Cities from cities.csv")
    streams = yaml.safe_load(proposed.out)["streams"]
    assert streams == {
        "regions": {"file": "regions.txt", "imports": ["Regions from regions.txt"]},
        "cities": {"file": "cities.csv", "imports": ["Cities from cities.csv"]},
    }
    assert "regions: no --catalog given, so no columns are proposed" in proposed.err
    assert set(Settings.from_config({**config, "streams": streams}).streams) == set(streams)


def test_imports_of_one_file_share_a_stream(sim, tmp_path):
    config = core_config(sim, {})
    twice = ["Regions from regions.txt"] * 2
    proposed = init(config, tmp_path, "--imports", *twice, "--json")
    assert proposed.json["streams"]["regions"]["imports"] == twice


def test_an_unknown_import_fails_in_one_line(config, tmp_path):
    proposed = init(config, tmp_path, "--imports", "Nothing like it")
    assert proposed.code == 1
    assert proposed.out == ""
    assert proposed.err.startswith("error: Import 'Nothing like it' not found in model")


@pytest.mark.parametrize(
    "text",
    ["yes", "No", "null", "true", "Code: x", "#hash", " padded", "a # b", "12", "1.5e3",
     "Ünïcode Name", 'quote "inside"', "multi\nline", "- dash", "", "tab\there", "{x}"],
)  # fmt: skip
def test_yaml_text_reads_back_as_the_same_text(text):
    streams = {text: {"file": text, "imports": [text], "columns": {text: text}}}
    assert yaml.safe_load(as_yaml(streams, "heading")) == {"streams": streams}


def test_yaml_of_plain_names_is_unquoted():
    streams = {"orders": {"file": "orders.csv", "imports": ["Orders from orders.csv"]}}
    assert as_yaml(streams, "x") == (
        "# x\nstreams:\n  orders:\n    file: orders.csv\n    imports:\n    - Orders from orders.csv"
    )


def test_a_tap_catalog_leaves_out_fields_the_tap_does_not_send(tmp_path):
    stream = tap_stream(
        "s",
        {"a": {}, "b": {}, "c": {}, "d": {}},
        metadata=[
            {"breadcrumb": [], "metadata": {"table-key-properties": ["a"]}},
            {"breadcrumb": ["properties", "b"], "metadata": {"selected": False}},
            {"breadcrumb": ["properties", "c"], "metadata": {"inclusion": "unsupported"}},
        ],
    )
    read = read_tap_catalog(catalog_file(tmp_path / "c.json", stream))["s"]
    assert (list(read.properties), read.key) == (["a", "d"], ("a",))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "is not valid JSON"),
        (json.dumps({"type": "SCHEMA"}), "is not a Singer catalog (no `streams` list)"),
        (json.dumps({"streams": [{"schema": {}}]}), "every stream needs a `tap_stream_id`"),
    ],
)
def test_a_file_that_is_not_a_catalog_is_refused(tmp_path, content, message):
    path = tmp_path / "c.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=re.escape(message)):
        read_tap_catalog(str(path))
