"""Records to CSV lines in the layout an Anaplan import data source expects.

Columns are written in the data source's header order (``headerNames``), whatever order
the tap's schema uses; ``columns`` maps a header name to the record field feeding it
(unlisted: the field of the same name).

Values:

=============================  ==========================================================
record value                   CSV text
=============================  ==========================================================
null / missing field           empty
boolean                        ``true`` / ``false``
integer                        as is
decimal (every JSON float)     plain notation with the digits received, never through a
                               binary float: ``1E+5`` -> ``100000``, ``1.50`` -> ``1.50``
float (if one arrives)         shortest round-trip digits, plain notation
date                           ``YYYY-MM-DD``
date-time                      ISO 8601 with ``T`` and the offset,
                               ``2024-01-31T12:00:00+00:00``; no offset -> UTC (counted)
time                           ``HH:MM:SS[.ffffff]``
string                         as is (ISO dates in strings are left alone); NUL and control
                               characters other than tab, CR and LF are removed (counted)
object / array                 compact JSON text, UTF-8, decimals with their digits
=============================  ==========================================================

``formats`` (header name -> format) writes a column the way its import expects, applied
to the value before the table above (``parse_format``): ``date`` (a date-time becomes
its date in ``time_zone``), ``date:<strftime pattern>``, ``boolean:<true>/<false>`` and
``number:<decimal places>`` (rounded half-even, in decimal arithmetic).

Quoting, with a text delimiter (``"`` or ``'``): a field containing the separator, the
delimiter, CR or LF, or starting or ending with a space is enclosed in the delimiter, and
delimiters inside it are doubled. With no text delimiter, a field containing the
separator, CR or LF cannot be read back by Anaplan: ``UnwritableValueError``.
Lines end with ``\\n``. Everything changed is counted in ``RowFormatter.changes`` so the
caller can warn once per stream.
"""

from __future__ import annotations

import csv
import difflib
import math
import operator
import re
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import date, datetime, time, timezone, tzinfo
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from types import SimpleNamespace
from typing import Any, cast

import msgspec

from target_anaplan.errors import ConfigError, UnwritableValueError

CONTROL_CHARACTERS_REMOVED = "control characters removed"
NAIVE_DATETIMES_AS_UTC = "date-times without offset written as UTC"

_LINE_END = "\n"
_NONE = type(None)
_UTCOFFSET = operator.methodcaller("utcoffset")
_MICROSECOND = operator.attrgetter("microsecond")
_DIGITS = frozenset("0123456789")
# Joins a row's texts to judge how to write it: NUL never occurs in a text (it is removed
# as a control character and JSON escapes it), so it marks field edges unambiguously.
_EDGE = "\x00"
# C0 controls (but tab, LF, CR), DEL and C1 controls.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


class _Unwritable(Exception):  # noqa: N818 (internal signal, re-raised with context)
    """Raised by a quoter; ``format`` re-raises it naming the stream and field."""


def _json_fallback(value: Any) -> Any:
    """Types msgspec does not know: mappings as objects, sets as arrays, the rest as text."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (set, frozenset)):
        return list(value)
    return str(value)


_JSON = msgspec.json.Encoder(decimal_format="number", enc_hook=_json_fallback)


def _json_text(value: Any) -> str:
    return _JSON.encode(value).decode("utf-8")


class IsoColumn(list[Any]):
    """A column of date-like values parsed from ISO text, with that text (``texts``): the
    formatter writes the common layouts from the text instead of formatting each value
    again, which is several times faster for date-times. Otherwise a list of the values."""

    def __init__(self, values: list[Any], texts: Sequence[str | None]) -> None:
        super().__init__(values)
        self.texts = texts


def _offset_text(value: datetime) -> str:
    """How ``isoformat`` writes an aware date-time's offset (``+00:00``, ``-05:30``...)."""
    return value.isoformat()[len(value.replace(tzinfo=None).isoformat()) :]


def _decimal_text(value: Decimal) -> str:
    return format(value, "f")


def _float_text(value: float) -> str:
    return format(Decimal(repr(value)), "f") if math.isfinite(value) else repr(value)


def _empty_text(_: None) -> str:
    return ""


