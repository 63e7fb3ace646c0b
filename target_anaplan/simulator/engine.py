"""The import engine: reads an uploaded file the way the import's data source says and loads
its rows into an in-memory list or module, producing Anaplan's task result and failure dump.

This is what makes the simulator worth testing against: wrong separators, encodings, header
layouts or value formats fail here the same way they would on a real model.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from target_anaplan.simulator.scenario import LIST_FIELDS, ImportDef, ModelDef, SourceDef
from target_anaplan.simulator.state import ListItem, SimState

NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TRUE_WORDS = ("true", "yes", "1")
FALSE_WORDS = ("false", "no", "0")
# Exactly as written, the common case: no spaces, lower case.
_BOOLEAN_WORDS = {**dict.fromkeys(TRUE_WORDS, True), **dict.fromkeys(FALSE_WORDS, False)}
# A plain decimal with a dot, below 2**53 in its integer part: float() reads it as NUMBER does.
_PLAIN_DECIMAL = re.compile(r"-?\d{1,15}\.\d{1,15}").fullmatch
ERROR_TYPES = {
    "number": "moduleImportNumberFormat",
    "date": "dateFormatInvalid",
    "boolean": "moduleImportBooleanFormat",
}


class RowError(Exception):
    """One row cannot be loaded; `kind` is the Anaplan detail type it is counted under."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class ImportOutcome:
    """A finished import: the task `result` object and the failure dump, if any."""

    result: dict[str, Any]
    dump: bytes | None = None


@dataclass
class _Counts:
    created: int = 0
    updated: int = 0
    failed: int = 0
    ignored: int = 0
    rejected: int = 0
    errors: dict[str, list[str]] = field(default_factory=dict)
    dump_rows: list[list[str]] = field(default_factory=list)

    @property
    def success(self) -> int:
        return self.created + self.updated


def failed_outcome(object_id: str, kind: str, message: str) -> ImportOutcome:
    """A task that completed with `successful: false` and nothing applied."""
    detail = {"type": kind, "localMessageText": message, "occurrences": 0, "values": []}
    return ImportOutcome(
        {
            "successful": False,
            "failureDumpAvailable": False,
            "objectId": object_id,
            "details": [detail],
        }
    )


def run_import(
    state: SimState,
    model: ModelDef,
    imp: ImportDef,
    chunks: list[bytes] | None,
    reject_rows: int = 0,
) -> ImportOutcome:
    """Parse the file, check the header, load the good rows, and report like Anaplan.

    Fields longer than 128 KiB need the csv limit a started Simulator raises (tweaks.py).
    """
    source = imp.source
    if chunks is None:
        message = f"No content has been uploaded to file {imp.file_id} by this user."
        return failed_outcome(imp.id, "uploadedFileNoLongerAvailable", message)
    try:
        text = b"".join(chunks).decode(source.text_encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        message = f"The file is not valid {source.text_encoding} text: {exc}"
        return failed_outcome(imp.id, "importFailedGeneralError", message)
    records = parse_records(text, source)
    mismatch = header_mismatch(records, source)
    if mismatch:
        return failed_outcome(imp.id, "importFailedGeneralError", mismatch)
    apply_row = (
        _list_applier(state, model, imp)
        if imp.target_kind == "list"
        else (_module_applier(state, model, imp))
    )
    counts = _Counts()
    width = len(source.header_names)
    first_data_row, header_row = source.first_data_row, source.header_row
    for line, fields in records:
        if line < first_data_row or line == header_row:
            continue
        if not "".join(fields).strip():  # every field blank
            counts.ignored += 1
            continue
        try:
            if len(fields) != width:
                raise RowError(
                    "columnSeparatorExpected", f"Expected {width} columns, found {len(fields)}"
                )
            if counts.rejected < reject_rows:
                counts.rejected += 1
                raise RowError("rowRejected", "Row rejected (simulated fault)")
            created = apply_row(fields)
        except RowError as err:
            counts.failed += 1
            counts.errors.setdefault(err.kind, []).append(str(err))
            counts.dump_rows.append(_dump_row(fields, len(source.header_names), line, str(err)))
            continue
        if created:
            counts.created += 1
        else:
            counts.updated += 1
    return _outcome(imp, counts)


def parse_records(text: str, source: SourceDef) -> list[tuple[int, list[str]]]:
    """Split text into (starting line number, fields) with the source's separator/delimiter."""
    sep, quote = source.column_separator, source.text_delimiter
    if len(sep) != 1:
        lines = text.splitlines()
        return [(n, line.split(sep) if sep else [line]) for n, line in enumerate(lines, 1)]
    if quote:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, quotechar=quote)
    else:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, quoting=csv.QUOTE_NONE)
    records, line = [], 1
    for fields in reader:
        records.append((line, fields))
        line = reader.line_num + 1
    return records


