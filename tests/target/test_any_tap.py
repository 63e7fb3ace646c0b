"""What taps other than the SDK's send: draft-4 schemas, date-times for dates, extensions."""

from __future__ import annotations

import gzip
import json
import logging

import pytest

from target_anaplan.errors import ConfigError, InputError, RowsRejectedError
from tests.kit.singer import activate_version, batch, lines, record, state
from tests.kit.targetkit import core_config, list_items, run_in_process, run_subprocess

# products as pipelinewise-tap-postgres describes a table (draft-4, no $schema, a date
# column sent as a date-time, numeric(10,2) with boolean exclusive bounds).
PIPELINEWISE_PRODUCTS = {
    "type": "SCHEMA",
    "stream": "public-products",
    "schema": {
        "type": "object",
        "properties": {
            "code": {"type": ["string"]},
            "name": {"type": ["null", "string"]},
            "category": {"type": ["null", "string"]},
            "price": {
                "type": ["null", "number"],
                "exclusiveMaximum": True,
                "maximum": 100000000,
                "exclusiveMinimum": True,
                "minimum": -100000000,
                "multipleOf": 0.01,
            },
            "launched": {"type": ["null", "string"], "format": "date-time"},
            "active": {"type": ["null", "boolean"]},
        },
        "definitions": {
            "sdc_recursive_integer_array": {"type": ["null", "integer", "array"]},
        },
    },
    "key_properties": ["code"],
    "bookmark_properties": [],
}
COLUMNS = {
    "Code": "code",
    "Name": "name",
    "Category": "category",
    "Price": "price",
    "Launched": "launched",
    "Active": "active",
}
ROWS = [
    {"code": "P1", "name": "Widget", "category": "Tools", "price": 19.99,
     "launched": "2024-01-15T00:00:00+00:00", "active": True},
    {"code": "P2", "name": "Gadget", "category": None, "price": 0.1,
     "launched": "2023-12-31T23:30:00-02:00", "active": False},
]  # fmt: skip


VERSION, EXTRACTED = 1700000000000, "2024-02-01T10:00:00.000000Z"


def products_config(sim, **stream: object) -> dict:
    return core_config(
        sim,
        {
            "public-products": {
                "file": "products.csv",
                "imports": ["Products from products.csv"],
                "columns": COLUMNS,
                **stream,
            }
        },
    )


def pipelinewise_run(*extra: dict) -> str:
    """A FULL_TABLE sync as pipelinewise-tap-postgres sends it, versions and all."""
    return lines(
        PIPELINEWISE_PRODUCTS,
        activate_version("public-products", VERSION),
        *(
            record("public-products", row, version=VERSION, time_extracted=EXTRACTED)
            for row in ROWS
        ),
        activate_version("public-products", VERSION),
        *extra,
        state({"currently_syncing": None, "bookmarks": {"public-products": {"version": 1}}}),
    )


def test_a_draft4_schema_with_dates_as_date_times_loads_with_a_date_format(sim, caplog):
    config = products_config(sim, formats={"Launched": "date"})
    with caplog.at_level(logging.DEBUG):
        run = run_in_process(config, pipelinewise_run())

    items = list_items(sim, "Products")
    assert items["P1"]["properties"] == {
        "Category": "Tools",
        "Price": 19.99,
        "Launched": "2024-01-15",
        "Active": True,
    }
    # 23:30 at -02:00 is already 1 January in UTC, the default time_zone.
    assert items["P2"]["properties"]["Launched"] == "2024-01-01"
    assert items["P2"]["properties"]["Price"] == 0.1
    assert run.states == [
        {"currently_syncing": None, "bookmarks": {"public-products": {"version": 1}}}
    ]
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == []
    assert any("ACTIVATE_VERSION" in r.getMessage() for r in caplog.records)


def test_time_zone_decides_the_date_of_a_date_time(sim):
    config = products_config(sim, formats={"Launched": "date"}, time_zone="America/Sao_Paulo")
    run_in_process(config, pipelinewise_run())
    assert list_items(sim, "Products")["P2"]["properties"]["Launched"] == "2023-12-31"


def test_without_the_format_anaplan_rejects_the_date_times(sim, tmp_path):
    config = {**products_config(sim), "failure_dump_dir": str(tmp_path / "dumps")}
    with pytest.raises(RowsRejectedError) as caught:
        run_in_process(config, pipelinewise_run())
    message = str(caught.value)
    assert "2 rows failed" in message
    assert "Failure dump" in message
    assert list_items(sim, "Products") == {}


def test_a_format_for_a_column_the_data_source_lacks_is_a_config_error(sim):
    config = products_config(sim, formats={"Lanched": "date"})
    with pytest.raises(ConfigError, match=r"`streams\.public-products\.formats`.*'Lanched'"):
        run_in_process(config, pipelinewise_run())


def test_a_validator_crash_is_one_line_not_a_traceback(sim, tmp_path):
    config = products_config(sim, formats={"Launched": "date"})
    unbounded = json.dumps({"type": ["null", "number"], "multipleOf": 0.01})
    crashing = (
        pipelinewise_run()
        .replace('"price": 19.99', '"price": 1E+999999999999')
        .replace(json.dumps(PIPELINEWISE_PRODUCTS["schema"]["properties"]["price"]), unbounded)
    )
    run = run_subprocess(config, crashing, tmp_path)
    assert run.returncode == 1
    assert run.states == []
    errors = [line for line in run.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1, run.stderr
    assert "stream 'public-products', record 1, field price" in errors[0]
    assert "'multipleOf'" in errors[0]
    assert "Traceback" not in run.stderr


def test_batch_messages_load_like_records(sim, tmp_path):
    batch_file = tmp_path / "products-1.jsonl.gz"
    with gzip.open(batch_file, "wt") as out:
        out.writelines(json.dumps(row) + "\n" for row in ROWS)
    config = products_config(sim, formats={"Launched": "date"})
    run = run_in_process(
        config,
        lines(PIPELINEWISE_PRODUCTS, batch("public-products", batch_file), state({"batch": 1})),
    )
    assert set(list_items(sim, "Products")) == {"P1", "P2"}
    assert run.states == [{"batch": 1}]


def test_batch_files_of_another_format_fail_clearly(sim, tmp_path):
    config = products_config(sim)
    with pytest.raises(InputError, match="only jsonl batch files"):
        run_in_process(
            config,
            lines(
                PIPELINEWISE_PRODUCTS,
                batch("public-products", tmp_path / "p.parquet", fmt="parquet"),
            ),
        )