def _bool_text(value: bool) -> str:
    return "true" if value else "false"


def _quoter(separator: str, text_delimiter: str) -> Callable[[Sequence[str]], list[str]]:
    """The function that makes a row's field texts safe for this dialect (reference rule).

    Rows the C ``csv`` writer cannot do right (CR, edge spaces, no delimiter) and header
    lines go through it; it works on a whole row, one comprehension rather than one
    Python call per field.
    """
    if not separator or _EDGE in separator:
        raise ValueError(f"Unsupported column separator {separator!r}.")
    if len(text_delimiter) > 1:
        raise ValueError(f"Unsupported text delimiter {text_delimiter!r}: use one character.")
    if not text_delimiter:

        def unquoted(texts: Sequence[str]) -> list[str]:
            for text in texts:
                if separator in text:
                    raise _Unwritable(f"it contains the column separator {separator!r}")
                if "\n" in text or "\r" in text:
                    raise _Unwritable("it contains a line break")
            return list(texts)

        return unquoted

    q = text_delimiter
    qq = q * 2

    def quoted(texts: Sequence[str]) -> list[str]:
        return [
            q + t.replace(q, qq) + q
            if separator in t or q in t or "\n" in t or "\r" in t or t[:1] == " " or t[-1:] == " "
            else t
            for t in texts
        ]

    return quoted


# How a row must be written.
_PLAIN, _CSV_MODULE, _PYTHON = 0, 1, 2


def _row_classifier(separator: str, text_delimiter: str) -> Callable[[str], int]:
    """Which way a row must be written, judged once on its texts joined by ``_EDGE``.

    A plain row has no separator, delimiter, CR or LF in any field (and, with a
    delimiter, no field starting or ending with a space): it is written as joined.
    Otherwise the C ``csv`` writer quotes it, except for what that writer does not quote
    (CR with an LF line end, edge spaces) and the no-delimiter dialect: Python does those.
    Substring tests beat a regex here by a wide margin.
    """
    quote_edges = bool(text_delimiter)
    delimiter = text_delimiter or "\n"
    space_before, space_after = " " + _EDGE, _EDGE + " "
    special = _CSV_MODULE if text_delimiter and len(separator) == 1 else _PYTHON

    def classify(joined: str) -> int:
        if "\r" in joined or (
            quote_edges
            and (
                space_before in joined
                or space_after in joined
                or joined[:1] == " "
                or joined[-1:] == " "
            )
        ):
            return _PYTHON
        if separator in joined or delimiter in joined or "\n" in joined:
            return special
        return _PLAIN

    return classify


def _csv_module_row(separator: str, text_delimiter: str) -> Callable[[list[str]], str]:
    """A row written by the C ``csv`` writer (minimal quoting, doubled delimiters)."""
    lines: list[str] = []
    writer = csv.writer(
        SimpleNamespace(write=lines.append),
        delimiter=separator,
        quotechar=text_delimiter,
        doublequote=True,
        quoting=csv.QUOTE_MINIMAL,
        lineterminator=_LINE_END,
    )

    def row(texts: list[str]) -> str:
        writer.writerow(texts)
        return lines.pop()

    return row


def header_line(header: Sequence[str], separator: str, text_delimiter: str) -> str:
    """The header row in the data source's dialect, with its line end."""
    try:
        return separator.join(_quoter(separator, text_delimiter)(header)) + _LINE_END
    except _Unwritable as reason:
        raise UnwritableValueError(
            f"A header name of the data source cannot be written: {reason}. Give the data "
            "source a text delimiter in Anaplan."
        ) from None


def preamble(
    header: Sequence[str],
    *,
    separator: str,
    text_delimiter: str,
    header_row: int,
    first_data_row: int,
) -> str:
    """The lines before the first data row: the header on line ``header_row``, else blank.

    ``header_row == 0`` means no header; rows then start on ``first_data_row``.
    """
    lines = max(first_data_row - 1, header_row, 0)
    text = header_line(header, separator, text_delimiter) if header_row > 0 else ""
    return "".join(text if n == header_row else _LINE_END for n in range(1, lines + 1))