def header_mismatch(records: list[tuple[int, list[str]]], source: SourceDef) -> str | None:
    """Why the file's header row differs from headerNames (names and order), or None."""
    if source.header_row <= 0:
        return None
    found = next((f for n, f in records if n == source.header_row), None)
    expected = list(source.header_names)
    if found == expected:
        return None
    if found is None:
        return f"Header row {source.header_row} is missing; expected columns {expected}."
    for index, (want, got) in enumerate(zip(expected, found, strict=False), 1):
        if want != got:
            where = f"column {index}: expected {want!r}, found {got!r}"
            break
    else:
        where = f"expected {len(expected)} columns, found {len(found)}"
    return (
        f"Header row {source.header_row} does not match the import's columns ({where}): "
        f"expected {expected}, found {found}."
    )


def parse_value(kind: str, raw: str, decimal_separator: str) -> Any:
    """Convert one cell to its typed value; raises RowError for a malformed one."""
    return _parser(kind, decimal_separator)(raw)


def _parser(kind: str, decimal_separator: str) -> Callable[[str], Any]:
    """The cell parser of one value type, chosen once per import rather than per cell."""
    if kind == "text":
        return _text_value
    if kind == "number":
        foreign = "." if decimal_separator != "." else None  # a dot is wrong after a comma
        plain = _PLAIN_DECIMAL if decimal_separator == "." else None

        def number(raw: str) -> Any:
            if raw.isdigit() and raw.isascii() and len(raw) < 16:  # fast path: below 2**53
                return int(raw)
            if plain is not None and raw.isascii() and plain(raw):  # fast path: 12.50
                value = float(raw)
                return int(value) if value.is_integer() else value
            text = raw.strip()
            if text == "":
                return None
            normal = text.replace(decimal_separator, ".")
            if (foreign and foreign in text) or not NUMBER.match(normal):
                raise RowError(ERROR_TYPES[kind], f"Invalid number: {raw!r}")
            value = float(normal)
            return int(value) if value.is_integer() and abs(value) < 2**53 else value

        return number
    if kind == "date":
        return _date_value
    return _boolean_value


def _text_value(raw: str) -> str:
    return raw


@functools.lru_cache(maxsize=4096)  # a file holds few distinct dates
def _date_value(raw: str) -> str | None:
    text = raw.strip()
    if text == "":
        return None
    try:
        if not DATE.match(text):
            raise ValueError(text)
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise RowError(ERROR_TYPES["date"], f"Invalid date (YYYY-MM-DD): {raw!r}") from None


def _boolean_value(raw: str) -> bool | None:
    exact = _BOOLEAN_WORDS.get(raw)
    if exact is not None:
        return exact
    text = raw.strip()
    if text == "":
        return None
    if text.lower() in TRUE_WORDS:
        return True
    if text.lower() in FALSE_WORDS:
        return False
    raise RowError(ERROR_TYPES["boolean"], f"Invalid boolean: {raw!r}")


# (target name, key of the cell in the row, column name, parser)
_CellParser = tuple[str, Any, str, Callable[[str], Any]]


def _cells(parsers: list[_CellParser], row: Any) -> dict[str, Any]:
    """Typed cells by target name; a malformed one raises RowError naming its column."""
    try:
        return {target: parse(row[key]) for target, key, _, parse in parsers}
    except RowError:
        for _, key, column, parse in parsers:  # slow path: find the column that failed
            try:
                parse(row[key])
            except RowError as err:
                raise RowError(err.kind, f"{err} in column {column!r}") from None
        raise


def _list_applier(state: SimState, model: ModelDef, imp: ImportDef) -> Callable[[list[str]], bool]:
    items = state.lists[(model.id, imp.target)]
    kinds = model.lists[imp.target].properties
    dec = imp.source.decimal_separator
    # Row positions by column name (a repeated name: its last position, as Anaplan reads it).
    position = {column: index for index, column in enumerate(imp.source.header_names)}
    # Target field -> the column feeding it (the last such column).
    feeds = {imp.mapping[column]: column for column in position if column in imp.mapping}
    code_at, name_at, parent_at = (
        position[feeds[field]] if field in feeds else None for field in LIST_FIELDS
    )
    properties = [
        (name, position[column], column, _parser(kinds[name], dec))
        for name, column in feeds.items()
        if name in kinds
    ]
    # Text cells are taken as they are, without a parser call per cell.
    texts = [(name, at) for name, at, _, parse in properties if parse is _text_value]
    typed = [cell for cell in properties if cell[3] is not _text_value]

    def apply(fields: list[str]) -> bool:
        code = fields[code_at].strip() if code_at is not None else ""
        name = fields[name_at].strip() if name_at is not None else ""
        if not code and not name:
            raise RowError(
                "hierarchyImportInvalidName", "Invalid name: the row has no code or name"
            )
        props = {prop: fields[at] for prop, at in texts}
        props.update(_cells(typed, fields))
        item = items.get(code or name)
        created = item is None
        if item is None:  # the new item takes the parsed cells as they are, without a copy
            item = items[code or name] = ListItem(code=code, name=name or code, properties=props)
        else:
            item.name = name or item.name
            item.properties.update(props)
        if parent_at is not None:
            item.parent = fields[parent_at].strip()
        return created

    return apply


