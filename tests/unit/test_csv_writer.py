"""CSV rows in the data source's layout: the values table, quoting, header order and checks."""

from __future__ import annotations

import csv
import io
import random
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from target_anaplan.csv_writer import (
    CONTROL_CHARACTERS_REMOVED,
    NAIVE_DATETIMES_AS_UTC,
    RowFormatter,
    check_columns,
    header_line,
    parse_format,
    preamble,
)
from target_anaplan.errors import ConfigError, UnwritableValueError


def one_value(value: object, *, separator: str = ",", text_delimiter: str = '"') -> str:
    """The CSV text of a single value (a one-column row without its line end)."""
    line = RowFormatter("s", ["v"], {}, separator=separator, text_delimiter=text_delimiter).format(
        {"v": value}
    )
    assert line.endswith("\n")
    return line[:-1]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (-12345678901234567890, "-12345678901234567890"),
        (Decimal("1E+5"), "100000"),
        (Decimal("1.50"), "1.50"),
        (Decimal("-0.000001"), "-0.000001"),
        (Decimal("1.5E-7"), "0.00000015"),
        (Decimal("12345678901234567890.123456789"), "12345678901234567890.123456789"),
        (1e20, "100000000000000000000"),
        (0.1, "0.1"),
        (date(2024, 1, 31), "2024-01-31"),
        (datetime(2024, 1, 31, 12, 0, tzinfo=timezone.utc), "2024-01-31T12:00:00+00:00"),
        (
            datetime(
                2024, 1, 31, 12, 0, 5, 120000, tzinfo=timezone(timedelta(hours=5, minutes=30))
            ),
            "2024-01-31T12:00:05.120000+05:30",
        ),
        (datetime(2024, 1, 31, 12, 0), "2024-01-31T12:00:00+00:00"),
        (time(7, 5, 9), "07:05:09"),
        (time(7, 5, 9, 1), "07:05:09.000001"),
        ("2024-01-31", "2024-01-31"),
        ("2024-01-31T12:00:00Z", "2024-01-31T12:00:00Z"),
        ("Zürich \u2013 東京 🚀", "Zürich \u2013 東京 🚀"),
        ("", ""),
        ("a\x00b\x07c\x1bd\x7fe\x85f", "abcdef"),
        ("tab\tinside", "tab\tinside"),
        ('He said "hi"', '"He said ""hi"""'),
        ("a,b", '"a,b"'),
        ("line1\nline2", '"line1\nline2"'),
        ("cr\rlf", '"cr\rlf"'),
        (" padded ", '" padded "'),
        ("it's", "it's"),
        ({"b": Decimal("1.50"), "a": [1, None, "é"]}, '"{""b"":1.50,""a"":[1,null,""é""]}"'),
        ([1, 2], '"[1,2]"'),
        ({}, "{}"),
    ],
)
def test_values_table(value, text):
    assert one_value(value) == text


def test_changes_are_counted_for_the_stream_warning():
    formatter = RowFormatter("s", ["a", "b"], {}, separator=",", text_delimiter='"')
    formatter.format({"a": "x\x00y", "b": datetime(2024, 1, 1)})
    formatter.format({"a": "x\x01", "b": datetime(2024, 1, 1, tzinfo=timezone.utc)})
    formatter.format({"a": "clean", "b": None})
    assert formatter.changes == {CONTROL_CHARACTERS_REMOVED: 2, NAIVE_DATETIMES_AS_UTC: 1}


def test_subclasses_and_unknown_types_still_convert():
    class Text(str):
        pass

    class Stamp(datetime):
        pass

    assert one_value(Text("a\x00,b")) == '"a,b"'
    assert one_value(Stamp(2024, 1, 1, tzinfo=timezone.utc)) == "2024-01-01T00:00:00+00:00"
    assert one_value((1, "x")) == '"[1,""x""]"'


def test_tricky_row_round_trips_through_a_csv_parser():
    header = ["Code", "Name", "Note", "Amount", "Active", "Missing"]
    record = {
        "Note": 'quote " comma , newline \n and CRLF \r\n end',
        "Name": "Ünïcödé, naïve",
        "Code": "A-1",
        "Amount": Decimal("-1.000"),
        "Active": True,
    }
    formatter = RowFormatter("s", header, {}, separator=",", text_delimiter='"')
    line = formatter.format(record)
    parsed = next(csv.reader(io.StringIO(line, newline="")))
    assert parsed == ["A-1", "Ünïcödé, naïve", record["Note"], "-1.000", "true", ""]