FORMATS_HELP = (
    "Use date, date:<strftime pattern> (e.g. date:%d/%m/%Y), boolean:<true>/<false> "
    "(e.g. boolean:TRUE/FALSE) or number:<decimal places> (e.g. number:2)."
)

ValueFormat = Callable[[Any], Any]


def parse_format(spec: str, time_zone: tzinfo = timezone.utc) -> ValueFormat:
    """The value conversion a ``formats`` entry names; ``ValueError`` if it names none."""
    kind, _, argument = spec.strip().partition(":")
    kind = kind.strip().lower()
    if kind == "date":
        return _date_format(argument or None, time_zone)
    if kind == "boolean":
        true, slash, false = argument.partition("/")
        if slash and true and false:
            return _boolean_format(true, false)
    if kind == "number" and argument.strip().isdigit():
        return _number_format(int(argument))
    raise ValueError(f"{spec!r} is not a format")


def _as_date(value: Any, time_zone: tzinfo) -> Any:
    """A date-time's date in ``time_zone`` (no offset: UTC); a date as is; ISO text parsed."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return value  # not a date: written as it is, for the import to judge
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            value = value.replace(tzinfo=timezone.utc)
        try:
            return value.astimezone(time_zone).date()
        except OverflowError:  # the first or last day a datetime holds: keep its own date
            return value.date()
    return value


def _date_format(pattern: str | None, time_zone: tzinfo) -> ValueFormat:
    def to_date(value: Any) -> Any:
        day = _as_date(value, time_zone)
        return day.strftime(pattern) if pattern and isinstance(day, date) else day

    return to_date


def _boolean_format(true: str, false: str) -> ValueFormat:
    texts = {True: true, False: false, "true": true, "false": false}

    def to_text(value: Any) -> Any:
        key = value.strip().lower() if isinstance(value, str) else value
        return texts.get(key, value) if isinstance(key, (bool, str)) else value

    return to_text


def _number_format(places: int) -> ValueFormat:
    step = Decimal(1).scaleb(-places)

    def rounded(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
            return value
        number = value if isinstance(value, Decimal) else Decimal(repr(value))
        if not number.is_finite():
            return value
        with localcontext() as context:
            context.prec = max(len(number.as_tuple().digits) + places + 2, 28)
            return number.quantize(step, rounding=ROUND_HALF_EVEN)

    return rounded


class RowFormatter:
    """Turns records of one stream into CSV lines in the data source's header order."""

    def __init__(
        self,
        stream: str,
        header: Sequence[str],
        columns: Mapping[str, str],
        *,
        separator: str,
        text_delimiter: str,
        formats: Mapping[str, ValueFormat] | None = None,
    ) -> None:
        self.stream = stream
        self.header = tuple(header)
        self.fields = tuple(columns.get(name, name) for name in self.header)
        # (column index, conversion) for the columns with a format.
        self._formats = [
            (index, convert)
            for index, name in enumerate(self.header)
            if (convert := (formats or {}).get(name)) is not None
        ]
        self.changes: Counter[str] = Counter()
        self._separator = separator
        self._text_delimiter = text_delimiter
        self._quote = _quoter(separator, text_delimiter)
        self._classify = _row_classifier(separator, text_delimiter)
        self._csv_module_row = (
            _csv_module_row(separator, text_delimiter)
            if text_delimiter and len(separator) == 1
            else None
        )
        self._converters, self._fallback = self._make_converters()
        # A date-time's offset as isoformat writes it, per offset met (see ``_iso_texts``).
        self._offset_texts: dict[Any, str] = {}

    def format(self, record: Mapping[str, Any]) -> str:
        """One CSV line, with its line end: the reference for ``format_columns``."""
        return self._format_values(
            self._formatted(record) if self._formats else list(map(record.get, self.fields))
        )

    def _format_values(self, values: Sequence[Any]) -> str:
        """The line of one row's values, in header order.

        Printable strings pass through untouched, other values go through a type-dispatch
        table, and the joined texts are checked once; only a row that needs quoting is
        written again, by the C ``csv`` writer where it can.
        """
        convert = self._converters.get
        fallback = self._fallback
        texts = [
            v if v.__class__ is str and v.isprintable() else convert(v.__class__, fallback)(v)
            for v in values
        ]
        joined = _EDGE.join(texts)
        how = self._classify(joined)
        if how == _PLAIN:
            return joined.replace(_EDGE, self._separator) + _LINE_END
        if how == _CSV_MODULE and self._csv_module_row is not None:
            return self._csv_module_row(texts)
        try:
            return self._separator.join(self._quote(texts)) + _LINE_END
        except _Unwritable:
            raise self._unwritable(texts) from None

    def format_columns(self, columns: Sequence[Sequence[Any]]) -> list[str]:
        """The lines of a batch given as columns (each column's values in header order),
        the same as ``format`` gives row by row, several times faster.

        Each column is converted at once by the converter its values' types call for (a
        column of printable strings is used as it is), and judged at once for quoting:
        only a column holding a value that needs quoting is quoted, value by value, by the
        reference rule. A batch that cannot be written (no text delimiter) is written row
        by row, so that the error names its field.
        """
        if self._formats:
            columns = list(columns)  # the other columns as they are (IsoColumns stay so)
            for index, convert in self._formats:
                columns[index] = list(map(convert, columns[index]))
        texts = [self._column_texts(column) for column in columns]
        try:
            texts = [
                self._quote(column) if self._classify(_EDGE.join(column)) != _PLAIN else column
                for column in texts
            ]
        except _Unwritable:  # the row-by-row path raises, naming the field
            return [self._format_values(values) for values in zip(*columns, strict=True)]
        if not texts:
            return []
        texts[-1] = [text + _LINE_END for text in texts[-1]]
        return list(map(self._separator.join, zip(*texts, strict=True)))

    def _column_texts(self, column: Sequence[Any]) -> list[str]:
        """One column's unquoted texts, converted by what its values' types call for."""
        kinds = set(map(type, column))
        nulls = _NONE in kinds
        kinds.discard(_NONE)
        if len(kinds) != 1:
            text = self.text
            return [text(value) for value in column] if kinds else [""] * len(column)
        (kind,) = kinds
        if column.__class__ is IsoColumn and kind in (datetime, date):
            return self._iso_texts(column)
        if kind is str:
            texts = [value or "" for value in column] if nulls else list(column)
            joined = "".join(texts)
            if joined.isprintable() or _CONTROL.search(joined) is None:
                return texts  # tabs and line ends are written (quoted), not cleaned
            clean = self._converters[str]
            return [t if t.isprintable() else clean(t) for t in texts]
        if kind is Decimal and not nulls:  # str() is format(, "f") but for exponents, and faster
            texts = list(map(str, column))
            return texts if "E" not in "".join(texts) else list(map(_decimal_text, column))
        convert = self._converters.get(kind)
        if convert is None:
            text = self.text
            return [text(value) for value in column]
        if nulls:
            return [convert(value) if value is not None else "" for value in column]
        return list(map(convert, column))

    def texts(self, column: Sequence[Any]) -> list[str]:
        """The unquoted CSV texts of a column's values (no column format), as ``text``."""
        return self._column_texts(column)

    def text(self, value: Any) -> str:
        """The unquoted CSV text of one value (no column format), as ``format`` writes it."""
        return self._converters.get(value.__class__, self._fallback)(value)

    def _formatted(self, record: Mapping[str, Any]) -> list[Any]:
        """The row's values, with each formatted column's value converted."""
        values = list(map(record.get, self.fields))
        for index, convert in self._formats:
            values[index] = convert(values[index])
        return values

    def locate(self, line: str, index: int) -> str:
        """Which field a character position of a formatted line belongs to (for messages)."""
        column = 0
        in_quotes = False
        delimiter = self._text_delimiter
        for char in line[:index]:
            if delimiter and char == delimiter:
                in_quotes = not in_quotes
            elif char == self._separator and not in_quotes:
                column += 1
        column = min(column, len(self.header) - 1)
        return f"field '{self.fields[column]}' (column '{self.header[column]}')"

    def _make_converters(
        self,
    ) -> tuple[dict[type, Callable[[Any], str]], Callable[[Any], str]]:
        """Value -> unquoted text: a table by exact type, and isinstance for the rest."""
        changes = self.changes
        control = _CONTROL.search
        remove_control = _CONTROL.sub

        def clean(text: str) -> str:
            if text.isprintable() or control(text) is None:
                return text
            changes[CONTROL_CHARACTERS_REMOVED] += 1
            return remove_control("", text)

        converters: dict[type, Callable[[Any], str]] = {
            str: clean,
            type(None): _empty_text,
            bool: _bool_text,
            int: int.__repr__,
            Decimal: _decimal_text,
            float: _float_text,
            datetime: self._datetime_text,
            date: date.isoformat,
            time: time.isoformat,
            dict: _json_text,
            list: _json_text,
        }

        def fallback(value: Any) -> str:
            """Subclasses and other types (rare): the first matching base decides."""
            for kind, to_text in converters.items():  # bool before int, datetime before date
                if isinstance(value, kind):
                    return to_text(value)
            if isinstance(value, (Mapping, tuple, set, frozenset)):
                return _json_text(value)
            return clean(str(value))

        return converters, fallback

    def _iso_texts(self, column: IsoColumn) -> list[str]:
        """A date-like column's texts, taken from the ISO text it was parsed from where its
        layout is the written one (``YYYY-MM-DD``, ``YYYY-MM-DD?HH:MM:SS...``): what
        ``isoformat`` would give, built from that text, the microseconds and the offset."""
        bulk = self._iso_layout_texts(column)
        if bulk is not None:
            return bulk
        texts: list[str] = []
        write = texts.append
        offsets = self._offset_texts
        for text, value in zip(column.texts, column, strict=True):
            if text is None or value is None:
                write("")
            elif len(text) == 10 and text[4] == "-" and text[7] == "-":
                write(text if value.__class__ is date else self.text(value))
            elif (
                value.__class__ is datetime
                and (offset := offsets.get(value.utcoffset())) is not None
                and len(text) >= 19
                and text[4] == text[7] == "-"
                and text[13] == text[16] == ":"
                and text[11:13] != "24"  # Python 3.14 reads 24:00 as the next day
            ):
                micro = value.microsecond
                body = f"{text[:10]}T{text[11:19]}"
                write(f"{body}.{micro:06d}{offset}" if micro else body + offset)
            else:
                write(self.text(value))
                if value.__class__ is datetime and value.utcoffset() is not None:
                    offsets[value.utcoffset()] = _offset_text(value)
        return texts

    def _iso_layout_texts(self, column: IsoColumn) -> list[str] | None:
        """``_iso_texts`` for a column whose texts all share one layout (no nulls, one length,
        one offset, ``T`` between date and time, the same number of fraction digits): checked
        once on the joined texts, then built by slicing. None when the column is not so."""
        if not column.texts or None in column.texts:
            return None
        texts = cast("Sequence[str]", column.texts)
        count = len(texts)
        sizes = set(map(len, texts))
        if len(sizes) != 1:
            return None
        (size,) = sizes
        joined = "".join(texts)
        if column[0].__class__ is date:
            dated = size == 10 and joined[4::10] == joined[7::10] == "-" * count
            return list(texts) if dated else None
        marks = ((4, "-"), (7, "-"), (10, "T"), (13, ":"), (16, ":"))
        if size < 20 or any(joined[at::size] != mark * count for at, mark in marks):
            return None
        offset = self._offset(column)
        hours = set(zip(joined[11::size], joined[12::size], strict=True))
        if offset is None or ("2", "4") in hours:
            return None  # naive or mixed offsets, or 24:00: value by value
        end = 19  # the fraction's end: digits after a "." at 19, the same number in each
        if joined[19::size] == "." * count:
            end = 20
            while end < size and texts[0][end].isdigit():
                end += 1
            if end == 20 or end > 26 or set(joined[end::size]) & _DIGITS:
                return None
        micros = list(map(_MICROSECOND, column))
        if end == 19:
            return None if any(micros) else [text[:19] + offset for text in texts]
        pad = "0" * (26 - end)
        return [
            text[:end] + pad + offset if micro else text[:19] + offset
            for text, micro in zip(texts, micros, strict=True)
        ]

    def _offset(self, column: IsoColumn) -> str | None:
        """The offset every date-time of the column has, as isoformat writes it; None when
        they differ or have none."""
        zones = set(map(_UTCOFFSET, column))  # by value: tzinfo objects may all differ
        if len(zones) != 1:
            return None
        zone = next(iter(zones))
        if zone is None:
            return None
        offset = self._offset_texts.get(zone)
        if offset is None:
            offset = self._offset_texts[zone] = _offset_text(column[0])
        return offset

    def _datetime_text(self, value: datetime) -> str:
        if value.utcoffset() is None:
            self.changes[NAIVE_DATETIMES_AS_UTC] += 1
            value = value.replace(tzinfo=timezone.utc)
        return value.isoformat()

    def _unwritable(self, texts: list[str]) -> UnwritableValueError:
        """Find the field that failed and explain it (slow path, errors only)."""
        for name, field, text in zip(self.header, self.fields, texts, strict=True):
            try:
                self._quote([text])
            except _Unwritable as reason:
                return UnwritableValueError(
                    f"Stream '{self.stream}', field '{field}' (column '{name}'): the value "
                    f"cannot be written because {reason} and the Anaplan data source has no "
                    "text delimiter. Set the data source's text delimiter to \" in Anaplan, "
                    "or remove the character before the target (for example with a stream map)."
                )
        raise AssertionError("no field was unwritable")