def _module_applier(
    state: SimState, model: ModelDef, imp: ImportDef
) -> Callable[[list[str]], bool]:
    module = model.modules[imp.target]
    cells = state.modules[(model.id, module.name)]
    dec = imp.source.decimal_separator

    index = {dim: _item_index(state, model.id, dim) for dim in module.dimensions}
    parsers = {
        column: [(target, column, column, _parser(module.line_items[target], dec))]
        for column, target in imp.mapping.items()
        if target in module.line_items
    }

    def item_code(dimension: str, column: str, raw: str) -> str:
        key = index[dimension].get(raw.strip())
        if key:
            return key
        raise RowError(
            "moduleImportInvalidListIdentifier",
            f"Item {raw!r} in column {column!r} is not in list {dimension!r}",
        )

    def apply(fields: list[str]) -> bool:
        values = dict(zip(imp.source.header_names, fields, strict=True))
        dims: dict[str, str] = {}
        line_items: dict[str, Any] = {}
        for column, raw in values.items():
            target = imp.mapping.get(column)
            if target in module.dimensions:
                dims[target] = item_code(target, column, raw)
            elif target in module.line_items:
                line_items.update(_cells(parsers[column], values))
        key = tuple(dims[d] for d in module.dimensions)
        created = key not in cells
        cells.setdefault(key, {}).update(line_items)
        return created

    return apply


def _item_index(state: SimState, model_id: str, list_name: str) -> dict[str, str]:
    """Item key by code and by name (a module row may name its items either way)."""
    index: dict[str, str] = {}
    for key, item in reversed(state.lists[(model_id, list_name)].items()):
        index[item.name] = key
    for key, item in state.lists[(model_id, list_name)].items():
        if item.code:
            index[item.code] = key
    return index


def _dump_row(fields: list[str], width: int, line: int, message: str) -> list[str]:
    cells = (list(fields) + [""] * width)[:width]
    return ["E", *cells, str(line), message]


def _quote_all(fields: list[str]) -> str:
    return ",".join('"' + f.replace('"', '""') + '"' for f in fields)


def _outcome(imp: ImportDef, counts: _Counts) -> ImportOutcome:
    total = counts.success + counts.failed + counts.ignored
    is_list = imp.target_kind == "list"
    base = "hierarchyRowsProcessed" if is_list else "lineItemRowsProcessed"
    kind = f"{base}WithFailures" if counts.failed else base
    values = [
        "hierarchyName" if is_list else "moduleName", imp.target,
        "successRowCount", str(counts.success),
        "successCreateCount", str(counts.created),
        "successUpdateCount", str(counts.updated),
        "warningsRowCount", "0",
        "failedCount", str(counts.failed),
        "ignoredCount", str(counts.ignored),
        "totalRowCount", str(total),
        "totalCreateCount", str(counts.created),
        "totalUpdateCount", str(counts.updated),
        "invalidCount", str(counts.failed),
        "createdCount", str(counts.created),
        "updatedCount", str(counts.updated),
    ]  # fmt: skip
    message = (
        f"{imp.target}: {counts.success} ({counts.created}/{counts.updated}) rows successful, "
        f"{counts.failed} failed, {counts.ignored} ignored"
    )
    details = [{"type": kind, "localMessageText": message, "occurrences": 0, "values": values}]
    for error_type, messages in counts.errors.items():
        details.append(
            {"type": error_type, "localMessageText": messages[0],
             "occurrences": len(messages), "values": []}
        )  # fmt: skip
    dump = None
    if counts.dump_rows:
        header = ["_Status_", *imp.source.header_names, "_Line_", "_Error_1_"]
        lines = [_quote_all(header)] + [_quote_all(r) for r in counts.dump_rows]
        dump = ("\n".join(lines) + "\n").encode("utf-8")
    result = {
        "successful": True,
        "failureDumpAvailable": dump is not None,
        "objectId": imp.id,
        "details": details,
    }
    return ImportOutcome(result, dump)
