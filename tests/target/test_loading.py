"""Streams into Anaplan, in-process: what lands in the model and which STATE goes out."""

from __future__ import annotations

import json
import logging

import pytest
from singer_sdk.exceptions import InvalidRecord

from target_anaplan.anaplan.errors import ActionFailedError
from target_anaplan.errors import ConfigError, UnencodableValueError
from target_anaplan.target import TargetAnaplan
from tests.kit.singer import lines, record, schema, state
from tests.kit.targetkit import (
    CUSTOMER,
    CUSTOMERS,
    PRODUCTS,
    REGION,
    REGIONS,
    SALES,
    completes,
    core_config,
    failing_run_in_process,
    last_upload,
    list_items,
    module_rows,
    run_in_process,
    task_starts,
)

PRODUCTS_FILE, SALES_FILE, REGIONS_FILE, NOTES_FILE, CUSTOMERS_FILE = (
    f"11300000000{n}" for n in range(5)
)
PRODUCTS_IMPORT, SALES_IMPORT, REGIONS_IMPORT, NOTES_IMPORT, CUSTOMERS_IMPORT = (
    f"11200000000{n}" for n in range(5)
)
REGIONS_PROCESS = "118000000000"


def customers(n: int, *, start: int = 1, states: bool = False) -> list[dict]:
    """n customer records, each followed by a STATE naming it when ``states``."""
    messages = []
    for i in range(start, start + n):
        messages.append(record("customers", {"id": f"C{i}", "city": f"City {i}"}))
        if states:
            messages.append(state({"bookmarks": {"customers": i}}))
    return messages


def customers_stream(mode: str) -> dict:
    return {"customers": CUSTOMERS | {"mode": mode}}


