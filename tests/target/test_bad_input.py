"""Bad input from the tap: each case fails on one line naming where, or is changed with a warning.

The target runs as a real process (``python -m target_anaplan``) against the simulator.
Failures are checked for: exit code 1, one ERROR line and no traceback on stderr, no STATE
on stdout, and nothing of the all-mode stream uploaded or imported. The outcomes are listed
in docs/bad-input.md.
"""

from __future__ import annotations

import pytest

from tests.kit.singer import lines, record, schema, state
from tests.kit.targetkit import (
    CUSTOMER,
    CUSTOMERS,
    completes,
    core_config,
    list_items,
    run_subprocess,
)

CUSTOMERS_FILE = "113000000004"
LATIN_FILE = "113000000005"
ALL_CUSTOMERS = {"customers": CUSTOMERS | {"mode": "all"}}
LATIN = {
    "latin": {
        "file": "customers_latin1.csv",
        "imports": ["Customers from customers_latin1.csv"],
        "mode": "all",
    }
}


def customers_schema(extra: dict | None = None) -> dict:
    return schema("customers", CUSTOMER | (extra or {}), ["id"])


def customer(rec: dict) -> dict:
    return record("customers", rec)


# One good record and a STATE come first: neither may be committed or emitted when a
# later line is bad, since an all-mode stream is loaded whole or not at all.
GOOD_START = lines(
    customers_schema(), customer({"id": "C1", "city": "Oslo"}), state({"bookmark": 1})
)
TYPED = {"visits": {"type": "integer"}, "seen": {"type": "string", "format": "date-time"}}

FAILURES = {
    "malformed JSON line": (
        GOOD_START + '{"type": "RECORD", "stream": "customers", "record": {"id": \n',
        ["Line 4 of the input", "not valid JSON", '"record": {"id":'],
    ),
    "line that is not a Singer message": (
        GOOD_START + '{"type": "RECORD", "stream": "customers", "record": "C2"}\n',
        ["Line 4 of the input", "stream 'customers'", "record 2", "not a JSON object"],
    ),
    "unknown message type": (
        GOOD_START + '{"type": "RECORDS", "stream": "customers"}\n',
        ["Line 4 of the input", "unknown Singer message type 'RECORDS'"],
    ),
    "RECORD before SCHEMA": (
        GOOD_START + lines(record("orders", {"id": "O1"})),
        ["Line 4 of the input", "stream 'orders'", "record 1", "before the stream's SCHEMA"],
    ),
    "missing key property": (
        GOOD_START + lines(customer({"city": "Rome"})),
        ["Line 4 of the input", "stream 'customers'", "record 2", "field id", "key propert"],
    ),
    "value of the wrong type": (
        lines(customers_schema(TYPED), customer({"id": "C1", "visits": 3}), state({"b": 1}))
        + lines(customer({"id": "C2", "visits": "many"})),
        ["Line 4 of the input", "stream 'customers'", "record 2", "field visits", "integer"],
    ),
    "unparseable date": (
        lines(customers_schema(TYPED), customer({"id": "C1", "seen": "2024-01-31T12:00:00Z"}))
        + lines(state({"b": 1}), customer({"id": "C2", "seen": "yesterday"})),
        ["Line 4 of the input", "stream 'customers'", "record 2", "field seen", "'yesterday'"],
    ),
    "unknown stream (unmapped_streams: error)": (
        GOOD_START + lines(schema("orders", CUSTOMER), record("orders", {"id": "O1"})),
        ["Line 4 of the input", "'orders'", "unmapped_streams: ignore"],
    ),
    "column removed that the header needs": (
        GOOD_START
        + lines(schema("customers", {"id": {"type": "string"}}, ["id"]), customer({"id": "C2"})),
        ["Line 4 of the input", "Stream 'customers'", "'city'", "streams.customers.columns"],
    ),
}


@pytest.mark.parametrize("text, needles", FAILURES.values(), ids=FAILURES.keys())
def test_bad_input_fails_on_one_line_and_commits_nothing(sim, tmp_path, text, needles):
    run = run_subprocess(core_config(sim, ALL_CUSTOMERS), text, tmp_path)

    assert_one_error_line(run, *needles)
    assert list_items(sim, "Customers") == {}
    assert not completes(sim, CUSTOMERS_FILE)


def test_unencodable_character_fails_naming_record_and_field(sim, tmp_path):
    text = lines(
        schema("latin", CUSTOMER, ["id"]),
        record("latin", {"id": "M", "city": "Malmö"}),
        state({"bookmark": 1}),
        record("latin", {"id": "T", "city": "東京"}),
    )
    run = run_subprocess(core_config(sim, LATIN), text, tmp_path)

    assert_one_error_line(
        run, "Record 2", "stream 'latin'", "field 'city'", "ISO-8859-1", "encoding_errors"
    )
    assert list_items(sim, "Customers") == {}
    assert not completes(sim, LATIN_FILE)


def test_unencodable_character_replaced_with_one_warning(sim, tmp_path):
    text = lines(
        schema("latin", CUSTOMER, ["id"]),
        record("latin", {"id": "M", "city": "Malmö"}),
        record("latin", {"id": "T", "city": "東京"}),
        record("latin", {"id": "K", "city": "Kyōto"}),
        state({"bookmark": 3}),
    )
    run = run_subprocess(core_config(sim, LATIN, encoding_errors="replace"), text, tmp_path)

    assert run.returncode == 0, run.stderr
    assert run.states == [{"bookmark": 3}]
    cities = {
        code: item["properties"]["City"] for code, item in list_items(sim, "Customers").items()
    }
    assert cities == {"M": "Malmö", "T": "??", "K": "Ky?to"}
    assert one_warning(run, "replaced by '?'").endswith("(3 so far)")


