"""Column-wise formatting (``RowFormatter.format_columns``) writes exactly the bytes of the
row-by-row reference (``RowFormatter.format``), on every kind of value and dialect.

Batches are drawn at random (fixed seeds) from values chosen to hit every special case:
quotes, CR, LF, tabs, edge spaces, control characters, non-ASCII, huge strings, nulls,
exponents, naive and aware date-times, and columns of one type (the fast converters) as
well as mixed ones. Date-like columns are also given as ``IsoColumn`` (parsed from the
ISO text a tap sent, as the typed record path hands them over).
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from singer_sdk.helpers._compat import date_fromisoformat, datetime_fromisoformat

from target_anaplan.csv_writer import IsoColumn, RowFormatter, parse_format
from target_anaplan.errors import UnwritableValueError

STRINGS = [
    "plain",
    "",
    'say "hi"',
    "a,b",
    "a;b",
    "a|b",
    "tab\tin",
    "line\nfeed",
    "carriage\rreturn",
    "crlf\r\n",
    " lead",
    "trail ",
    " ",
    "nul\x00bell\x07esc\x1bdel\x7fc1\x85",
    "Zoë, 山田 ☃ 😀",
    "line\u2028separator",
    "'quote'",
    "x" * 50_000,
]
DECIMALS = [Decimal(t) for t in ("0", "-0.0", "1.50", "1E+5", "1e-7", "2.5E-10", "0.000001",
                                 "123456789012345678901234.5", "-3.25e3", "7")]  # fmt: skip
INTEGERS = [0, -1, 7, 2**70, -(2**63)]
ZONES = [timezone.utc, timezone(timedelta(hours=-5, minutes=-30)), timezone(timedelta(hours=14))]
DATETIMES = [
    datetime(2024, 1, 15, 10, 20, 30, tzinfo=ZONES[0]),
    datetime(2024, 1, 15, 10, 20, 30, 500000, tzinfo=ZONES[1]),
    datetime(1, 1, 1, tzinfo=ZONES[2]),
    datetime(2024, 1, 15, 10, 20, 30, 5),  # naive: written as UTC, counted
]
OTHERS = [True, False, None, date(2024, 2, 29), time(10, 20, 30, 7), 1.25, {"a": Decimal("1.0")},
          [1, "x,y", None], frozenset({1})]  # fmt: skip
KINDS: dict[str, list[Any]] = {
    "strings": STRINGS,
    "strings and nulls": [*STRINGS, None, None],
    "printable strings": ["plain", "Zoë", "a b", "x" * 100],
    "decimals": DECIMALS,
    "decimals and nulls": [*DECIMALS, None],
    "integers": INTEGERS,
    "integers and nulls": [*INTEGERS, None],
    "booleans": [True, False, None],
    "date-times": [*DATETIMES, None],
    "dates": [date(2024, 1, 15), date(1, 1, 1), None],
    "times": [time(0, 0), time(23, 59, 59, 999999), None],
    "nulls": [None],
    "anything": [*STRINGS[:6], *DECIMALS[:3], *INTEGERS[:2], *DATETIMES, *OTHERS],
}
DIALECTS = [(",", '"'), (";", "'"), ("\t", '"'), ("|", '"'), ("::", '"'), (".", '"'), ("|", "")]


def formatter(width: int, separator: str, delimiter: str, **formats: str) -> RowFormatter:
    header = [f"c{i}" for i in range(width)]
    return RowFormatter(
        "s",
        header,
        {},
        separator=separator,
        text_delimiter=delimiter,
        formats={name: parse_format(spec) for name, spec in formats.items()},
    )


def batch(rng: random.Random, kinds: list[str], rows: int) -> list[list[Any]]:
    return [[rng.choice(KINDS[kind]) for _ in range(rows)] for kind in kinds]


def outcome(call: Any) -> Any:
    try:
        return call()
    except UnwritableValueError as error:
        return f"UnwritableValueError: {error}"


def reference(form: RowFormatter, columns: list[list[Any]]) -> list[str]:
    return [
        form.format(dict(zip(form.fields, row, strict=True))) for row in zip(*columns, strict=True)
    ]


@pytest.mark.parametrize(("separator", "delimiter"), DIALECTS)
@pytest.mark.parametrize("seed", range(12))
def test_columns_are_written_as_rows_are(separator, delimiter, seed):
    rng = random.Random(seed)
    kinds = [rng.choice(list(KINDS)) for _ in range(rng.randint(1, 7))]
    columns = batch(rng, kinds, rng.choice([1, 2, 50, 300]))
    if delimiter == "":  # no text delimiter: only values free of separators and line ends
        columns = [[v for v in column if not isinstance(v, str)] or [None] for column in columns]
        rows = min(map(len, columns))
        columns = [column[:rows] for column in columns]
    fast, slow = (
        formatter(len(kinds), separator, delimiter),
        formatter(len(kinds), separator, delimiter),
    )
    assert outcome(lambda: fast.format_columns(columns)) == outcome(
        lambda: reference(slow, columns)
    )
    assert fast.changes == slow.changes


@pytest.mark.parametrize("seed", range(6))
def test_a_value_the_dialect_cannot_write_fails_as_the_row_would(seed):
    rng = random.Random(seed)
    columns = batch(rng, ["integers", "strings", "decimals"], 40)
    fast, slow = formatter(3, "|", ""), formatter(3, "|", "")
    written = outcome(lambda: fast.format_columns(columns))
    assert written == outcome(lambda: reference(slow, columns))
    assert isinstance(written, str)
    assert written.startswith("UnwritableValueError: Stream 's', field 'c1'")


def test_formats_apply_to_columns_as_to_rows():
    rng = random.Random(7)
    columns = batch(rng, ["date-times", "booleans", "decimals and nulls", "strings"], 200)
    specs = {"c0": "date:%d/%m/%Y", "c1": "boolean:Yes/No", "c2": "number:2", "c3": "date"}
    fast, slow = formatter(4, ",", '"', **specs), formatter(4, ",", '"', **specs)
    assert fast.format_columns(columns) == reference(slow, columns)


ISO_DATE_TIMES = [
    "2024-01-15T10:20:30Z",
    "2024-01-15T10:20:30.000Z",
    "2024-01-15T10:20:30.5Z",
    "2024-01-15T10:20:30.000005+00:00",
    "2024-01-15T10:20:30.123456-05:30",
    "2024-01-15 10:20:30+14:00",
    "2024-01-15T10:20:30",
    "2024-01-15T10:20",
    "2024-01-15T10",
    "2024-01-15",
    "20240115T102030Z",
    "2024-01-15T10:20:30-00:00",
    "9999-12-31T23:59:59.999999+23:59",
]


@pytest.mark.parametrize("seed", range(6))
def test_iso_columns_are_written_as_their_parsed_values(seed):
    rng = random.Random(seed)
    texts = [rng.choice([*ISO_DATE_TIMES, None]) for _ in range(300)]
    values = [None if t is None else datetime_fromisoformat(t) for t in texts]
    dates = [
        rng.choice(["2024-01-15", "20240115", "2024-W03-1", "0001-01-01", None]) for _ in texts
    ]
    days = [None if t is None else date_fromisoformat(t) for t in dates]
    fast, slow = formatter(2, ",", '"'), formatter(2, ",", '"')
    iso = [IsoColumn(values, texts), IsoColumn(days, dates)]
    assert fast.format_columns(iso) == reference(slow, [values, days])
    assert fast.changes == slow.changes
    assert fast.changes == Counter({"date-times without offset written as UTC": sum(
        1 for v in values if v is not None and v.utcoffset() is None
    )})  # fmt: skip


LAYOUTS = [  # (strftime layout, fraction digits in {f}, written from the text)
    ("%Y-%m-%dT%H:%M:%S.{f}Z", 3, True),
    ("%Y-%m-%dT%H:%M:%S.{f}+05:30", 6, True),
    ("%Y-%m-%dT%H:%M:%S{f}-08:00", 0, True),
    ("%Y-%m-%dT%H:%M:%S.{f}Z", 1, True),
    ("%Y-%m-%dT%H:%M:%S.{f}Z", 7, False),  # rounded to microseconds: value by value
    ("%Y-%m-%d %H:%M:%S.{f}Z", 3, False),  # a space for the T
    ("%Y-%m-%dT%H:%M:%S.{f}", 3, False),  # naive: counted, value by value
    ("%Y-%m-%dT%H:%M:%S,{f}Z", 3, False),  # a comma before the fraction
]


@pytest.mark.parametrize(("layout", "digits", "bulk"), LAYOUTS)
def test_iso_columns_of_one_layout_are_written_from_their_text(layout, digits, bulk):
    rng = random.Random(f"{layout}{digits}")
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    texts = []
    for _ in range(400):
        moment = start + timedelta(seconds=rng.randrange(10**8))
        zero = rng.random() < 0.2  # some fractions all zero: isoformat then writes none
        fraction = "".join("0" if zero else rng.choice("0123456789") for _ in range(digits))
        texts.append(moment.strftime(layout).format(f=fraction))
    values = [datetime_fromisoformat(t) for t in texts]
    column = IsoColumn(values, texts)
    fast, slow = formatter(1, ",", '"'), formatter(1, ",", '"')
    assert fast.format_columns([column]) == reference(slow, [values])
    assert fast.changes == slow.changes
    assert (fast._iso_layout_texts(column) is not None) == bulk


def test_a_date_column_of_one_layout_is_its_text():
    texts = [f"2024-{m:02d}-{d:02d}" for m in range(1, 13) for d in range(1, 29)]
    values = [date_fromisoformat(t) for t in texts]
    fast = formatter(1, ",", '"')
    assert fast._iso_layout_texts(IsoColumn(values, texts)) == texts
    assert fast.format_columns([IsoColumn(values, texts)]) == [f"{t}\n" for t in texts]
    weeks = [f"2024-W{w:02d}-{d}" for w in range(1, 53) for d in range(1, 8)]  # ten long too
    days = [date_fromisoformat(t) for t in weeks]
    assert fast.format_columns([IsoColumn(days, weeks)]) == [f"{d.isoformat()}\n" for d in days]