def normalized_name(name: str) -> str:
    """A name's letters and digits only, case-folded: "Sales Region" is "salesregion"."""
    return "".join(c for c in name.casefold() if c.isalnum())


def near_names(name: str, candidates: Collection[str]) -> list[str]:
    """Candidates that look like ``name``, ignoring case, spaces and punctuation."""
    by_form: dict[str, list[str]] = {}
    for candidate in candidates:
        by_form.setdefault(normalized_name(candidate), []).append(candidate)
    forms = difflib.get_close_matches(normalized_name(name), list(by_form), n=3, cutoff=0.6)
    return [candidate for form in forms for candidate in by_form[form]][:3]


def check_columns(
    stream: str,
    header: Sequence[str],
    columns: Mapping[str, str],
    properties: Collection[str],
    formats: Collection[str] = (),
) -> list[str]:
    """Check that every header column is fed by a schema property.

    Raises ConfigError naming the columns nothing feeds (with near matches), or
    ``columns`` or ``formats`` entries for headers the data source does not have. Returns
    the properties that feed no column, in schema order, for the caller to log once.
    """
    for key, names in (("columns", columns), ("formats", formats)):
        unknown = [name for name in names if name not in header]
        if unknown:
            setting = f"streams.{stream}.{key}"
            listed = "; ".join(_described(name, header, "header columns") for name in unknown)
            raise ConfigError(
                f"Stream '{stream}': `{setting}` names columns the Anaplan data source does "
                f"not have: {listed}. Its header is: {', '.join(header)}. Fix the keys of "
                f"`{setting}`."
            )
    setting = f"streams.{stream}.columns"
    fields = {name: columns.get(name, name) for name in header}
    missing = [name for name, field in fields.items() if field not in properties]
    if missing:
        listed = "; ".join(_described(fields[name], properties, "fields", name) for name in missing)
        example = ", ".join(
            f'"{name}": "{(near_names(fields[name], properties) or ["<field>"])[0]}"'
            for name in missing
        )
        raise ConfigError(
            f"Stream '{stream}': the Anaplan data source needs columns that no field of the "
            f"stream's schema feeds: {listed}. Map each column to a field with `{setting}`, "
            f"for example {{{example}}}, or add the fields to the stream."
        )
    fed = set(fields.values())
    return [prop for prop in properties if prop not in fed]


def _described(name: str, candidates: Collection[str], kind: str, column: str = "") -> str:
    """``'Name'`` plus what it was looked up as and its near matches, for messages."""
    text = f"'{column}' (read from field '{name}')" if column else f"'{name}'"
    near = near_names(name, candidates)
    if near:
        text += f", similar {kind}: " + ", ".join(f"'{n}'" for n in near)
    return text