def test_header_order_wins_over_record_key_order_and_columns_rename():
    formatter = RowFormatter(
        "s",
        ["Sales Region", "Code", "Name"],
        {"Sales Region": "region", "Code": "id"},
        separator=",",
        text_delimiter='"',
    )
    record = {"name": "ignored", "Name": "Alice", "id": 7, "region": "EMEA", "extra": 1}
    assert formatter.format(record) == "EMEA,7,Alice\n"


def test_tab_separator_quotes_only_what_needs_it():
    formatter = RowFormatter("s", ["a", "b", "c"], {}, separator="\t", text_delimiter='"')
    assert formatter.format({"a": "x,y", "b": "tab\there", "c": "q'"}) == 'x,y\t"tab\there"\tq\'\n'
    assert header_line(["Name", "Sales Region"], "\t", '"') == "Name\tSales Region\n"


def test_single_quote_delimiter_doubles_single_quotes():
    assert one_value("it's", text_delimiter="'") == "'it''s'"
    assert one_value('say "x"', text_delimiter="'") == 'say "x"'


def test_semicolon_separator_quotes_decimals_only_when_they_contain_it():
    formatter = RowFormatter("s", ["a", "b"], {}, separator=";", text_delimiter='"')
    assert formatter.format({"a": Decimal("1.5"), "b": "x;y"}) == '1.5;"x;y"\n'


def test_no_delimiter_writes_plain_text():
    formatter = RowFormatter("s", ["a", "b"], {}, separator=",", text_delimiter="")
    assert formatter.format({"a": 'say "hi"', "b": " padded "}) == 'say "hi", padded \n'


@pytest.mark.parametrize(
    ("value", "reason"),
    [("a,b", "column separator ','"), ("two\nlines", "line break"), ("cr\r", "line break")],
)
def test_no_delimiter_refuses_what_anaplan_could_not_read(value, reason):
    formatter = RowFormatter(
        "orders", ["Code", "Note"], {"Note": "note"}, separator=",", text_delimiter=""
    )
    with pytest.raises(UnwritableValueError) as caught:
        formatter.format({"Code": "A", "note": value})
    message = str(caught.value)
    assert "Stream 'orders'" in message
    assert "field 'note' (column 'Note')" in message
    assert reason in message
    assert "text delimiter" in message


def test_header_line_quotes_names_and_refuses_unwritable_ones():
    assert header_line(["a,b", "c"], ",", '"') == '"a,b",c\n'
    with pytest.raises(UnwritableValueError):
        header_line(["a,b"], ",", "")


@pytest.mark.parametrize(
    ("header_row", "first_data_row", "expected"),
    [
        (1, 2, "A,B\n"),
        (0, 1, ""),
        (0, 3, "\n\n"),
        (2, 4, "\nA,B\n\n"),
        (1, 1, "A,B\n"),
    ],
)
def test_preamble_puts_the_header_on_its_row(header_row, first_data_row, expected):
    text = preamble(
        ["A", "B"],
        separator=",",
        text_delimiter='"',
        header_row=header_row,
        first_data_row=first_data_row,
    )
    assert text == expected


def test_locate_finds_the_field_of_a_character_position():
    formatter = RowFormatter("s", ["A", "B", "C"], {"B": "b"}, separator=",", text_delimiter='"')
    line = formatter.format({"A": "x,y", "b": 'q"€', "C": "z"})
    assert formatter.locate(line, line.index("€")) == "field 'b' (column 'B')"
    assert formatter.locate(line, line.index("z")) == "field 'C' (column 'C')"


def test_check_columns_returns_unused_properties_in_schema_order():
    unused = check_columns(
        "s",
        ["Code", "Name"],
        {"Code": "id"},
        ["updated_at", "id", "Name", "_sdc_extracted_at"],
    )
    assert unused == ["updated_at", "_sdc_extracted_at"]


def test_check_columns_names_missing_columns_near_matches_and_the_fix():
    with pytest.raises(ConfigError) as caught:
        check_columns(
            "employees",
            ["Name", "Sales Region", "Code"],
            {"Code": "id"},
            ["name", "sales_region", "id"],
        )
    message = str(caught.value)
    assert "'Name' (read from field 'Name'), similar fields: 'name'" in message
    assert (
        "'Sales Region' (read from field 'Sales Region'), similar fields: 'sales_region'" in message
    )
    assert "'Code'" not in message
    assert "`streams.employees.columns`" in message
    assert '{"Name": "name", "Sales Region": "sales_region"}' in message


def test_check_columns_without_near_match_still_shows_the_fix():
    with pytest.raises(ConfigError, match=r'\{"Parent": "<field>"\}'):
        check_columns("s", ["Parent"], {}, ["zzz"])


