"""The typed record path gives exactly what the per-record path gives, or leaves it to it.

Each case feeds the same input to the target twice, into a dry run: with the typed path
(RECORD lines decoded by msgspec into typed records, formatted a batch of columns at a
time) and with the typed path switched off (every record the per-record way: the SDK's
steps, validation.py, the sink's date parsing, one row at a time). The CSV written, the
states emitted and the error raised must be the same, byte for byte and word for word;
and where a case says so, the typed path must really have taken the records.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from target_anaplan import records as record_path
from target_anaplan.decoding import TypedRecord
from tests.kit.singer import lines, schema, state
from tests.kit.targetkit import PRODUCTS, core_config, run_in_process

HEADER = ("Code", "Name", "Category", "Price", "Launched", "Active")


def fields(**columns: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A schema feeding the products data source's six columns (unnamed ones as strings)."""
    return {name: columns.get(name, {"type": ["string", "null"]}) for name in HEADER}


def raw(**values: str) -> str:
    """A RECORD line whose values are written as given (JSON text, e.g. ``1E+5``)."""
    body = ", ".join(f"{json.dumps(name)}: {text}" for name, text in values.items())
    return f'{{"type": "RECORD", "stream": "products", "record": {{{body}}}}}\n'


def text(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


TRICKY_STRINGS = [
    'says "hi", then leaves',
    "line one\nline two",
    "carriage\rreturn",
    "crlf\r\nend",
    "tab\there",
    " leading space",
    "trailing space ",
    " ",
    "",
    "bell\x07 and nul\x00 and esc\x1b and del\x7f and c1\x85",
    "Zoë Müller, 山田 太郎 ☃ 😀",
    "line\u2028separator and zero\u200dwidth",
    "'single' quotes; semicolons|pipes",
    "x" * 100_000,
]
DATE_TIMES = 2 * [
    "2024-01-15T10:20:30Z",
    "2024-01-15T10:20:30.000Z",
    "2024-01-15T10:20:30.5Z",
    "2024-01-15T10:20:30.123456+00:00",
    "2024-01-15T10:20:30.1234567Z",
    "2024-01-15T10:20:30-05:30",
    "2024-01-15T10:20:30+14:00",
    "2024-01-15 10:20:30+00:00",
    "2024-01-15T10:20:30",
    "2024-01-15T10:20Z",
    "2024-01-15T10Z",
    "2024-01-15",
    "20240115T102030Z",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999-00:00",
]


def case_lines(properties: dict, records: list[str], key: list[str] | None = None) -> str:
    return lines(schema("products", properties, key)) + "".join(records) + lines(state({"n": 1}))


CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "tricky strings in every dialect column": (
        case_lines(
            fields(),
            [
                raw(Code=text(f"P{i}"), Name=text(s), Category=text(s[::-1]), Price="null")
                for i, s in enumerate(TRICKY_STRINGS)
            ],
        ),
        {},
    ),
    "decimals as taps write them": (
        case_lines(
            fields(Price={"type": "number"}),
            [
                raw(Code=text(f"P{i}"), Price=number)
                for i, number in enumerate(
                    [
                        "0.0",
                        "-0.0",
                        "1.50",
                        "1E+5",
                        "1e-7",
                        "2.5E-10",
                        "123456789012345678901234.5",
                        "0.000001",
                        "0.0000001",
                        "1.000",
                        "-3.25e3",
                    ]
                )
            ],
        ),
        {},
    ),
    "decimals without exponents": (
        case_lines(
            fields(Price={"type": "number"}),
            [raw(Code=text(f"P{i}"), Price=f"{i}.{i:02d}") for i in range(50)],
        ),
        {},
    ),
    "numbers: integers, decimals and nulls in one column": (
        case_lines(
            fields(Price={"type": ["number", "null"]}),
            [
                raw(Code=text(f"P{i}"), Price=number)
                for i, number in enumerate(["0", "7", "-12", "null", "1.50", "1E+5", "null"])
            ],
        ),
        {},
    ),
    "integers": (
        case_lines(
            fields(Price={"type": "integer"}),
            [raw(Code=text(f"P{i}"), Price=str(n)) for i, n in enumerate([0, -1, 2**62, 42])],
        ),
        {},
    ),
    "a numeric string for a number (msgspec's Decimal would take it)": (
        case_lines(
            fields(Price={"type": ["number", "null"]}),
            [raw(Code='"P1"', Price="1.5"), raw(Code='"P2"', Price='"12.5"')],
        ),
        {},
    ),
    "1.0 for an integer (msgspec's int refuses it)": (
        case_lines(
            fields(Price={"type": ["integer", "null"]}),
            [raw(Code='"P1"', Price="3"), raw(Code='"P2"', Price="1.0")],
        ),
        {},
    ),
    "integers beyond 64 bits": (
        case_lines(
            fields(Price={"type": "integer"}),
            [
                raw(Code='"P1"', Price="123456789012345678901234567890"),
                raw(Code='"P2"', Price="-1"),
            ],
        ),
        {},
    ),
    "date-times in every layout the SDK's parser reads": (
        case_lines(
            fields(Launched={"type": ["string", "null"], "format": "date-time"}),
            [raw(Code=text(f"P{i}"), Launched=text(v)) for i, v in enumerate(DATE_TIMES)],
        ),
        {},
    ),
    "dates": (
        case_lines(
            fields(Launched={"type": ["string", "null"], "format": "date"}),
            [
                raw(Code=text(f"P{i}"), Launched=text(v))
                for i, v in enumerate(["2024-01-15", "20240115", "2024-W03-1", "0001-01-01"])
            ],
        ),
        {},
    ),
    "an unparseable date-time": (
        case_lines(
            fields(Launched={"type": "string", "format": "date-time"}),
            [
                raw(Code='"P1"', Launched='"2024-01-15T00:00:00Z"'),
                raw(Code='"P2"', Launched='"soon"'),
            ],
        ),
        {},
    ),
    "an SDK tap's nullable date-time (anyOf) with a date format": (
        case_lines(
            fields(
                Launched={"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]}
            ),
            [raw(Code=text(f"P{i}"), Launched=text(v)) for i, v in enumerate(DATE_TIMES[:9])]
            + [raw(Code='"P99"', Launched="null")],
        ),
        {"formats": {"Launched": "date:%d/%m/%Y", "Active": "boolean:Yes/No"}},
    ),
    "booleans, nulls and missing fields": (
        case_lines(
            fields(Active={"type": ["boolean", "null"]}),
            [
                raw(Code='"P1"', Active="true"),
                raw(Code='"P2"', Active="false"),
                raw(Code='"P3"', Active="null"),
                raw(Code='"P4"'),
            ],
        ),
        {},
    ),
    "objects and arrays kept as JSON": (
        case_lines(
            fields(Name={"type": ["object", "null"]}, Category={"type": "array"}),
            [
                raw(Code='"P1"', Name='{"a": 1.50, "b": [1, "x,y", null]}', Category='[1E+2, "é"]'),
                raw(Code='"P2"', Name="null", Category="[]"),
            ],
        ),
        {},
    ),
    "a nested schema the value breaks": (
        case_lines(
            fields(Name={"type": "object", "properties": {"a": {"type": "integer"}}}),
            [raw(Code='"P1"', Name='{"a": 1}'), raw(Code='"P2"', Name='{"a": "one"}')],
        ),
        {},
    ),
    "draft-4 bounds and multipleOf 0.01 on decimals": (
        case_lines(
            fields(
                Price={
                    "type": ["number", "null"],
                    "multipleOf": 0.01,
                    "minimum": 0,
                    "maximum": 1000,
                    "exclusiveMaximum": True,
                }
            ),
            [
                raw(Code='"P1"', Price="19.99"),
                raw(Code='"P2"', Price="0.1"),
                raw(Code='"P3"', Price="1e-2"),
                raw(Code='"P4"', Price="1000"),
            ],
        ),
        {},
    ),
    "maxLength": (
        case_lines(
            fields(Name={"type": "string", "maxLength": 3}),
            [raw(Code='"P1"', Name='"abc"'), raw(Code='"P2"', Name='"abcd"')],
        ),
        {},
    ),
    "fields the schema does not declare (warned once, then typed)": (
        case_lines(
            fields(),
            [raw(Code=text(f"P{i}"), extra=text("x"), other="null") for i in range(5)],
        ),
        {},
    ),
    "additionalProperties false and an extra field": (
        lines(
            {
                "type": "SCHEMA",
                "stream": "products",
                "key_properties": [],
                "schema": {"type": "object", "properties": fields(), "additionalProperties": False},
            }
        )
        + raw(Code='"P1"')
        + raw(Code='"P2"', extra='"x"'),
        {},
    ),
    "record metadata and deleted rows (deletes: ignore loads them)": (
        case_lines(
            fields(_sdc_deleted_at={"type": ["string", "null"], "format": "date-time"}),
            [
                raw(Code='"P1"', _sdc_extracted_at='"2024-01-01T00:00:00Z"'),
                raw(Code='"P2"', _sdc_deleted_at='"2024-01-01T00:00:00Z"'),
                raw(Code='"P3"', _sdc_deleted_at="null"),
            ],
        ),
        {},
    ),
    "a key property missing": (
        case_lines(fields(), [raw(Code='"P1"'), raw(Name='"no code"')], key=["Code"]),
        {},
    ),
    "a wrong type": (
        case_lines(
            fields(Active={"type": "boolean"}),
            [raw(Code='"P1"', Active="true"), raw(Code='"P2"', Active='"yes"')],
        ),
        {},
    ),
}


def run(sim, tmp_path: Path, name: str, text_in: str, settings: dict[str, Any]) -> dict[str, Any]:
    out = tmp_path / name
    config = core_config(
        sim,
        {"products": PRODUCTS | settings},
        dry_run=True,
        dry_run_dir=str(out),
        unmapped_streams="ignore",
    )
    outcome: dict[str, Any] = {"error": None, "states": None}
    try:
        outcome["states"] = run_in_process(config, text_in).states
    except Exception as error:  # compared below
        outcome["error"] = f"{type(error).__name__}: {error}"
    outcome["files"] = {p.name: p.read_bytes() for p in sorted(out.glob("*"))}
    return outcome


@pytest.mark.parametrize("name", list(CASES))
def test_the_typed_path_writes_what_the_record_path_writes(sim, tmp_path, monkeypatch, name):
    text_in, settings = CASES[name]
    typed_batches: list[int] = []
    load = record_path.RecordPath._load

    def counting(self, typed, records, *rest):
        typed_batches.append(len(records))
        return load(self, typed, records, *rest)

    monkeypatch.setattr(record_path.RecordPath, "_load", counting)
    typed = run(sim, tmp_path, "typed", text_in, settings)
    assert typed_batches, "the typed path took no record: the comparison would prove nothing"
    monkeypatch.setattr(record_path, "_typed_record", lambda sink: None)
    per_record = run(sim, tmp_path, "per-record", text_in, settings)
    assert typed == per_record


def test_unknown_fields_are_warned_about_once_and_later_records_stay_typed(
    sim, tmp_path, monkeypatch, caplog
):
    replayed: list[int] = []
    original = record_path.RecordPath._replay

    def counting(self, lines_, numbers):
        replayed.append(len(lines_))
        return original(self, lines_, numbers)

    monkeypatch.setattr(record_path.RecordPath, "_replay", counting)
    text_in = case_lines(fields(), [raw(Code=text(f"P{i}"), extra='"x"') for i in range(3000)])
    with caplog.at_level(logging.WARNING):
        outcome = run(sim, tmp_path, "typed", text_in, {})
    assert outcome["error"] is None
    warnings = [r.getMessage() for r in caplog.records if "No schema for record field" in r.message]
    assert warnings == ["No schema for record field 'extra'"]
    assert sum(replayed) == 0  # the first record went the other way by itself, not a batch
    assert outcome["files"]["products.csv"].count(b"\n") == 3001


def tracked_run(sim, tmp_path: Path, name: str, text_in: str, mode: str) -> dict[str, Any]:
    """A real run (no dry run) in ``mode`` with its own change store; what it uploaded, the
    states, the error and the change counts it logged."""
    store = tmp_path / f"{name}.sqlite"
    config = core_config(
        sim,
        {"products": PRODUCTS | {"mode": mode}},
        change_store=f"sqlite:///{store}",
        unmapped_streams="ignore",
    )
    before = sim.files()
    outcome: dict[str, Any] = {"error": None, "states": None}
    try:
        outcome["states"] = run_in_process(config, text_in).states
    except Exception as error:  # compared below
        outcome["error"] = f"{type(error).__name__}: {error}"
    outcome["uploaded"] = [f["content"] for f in sim.files() if f not in before]
    return outcome


def tracked_rounds() -> list[str]:
    """Three runs of a full-table tap: every row; the same again; one changed, one new,
    one with a field the schema does not declare, one bad."""
    props = fields(
        Price={"type": ["number", "null"]}, Launched={"type": "string", "format": "date"}
    )
    rows = [
        raw(Code=text(f"P{i}"), Name=text(s), Price=f"{i}.50", Launched='"2024-01-15"')
        for i, s in enumerate(TRICKY_STRINGS)
    ]
    changed = [*rows[:-1], raw(Code='"P-new"', Price="1E+2", Launched='"2024-02-29"')]
    changed[0] = raw(Code='"P0"', Name='"renamed"', Launched='"2024-01-15"')
    changed[1] = rows[1].replace('"Price"', '"extra": 1, "Price"')
    return [
        case_lines(props, rows, key=["Code"]),
        case_lines(props, rows, key=["Code"]),
        case_lines(props, [*changed, raw(Code='"P-bad"', Price='"nan"')], key=["Code"]),
    ]


@pytest.mark.parametrize("mode", ["upsert", "insert"])
def test_change_tracking_of_records_left_as_text_matches_the_record_path(
    sim, tmp_path, monkeypatch, mode, caplog
):
    decoded: list[int] = []
    decode = TypedRecord.decode

    def counting(self, raws):
        decoded[-1] += len(raws)
        return decode(self, raws)

    monkeypatch.setattr(TypedRecord, "decode", counting)
    outcomes = {}
    for path in ("typed", "per-record"):
        if path == "per-record":
            monkeypatch.setattr(record_path, "_typed_record", lambda sink: None)
        sim.reset()
        runs = []
        for round_ in tracked_rounds():
            caplog.clear()
            decoded.append(0)
            with caplog.at_level(logging.INFO):
                outcome = tracked_run(sim, tmp_path, path, round_, mode)
            outcome["counts"] = [r.getMessage() for r in caplog.records if ": new " in r.message]
            runs.append(outcome)
        outcomes[path] = runs
    assert outcomes["typed"] == outcomes["per-record"]
    # The typed path decoded every record of the first load, none of the unchanged rerun.
    assert decoded[:2] == [len(TRICKY_STRINGS), 0]
    first, again, third = outcomes["typed"]
    assert first["uploaded"] and not again["uploaded"]
    assert third["error"] is not None  # the bad record: after the others are judged