@pytest.fixture
def every_record_drains(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the SDK's periodic (5-minute) full drain fire after every record."""
    monkeypatch.setattr(TargetAnaplan, "_MAX_RECORD_AGE_IN_MINUTES", -1.0)


def test_header_order_differs_from_schema_order(sim):
    # The tap's schema order and field names differ from the data source's header.
    product = {
        "active": {"type": "boolean"},
        "price": {"type": "number"},
        "launched": {"type": "string", "format": "date"},
        "title": {"type": "string"},
        "category": {"type": "string"},
        "sku": {"type": "string"},
    }
    columns = {
        "Code": "sku",
        "Name": "title",
        "Category": "category",
        "Price": "price",
        "Launched": "launched",
        "Active": "active",
    }
    config = core_config(
        sim,
        {
            "products": {
                "file": "products.csv",
                "imports": ["Products from products.csv"],
                "columns": columns,
            }
        },
    )
    run = run_in_process(
        config,
        lines(
            schema("products", product, ["sku"]),
            record(
                "products",
                {
                    "sku": "P1",
                    "title": "Widget",
                    "category": "Tools",
                    "price": 9.5,
                    "launched": "2024-01-31",
                    "active": True,
                },
            ),
            record(
                "products",
                {
                    "active": False,
                    "price": 12,
                    "launched": "2023-12-01",
                    "title": "Gadget",
                    "category": "Toys",
                    "sku": "P2",
                },
            ),
            state({"bookmarks": {"products": 2}}),
        ),
    )

    items = list_items(sim, "Products")
    assert items["P1"]["name"] == "Widget"
    assert items["P1"]["properties"] == {
        "Category": "Tools",
        "Price": 9.5,
        "Launched": "2024-01-31",
        "Active": True,
    }
    assert items["P2"]["properties"] == {
        "Category": "Toys",
        "Price": 12,
        "Launched": "2023-12-01",
        "Active": False,
    }
    assert run.states == [{"bookmarks": {"products": 2}}]


def test_missing_header_column_fails_before_any_upload(sim):
    config = core_config(sim, {"products": PRODUCTS})
    incomplete = {
        "Code": {"type": "string"},
        "Name": {"type": "string"},
        "Category": {"type": "string"},
        "Price": {"type": "number"},
        "Launch": {"type": "string"},
    }
    with pytest.raises(ConfigError) as failure:
        run_in_process(
            config,
            lines(
                schema("products", incomplete), record("products", {"Code": "P1", "Name": "Widget"})
            ),
        )

    message = str(failure.value)
    assert "Launched" in message
    assert "Active" in message
    assert "Launch" in message  # the near match
    assert not [r for r in sim.requests() if "/chunks" in r["path"]]


def test_insert_mode_commits_each_batch_alone(sim):
    config = core_config(sim, customers_stream("insert"), batch_size_rows=2)
    run = run_in_process(
        config,
        lines(
            schema("customers", CUSTOMER, ["id"]),
            *customers(5),
            state({"bookmarks": {"customers": 5}}),
        ),
    )

    assert len(completes(sim, CUSTOMERS_FILE)) == 3  # 2 + 2 + 1 rows
    assert len(task_starts(sim, CUSTOMERS_IMPORT)) == 3
    assert sorted(list_items(sim, "Customers")) == ["C1", "C2", "C3", "C4", "C5"]
    assert run.states == [{"bookmarks": {"customers": 5}}]


def test_stream_maps_and_record_metadata_fields_still_apply(sim):
    # A stream map sends records through the SDK's generic steps, the plain case through
    # the target's own; both strip _sdc_ metadata fields the tap sent.
    cities = {"customers": {"city": "city.upper()"}}
    for stream_maps, expected in (({}, "City 1"), (cities, "CITY 1")):
        config = core_config(sim, customers_stream("all"), stream_maps=stream_maps)
        run_in_process(
            config,
            lines(
                schema("customers", CUSTOMER, ["id"]),
                record("customers", {"id": "C1", "city": "City 1", "_sdc_sequence": 7}),
            ),
        )
        assert list_items(sim, "Customers")["C1"]["properties"]["City"] == expected


def test_insert_mode_emits_state_after_each_commit(sim, every_record_drains):
    config = core_config(sim, customers_stream("insert"))
    run = run_in_process(
        config, lines(schema("customers", CUSTOMER, ["id"]), *customers(3, states=True))
    )

    # Each record is drained (one upload, one import) before the STATE that follows it
    # is read; that STATE goes out at the next drain.
    assert len(completes(sim, CUSTOMERS_FILE)) == 3
    assert len(task_starts(sim, CUSTOMERS_IMPORT)) == 3
    assert run.states == [{"bookmarks": {"customers": i}} for i in (1, 2, 3)]


def test_all_mode_uploads_once_and_holds_state_across_periodic_drains(sim, every_record_drains):
    streams = customers_stream("all") | {"regions": REGIONS | {"mode": "insert"}}
    # regions first in the plan: its commits do not commit customers before them.
    run = run_in_process(
        core_config(sim, streams, load_order=["regions"]),
        lines(
            schema("customers", CUSTOMER, ["id"]),
            schema("regions", REGION, ["Code"]),
            *customers(4, states=True),
            record("regions", {"Code": "EMEA", "Name": "Europe"}),
            state({"bookmarks": {"customers": 4, "regions": 1}}),
            record("regions", {"Code": "APAC", "Name": "Asia Pacific"}),
            state({"bookmarks": {"customers": 4, "regions": 2}}),
        ),
    )

    # The insert-mode stream committed at every drain, yet no STATE left while the
    # all-mode stream still held rows: only the final one, after its single import.
    assert len(completes(sim, REGIONS_FILE)) == 2
    assert len(completes(sim, CUSTOMERS_FILE)) == 1
    assert len(task_starts(sim, CUSTOMERS_IMPORT)) == 1
    assert sorted(list_items(sim, "Customers")) == ["C1", "C2", "C3", "C4"]
    assert run.states == [{"bookmarks": {"customers": 4, "regions": 2}}]


def test_all_mode_keeps_one_file_across_schema_changes(sim):
    wider = CUSTOMER | {"segment": {"type": "string"}}
    run = run_in_process(
        core_config(sim, customers_stream("all")),
        lines(
            schema("customers", CUSTOMER, ["id"]),
            *customers(2),
            schema("customers", wider, ["id"]),
            record("customers", {"id": "C3", "city": "Oslo", "segment": "SMB"}),
            state({"bookmarks": {"customers": 3}}),
        ),
    )

    assert len(completes(sim, CUSTOMERS_FILE)) == 1
    assert len(task_starts(sim, CUSTOMERS_IMPORT)) == 1
    assert {
        code: item["properties"]["City"] for code, item in list_items(sim, "Customers").items()
    } == {"C1": "City 1", "C2": "City 2", "C3": "Oslo"}
    assert run.states == [{"bookmarks": {"customers": 3}}]


def test_failed_import_fails_the_run_without_state(sim):
    sim.add_fault(
        {"kind": "fail", "action_id": CUSTOMERS_IMPORT, "message": "Customers import broke"}
    )
    run = failing_run_in_process(
        core_config(sim, customers_stream("insert")),
        lines(schema("customers", CUSTOMER, ["id"]), *customers(2, states=True)),
        ActionFailedError,
        "Customers import broke",
    )
    assert run.states == []


def test_rejected_rows_fail_the_run_and_keep_the_dump(sim, tmp_path):
    sim.add_fault({"kind": "reject", "action_id": CUSTOMERS_IMPORT, "rows": 1})
    dumps = tmp_path / "dumps"
    config = core_config(sim, customers_stream("all"), failure_dump_dir=str(dumps))
    with pytest.raises(Exception, match="max_failed_rows") as failure:
        run_in_process(config, lines(schema("customers", CUSTOMER), *customers(3, states=True)))

    assert str(dumps) in str(failure.value)
    assert [p for p in dumps.rglob("*") if p.is_file()]


def test_rejected_rows_only_warn_without_threshold(sim, tmp_path, caplog):
    sim.add_fault({"kind": "reject", "action_id": CUSTOMERS_IMPORT, "rows": 1})
    config = core_config(
        sim, customers_stream("all"), max_failed_rows=None, failure_dump_dir=str(tmp_path)
    )
    run = run_in_process(config, lines(schema("customers", CUSTOMER), *customers(3, states=True)))

    assert run.states == [{"bookmarks": {"customers": 3}}]
    assert "failed 1" in caplog.text
    assert len(list_items(sim, "Customers")) == 2


@pytest.mark.parametrize("concurrency", ["parallel", "sequential"])
def test_two_streams_two_data_sources_with_imports(sim, concurrency):
    # regions.txt feeds an import and a process; the import is held in progress for a
    # few polls, so the request log shows whether the process started meanwhile.
    sim.add_fault({"kind": "hold", "action_id": REGIONS_IMPORT, "polls": 4})
    streams = customers_stream("all") | {
        "regions": REGIONS | {"processes": ["Reload regions"], "mode": "insert"},
    }
    run = run_in_process(
        core_config(sim, streams, import_concurrency=concurrency),
        lines(
            schema("regions", REGION),
            schema("customers", CUSTOMER),
            record("regions", {"Code": "AMER", "Name": "Americas"}),
            *customers(2),
            state({"n": 1}),
        ),
    )

    assert sorted(list_items(sim, "Regions")) == ["AMER"]
    assert sorted(list_items(sim, "Customers")) == ["C1", "C2"]
    assert run.states == [{"n": 1}]
    log = sim.requests()
    import_post = _first(log, "POST", f"/imports/{REGIONS_IMPORT}/tasks")
    process_post = _first(log, "POST", f"/processes/{REGIONS_PROCESS}/tasks")
    last_import_poll = max(
        i
        for i, r in enumerate(log)
        if r["method"] == "GET" and f"/imports/{REGIONS_IMPORT}/tasks/" in r["path"]
    )
    if concurrency == "parallel":
        assert process_post < last_import_poll
    else:
        assert import_post < last_import_poll < process_post


def _first(log: list[dict], method: str, path_end: str) -> int:
    return next(
        i for i, r in enumerate(log) if r["method"] == method and r["path"].endswith(path_end)
    )


def test_two_streams_land_in_a_list_and_a_module(sim):
    product = {
        "Code": {"type": "string"},
        "Name": {"type": "string"},
        "Category": {"type": "string"},
        "Price": {"type": "number"},
        "Launched": {"type": ["string", "null"], "format": "date"},
        "Active": {"type": "boolean"},
    }
    run_in_process(
        core_config(sim, {"regions": REGIONS, "products": PRODUCTS}),
        lines(
            schema("regions", REGION),
            schema("products", product),
            record("regions", {"Code": "EMEA", "Name": "Europe, Middle East and Africa"}),
            record(
                "products",
                {
                    "Code": "P1",
                    "Name": "Widget",
                    "Category": "Tools",
                    "Price": 2.5,
                    "Launched": None,
                    "Active": True,
                },
            ),
        ),
    )
    sale = {
        "Product": {"type": "string"},
        "Region": {"type": "string"},
        "Units": {"type": "integer"},
        "Revenue": {"type": "number"},
        "Note": {"type": ["string", "null"]},
    }
    run = run_in_process(
        core_config(sim, {"sales": SALES}),
        lines(
            schema("sales", sale),
            record(
                "sales",
                {
                    "Product": "P1",
                    "Region": "EMEA",
                    "Units": 3,
                    "Revenue": 7.5,
                    "Note": 'first, "quoted" sale',
                },
            ),
            state({"sales": 1}),
        ),
    )

    assert list_items(sim, "Regions")["EMEA"]["name"] == "Europe, Middle East and Africa"
    assert module_rows(sim, "Sales") == [
        {
            "dimensions": {"Products": "P1", "Regions": "EMEA"},
            "values": {"Units": 3, "Revenue": 7.5, "Note": 'first, "quoted" sale'},
        }
    ]
    assert run.states == [{"sales": 1}]


def test_tab_separated_data_source(sim):
    config = core_config(sim, {"regions": REGIONS})
    region = {"Name": {"type": "string"}, "Code": {"type": "string"}}
    run_in_process(
        config,
        lines(
            schema("regions", region),
            record("regions", {"Code": "EMEA", "Name": "Europe, Middle East\tand Africa"}),
            record("regions", {"Code": "AMER", "Name": 'The "Americas"'}),
        ),
    )

    assert {code: item["name"] for code, item in list_items(sim, "Regions").items()} == {
        "EMEA": "Europe, Middle East\tand Africa",
        "AMER": 'The "Americas"',
    }
    assert last_upload(sim, REGIONS_FILE).splitlines()[0] == "Code\tName"


NOTE_SCHEMA = {
    "code": {"type": "string"},
    "text": {"type": ["string", "null"]},
    "amount": {"type": ["number", "null"]},
    "quantity": {"type": ["integer", "null"]},
    "seen": {"type": ["string", "null"], "format": "date-time"},
    "day": {"type": ["string", "null"], "format": "date"},
    "flag": {"type": ["boolean", "null"]},
    "payload": {"type": ["object", "array", "null"]},
    "missing": {"type": ["string", "null"]},
}
NOTE_COLUMNS = {
    "Code": "code",
    "Text": "text",
    "Amount": "amount",
    "Quantity": "quantity",
    "Seen": "seen",
    "Day": "day",
    "Flag": "flag",
    "Payload": "payload",
    "Missing": "missing",
}

# (record as the tap sends it, as raw JSON text) -> the Text/Amount/Seen/... read back
VALUES = [
    ('{"code": "q", "text": "He said \\"hi\\", then left"}', {"Text": 'He said "hi", then left'}),
    (
        '{"code": "nl", "text": "line one\\nline two\\r\\nline three"}',
        {"Text": "line one\nline two\r\nline three"},
    ),
    ('{"code": "comma", "text": "a,b;c\\td"}', {"Text": "a,b;c\td"}),
    ('{"code": "utf", "text": "Zürich — 東京 ✓ 🚀"}', {"Text": "Zürich — 東京 ✓ 🚀"}),
    ('{"code": "ctl", "text": "a\\u0000b\\u0007c"}', {"Text": "abc"}),
    (
        '{"code": "null", "text": null, "amount": null, "flag": null, "missing": null}',
        {"Text": "", "Amount": "", "Missing": ""},
    ),
    (
        '{"code": "dec", "amount": 1234.56789012345678901234}',
        {"Amount": "1234.56789012345678901234"},
    ),
    ('{"code": "exp", "amount": 1e5}', {"Amount": "100000"}),
    ('{"code": "small", "amount": -0.000001}', {"Amount": "-0.000001"}),
    ('{"code": "int", "quantity": 42}', {"Quantity": 42}),
    ('{"code": "dt", "seen": "2024-01-31T12:00:00Z"}', {"Seen": "2024-01-31T12:00:00+00:00"}),
    (
        '{"code": "dtz", "seen": "2024-01-31T12:00:00.5+02:00"}',
        {"Seen": "2024-01-31T12:00:00.500000+02:00"},
    ),
    ('{"code": "day", "day": "2024-02-29"}', {"Day": "2024-02-29"}),
    ('{"code": "bool", "flag": false}', {"Flag": False}),
    (
        '{"code": "obj", "payload": {"a": [1, "x, \\"y\\""], "b": null}}',
        {"Payload": {"a": [1, 'x, "y"'], "b": None}},
    ),
]


@pytest.mark.parametrize("mode", ["all", "insert"])
def test_values_read_back_exactly(sim, mode):
    config = core_config(
        sim,
        {
            "notes": {
                "file": "notes.csv",
                "imports": ["Notes from notes.csv"],
                "columns": NOTE_COLUMNS,
                "mode": mode,
            }
        },
        batch_size_rows=4,
    )
    messages = lines(schema("notes", NOTE_SCHEMA, ["code"]))
    messages += "".join(
        f'{{"type": "RECORD", "stream": "notes", "record": {raw}}}\n' for raw, _ in VALUES
    )
    run_in_process(config, messages)

    items = list_items(sim, "Notes")
    for raw, expected in VALUES:
        code = json.loads(raw)["code"]
        got = dict(items[code]["properties"])
        if "Payload" in expected:
            got["Payload"] = json.loads(got["Payload"])
        assert {k: got.get(k) for k in expected} == expected, code


def test_unmapped_stream_fails_at_its_schema_by_default(sim):
    with pytest.raises(ConfigError) as failure:
        run_in_process(core_config(sim, customers_stream("all")), lines(schema("orders", CUSTOMER)))

    message = str(failure.value)
    assert "streams.orders" in message
    assert "unmapped_streams" in message


def test_meltanos_connection_test_stream_is_taken_as_a_connection_check(sim, caplog):
    # `meltano config test` sends this stream; the test must pass on a correct config.
    test_stream = lines(
        schema("meltano_test_stream", CUSTOMER),
        record("meltano_test_stream", {"id": "x", "city": "y"}),
        state({"meltano": 1}),
    )
    with caplog.at_level(logging.INFO):
        run = run_in_process(core_config(sim, customers_stream("all")), test_stream)
    assert "Meltano's connection test" in caplog.text
    assert "model 'Core Model' found" in caplog.text
    assert run.states == [{"meltano": 1}]
    assert not [r for r in sim.requests() if "/chunks" in r["path"]]


def test_unmapped_stream_is_skipped_when_ignored(sim, caplog):
    config = core_config(sim, customers_stream("all"), unmapped_streams="ignore")
    run = run_in_process(
        config,
        lines(
            schema("meltano_test_stream", CUSTOMER),
            record("meltano_test_stream", {"id": "x"}),
            schema("customers", CUSTOMER),
            *customers(1),
            state({"done": True}),
        ),
    )

    assert sorted(list_items(sim, "Customers")) == ["C1"]
    assert run.states == [{"done": True}]
    assert "meltano_test_stream" in caplog.text


def test_unknown_workspace_fails_before_reading_input(sim):
    config = core_config(sim, customers_stream("all")) | {"workspace": "Nope"}
    with pytest.raises(Exception, match="Target Tests"):
        run_in_process(config, "this is not read\n")


def test_invalid_record_names_stream_record_and_field(sim):
    config = core_config(sim, customers_stream("all"))
    typed = CUSTOMER | {"visits": {"type": "integer"}}
    with pytest.raises(InvalidRecord) as failure:
        run_in_process(
            config,
            lines(
                schema("customers", typed),
                record("customers", {"id": "C1", "city": "Oslo", "visits": 1}),
                record("customers", {"id": "C2", "city": "Rome", "visits": "many"}),
            ),
        )

    message = str(failure.value)
    assert "'customers'" in message
    assert "record 2" in message
    assert "visits" in message
    assert not completes(sim, CUSTOMERS_FILE)


def test_properties_feeding_no_column_are_logged_once(sim, caplog):
    caplog.set_level(logging.INFO)
    wider = CUSTOMER | {"segment": {"type": "string"}}
    run_in_process(
        core_config(sim, customers_stream("all")),
        lines(
            schema("customers", wider),
            record("customers", {"id": "C1", "city": "Oslo", "segment": "SMB"}),
            schema("customers", wider | {"tier": {"type": "string"}}),
            record("customers", {"id": "C2", "city": "Rome", "segment": "SMB", "tier": "A"}),
        ),
    )

    assert caplog.text.count("'segment'") == 1
    assert caplog.text.count("'tier'") == 1
    assert sorted(list_items(sim, "Customers")) == ["C1", "C2"]


def test_data_source_encoding_is_written_and_enforced(sim):
    streams = {
        "latin": {
            "file": "customers_latin1.csv",
            "imports": ["Customers from customers_latin1.csv"],
        }
    }
    run_in_process(
        core_config(sim, streams),
        lines(schema("latin", CUSTOMER), record("latin", {"id": "Z", "city": "Zürich"})),
    )
    assert list_items(sim, "Customers")["Z"]["properties"]["City"] == "Zürich"

    with pytest.raises(UnencodableValueError) as failure:
        run_in_process(
            core_config(sim, streams),
            lines(
                schema("latin", CUSTOMER),
                record("latin", {"id": "M", "city": "Malmö"}),
                record("latin", {"id": "T", "city": "東京"}),
            ),
        )
    message = str(failure.value).lower()
    assert "record 2" in message
    assert "'latin'" in message
    assert "city" in message
    assert "encoding_errors" in message
    assert sorted(list_items(sim, "Customers")) == ["Z"]


def test_encoding_replacement_warns_once(sim, caplog):
    latin = "customers_latin1.csv"
    streams = {"latin": {"file": latin, "imports": [f"Customers from {latin}"]}}
    run_in_process(
        core_config(sim, streams, encoding_errors="replace"),
        lines(schema("latin", CUSTOMER), record("latin", {"id": "T", "city": "東京"})),
    )

    assert list_items(sim, "Customers")["T"]["properties"]["City"] == "??"
    assert caplog.text.count("replaced by '?'") == 1