def test_check_columns_refuses_columns_keys_the_header_lacks():
    with pytest.raises(ConfigError) as caught:
        check_columns("s", ["Sales Region"], {"Sales Regoin": "region"}, ["region"])
    message = str(caught.value)
    assert "'Sales Regoin', similar header columns: 'Sales Region'" in message
    assert "`streams.s.columns`" in message


def reference_line(texts: list[str], separator: str, delimiter: str) -> str:
    """The quoting rule, spelled out field by field."""

    def quote(text: str) -> str:
        special = any(c in text for c in (separator, delimiter, "\r", "\n"))
        if special or text.startswith(" ") or text.endswith(" "):
            return delimiter + text.replace(delimiter, delimiter * 2) + delimiter
        return text

    return separator.join(quote(text) for text in texts) + "\n"


@pytest.mark.parametrize(("separator", "delimiter"), [(",", '"'), ("\t", '"'), (";", "'")])
def test_every_quoting_path_follows_the_rule(separator, delimiter):
    rng = random.Random(7)
    alphabet = ["a", "é", "東", " ", ",", "\t", ";", '"', "'", "\r", "\n", "x y"]
    header = [f"c{i}" for i in range(5)]
    formatter = RowFormatter("s", header, {}, separator=separator, text_delimiter=delimiter)
    for _ in range(2000):
        texts = ["".join(rng.choices(alphabet, k=rng.randint(0, 4))) for _ in header]
        line = formatter.format(dict(zip(header, texts, strict=True)))
        assert line == reference_line(texts, separator, delimiter)
        reader = csv.reader(io.StringIO(line, newline=""), delimiter=separator, quotechar=delimiter)
        assert next(reader) == texts


# --- formats -------------------------------------------------------------------------------

PARIS = ZoneInfo("Europe/Paris")


def formatted(spec: str, value: object, zone: ZoneInfo | None = None) -> str:
    """The CSV text one formatted column gets for ``value``."""
    convert = parse_format(spec, zone or ZoneInfo("UTC"))
    formatter = RowFormatter(
        "s", ["X"], {}, separator=",", text_delimiter='"', formats={"X": convert}
    )
    return formatter.format({"X": value}).removesuffix("\n")


@pytest.mark.parametrize(
    ("spec", "value", "text"),
    [
        ("date", datetime(2024, 1, 15, 0, 0, tzinfo=timezone.utc), "2024-01-15"),
        ("date", datetime(2024, 1, 14, 23, 30), "2024-01-14"),  # no offset: UTC
        ("date", date(2024, 1, 15), "2024-01-15"),
        ("date", "2024-01-15T00:00:00+00:00", "2024-01-15"),
        ("date", "2024-01-15T08:00:00Z", "2024-01-15"),
        ("date", "soon", "soon"),
        ("date", None, ""),
        ("date:%d/%m/%Y", datetime(2024, 3, 5, 12, tzinfo=timezone.utc), "05/03/2024"),
        ("date:%b %y", date(2024, 3, 5), "Mar 24"),
        ("boolean:TRUE/FALSE", True, "TRUE"),
        ("boolean:1/0", False, "0"),
        ("Boolean:Yes/No", "true", "Yes"),
        ("boolean:Yes/No", "maybe", "maybe"),
        ("number:2", Decimal("2.345"), "2.34"),
        ("number:2", Decimal("2.355"), "2.36"),
        ("number:2", Decimal("0.125"), "0.12"),
        ("number:2", Decimal("1E+5"), "100000.00"),
        ("number:0", 3, "3"),
        ("number:3", 1.5, "1.500"),
        ("number:2", True, "true"),
        ("number:2", "n/a", "n/a"),
    ],
)
def test_a_format_writes_a_column_the_way_its_import_expects(spec, value, text):
    assert formatted(spec, value) == text


def test_date_takes_the_date_in_the_time_zone():
    late = datetime(2024, 1, 14, 23, 30, tzinfo=timezone.utc)
    assert formatted("date", late) == "2024-01-14"
    assert formatted("date", late, PARIS) == "2024-01-15"


@pytest.mark.parametrize("spec", ["dat", "boolean:TRUE", "boolean:/F", "number:two", "number:", ""])
def test_unknown_formats_are_refused(spec):
    with pytest.raises(ValueError, match="is not a format"):
        parse_format(spec)


def test_only_formatted_columns_change():
    formatter = RowFormatter(
        "s",
        ["A", "B"],
        {},
        separator=",",
        text_delimiter='"',
        formats={"B": parse_format("boolean:Y/N")},
    )
    assert formatter.format({"A": True, "B": True}) == "true,Y\n"