def test_nul_and_control_characters_are_removed_with_one_warning(sim, tmp_path):
    text = lines(
        customers_schema(),
        customer({"id": "C1", "city": "Os\x00lo\x07"}),
        customer({"id": "C2", "city": "Ro\x1bme\x7f\x85"}),
        customer({"id": "C3", "city": "Tab\there,\nnew line"}),
        state({"bookmark": 3}),
    )
    run = run_subprocess(core_config(sim, ALL_CUSTOMERS), text, tmp_path)

    assert run.returncode == 0, run.stderr
    assert run.states == [{"bookmark": 3}]
    cities = {code: i["properties"]["City"] for code, i in list_items(sim, "Customers").items()}
    assert cities == {"C1": "Oslo", "C2": "Rome", "C3": "Tab\there,\nnew line"}
    assert "control characters removed (2 so far)" in one_warning(run, "control characters")


def test_ten_megabyte_string_is_loaded_unchanged(sim, tmp_path):
    big = "x" * 10_000_000
    text = lines(
        customers_schema(),
        customer({"id": "C1", "city": "Oslo"}),
        customer({"id": "C2", "city": big}),
        customer({"id": "C3", "city": "Rome"}),
        state({"bookmark": 3}),
    )
    # 1 MB chunks: the 10 MB row travels as a chunk of its own.
    run = run_subprocess(core_config(sim, ALL_CUSTOMERS, chunk_size_mb=1), text, tmp_path)

    assert run.returncode == 0, run.stderr[-2000:]
    assert run.states == [{"bookmark": 3}]
    items = list_items(sim, "Customers")
    assert items["C2"]["properties"]["City"] == big
    assert items["C3"]["properties"]["City"] == "Rome"
    assert "3 chunks" in run.stderr


def test_unknown_stream_is_skipped_with_one_warning(sim, tmp_path):
    text = lines(
        schema("orders", CUSTOMER),
        record("orders", {"id": "O1"}),
        customers_schema(),
        customer({"id": "C1", "city": "Oslo"}),
        record("orders", {"id": "O2"}),
        state({"bookmark": 1}),
    )
    run = run_subprocess(core_config(sim, ALL_CUSTOMERS, unmapped_streams="ignore"), text, tmp_path)

    assert run.returncode == 0, run.stderr
    assert run.states == [{"bookmark": 1}]
    assert sorted(list_items(sim, "Customers")) == ["C1"]
    assert "unmapped_streams: ignore" in one_warning(run, "orders")


def test_column_added_mid_stream_is_logged_and_not_loaded(sim, tmp_path):
    text = lines(
        customers_schema(),
        customer({"id": "C1", "city": "Oslo"}),
        customers_schema({"tier": {"type": "string"}}),
        customer({"id": "C2", "city": "Rome", "tier": "gold"}),
        customer({"id": "C3", "city": "Pisa", "tier": "silver"}),
        state({"bookmark": 3}),
    )
    run = run_subprocess(core_config(sim, ALL_CUSTOMERS), text, tmp_path)

    assert run.returncode == 0, run.stderr
    assert run.states == [{"bookmark": 3}]
    items = list_items(sim, "Customers")
    assert sorted(items) == ["C1", "C2", "C3"]
    assert items["C2"]["properties"] == {"City": "Rome"}
    notes = [line for line in run.stderr.splitlines() if "'tier' feed no column" in line]
    assert len(notes) == 1


# Helpers


def log_lines(run, level: str) -> list[str]:
    return [line for line in run.stderr.splitlines() if f"| {level}" in line]


def assert_one_error_line(run, *needles: str) -> str:
    """Exit 1, no STATE, no traceback, and exactly one ERROR line, naming every needle."""
    assert run.returncode == 1, run.stderr
    assert run.stdout == ""
    assert "Traceback" not in run.stderr
    errors = log_lines(run, "ERROR")
    assert len(errors) == 1, run.stderr
    missing = [needle for needle in needles if needle not in errors[0]]
    assert not missing, errors[0]
    return errors[0]


def one_warning(run, needle: str) -> str:
    """The one WARNING line that contains ``needle``."""
    warnings = [line for line in log_lines(run, "WARNING") if needle in line]
    assert len(warnings) == 1, run.stderr
    return warnings[0]


def test_insert_mode_keeps_committed_batches_and_drops_the_current_one(sim, tmp_path):
    streams = {"customers": CUSTOMERS | {"mode": "insert"}}
    text = lines(
        customers_schema(),
        customer({"id": "C1", "city": "Oslo"}),
        customer({"id": "C2", "city": "Rome"}),
        state({"bookmark": 2}),
        customer({"id": "C3", "city": "Pisa"}),
        customer({"city": "Bari"}),
    )
    run = run_subprocess(core_config(sim, streams, batch_size_rows=2), text, tmp_path)

    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    assert len(log_lines(run, "ERROR")) == 1
    assert "record 4, field id" in log_lines(run, "ERROR")[0]
    assert sorted(list_items(sim, "Customers")) == ["C1", "C2"]
    assert len(completes(sim, CUSTOMERS_FILE)) == 1
    # The STATE after the committed batch went out at once; nothing after it did.
    assert run.states == [{"bookmark": 2}]
