"""The import engine: reads an uploaded file the way the import's data source says and loads
its rows into an in-memory list or module, producing Anaplan's task result and failure dump.

This is what makes the simulator worth testing against: wrong separators, encodings, header
layouts or value formats fail here the same way they would on a real model.

It also has to keep up with the target on files of millions of rows, in time linear in the
rows and with one copy of the file in memory (the uploaded chunks). So the file is decoded
and split by the csv module as a stream, a few hundred records at a time; each batch is
checked and converted column by column in C where every row is clean, and row by row (the
reference path, which says what fails and why) otherwise, then shown to the cyclic garbage
collector while it is young (see `_Load.stage`). Loading happens in two phases:
every batch is first staged, and only a file that decoded and whose header matched is then
applied, so a bad file still changes nothing.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import functools
import gc
import io
import itertools
import operator
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

from target_anaplan.simulator.scenario import LIST_FIELDS, ImportDef, ModelDef, SourceDef
from target_anaplan.simulator.state import (
    MISSING,
    ROW_ID,
    ROW_NAME,
    ROW_PARENT,
    ROW_PROPERTIES,
    ListData,
    SimState,
)

BATCH_ROWS = 500  # records checked and converted together: enough for C loops, fits in cache
READ_BYTES = 1 << 17  # decoded at a time: few calls, and the text stays in cache for csv
NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TRUE_WORDS = ("true", "yes", "1")
FALSE_WORDS = ("false", "no", "0")
# Exactly as written, the common case: no spaces, lower case.
_BOOLEAN_WORDS = {**dict.fromkeys(TRUE_WORDS, True), **dict.fromkeys(FALSE_WORDS, False)}
# A plain decimal with a dot, below 2**53 in its integer part: float() reads it as NUMBER does.
_PLAIN_DECIMAL = re.compile(r"-?\d{1,15}\.\d{1,15}").fullmatch
# Cells made only of these characters are numbers exactly when float() reads them.
_NUMBER_CHARACTERS = b"-.0123456789"
_EXACT_INTEGERS = 2**53
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
    counts = _Counts()
    load = (_ListLoad if imp.target_kind == "list" else _ModuleLoad)(state, model, imp)
    try:
        problem = _stage_file(chunks, source, load, counts, reject_rows)
    except (UnicodeDecodeError, LookupError) as exc:
        error = _decode_error(chunks, source, exc)
        message = f"The file is not valid {source.text_encoding} text: {error}"
        return failed_outcome(imp.id, "importFailedGeneralError", message)
    if problem:
        return failed_outcome(imp.id, "importFailedGeneralError", problem)
    load.commit(counts)
    return _outcome(imp, counts)


def _decode_error(chunks: list[bytes], source: SourceDef, exc: Exception) -> Exception:
    """The error decoding the whole file raises (positions count from its start)."""
    try:
        b"".join(chunks).decode(source.text_encoding)
    except (UnicodeDecodeError, LookupError) as whole:
        return whole
    return exc


# -- reading --------------------------------------------------------------------------------


@dataclass
class _Batch:
    """Consecutive records and the line numbers they span (`end`: the last line read)."""

    rows: list[list[str]]
    first: int
    end: int

    def lines(self) -> list[int]:
        """Each record's starting line; a record spans one line more per line break in it."""
        if self.end - self.first + 1 == len(self.rows):
            return list(range(self.first, self.end + 1))
        lines, line = [], self.first
        for fields in self.rows:
            lines.append(line)
            line += 1 + sum(f.count("\n") + f.count("\r") - f.count("\r\n") for f in fields)
        return lines


class _ChunkStream:
    """The uploaded chunks as the binary stream a TextIOWrapper reads, without joining them.

    Not an io.RawIOBase under a BufferedReader: the wrapper asks its stream whether it is
    closed before each line, and a Python IOBase answers through a search of its classes,
    longer than reading the line. Here it is a class attribute; and each piece is copied
    out of its chunk once, not into a buffer and out again.
    """

    closed = False

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = iter(chunks)
        self._current = memoryview(b"")

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def read1(self, size: int) -> bytes:
        """Up to `size` bytes from the current chunk; b"" at the end."""
        while not self._current:
            chunk = next(self._chunks, None)
            if chunk is None:
                return b""
            self._current = memoryview(chunk)
        piece = self._current[:size].tobytes()
        self._current = self._current[size:]
        return piece

    def flush(self) -> None:
        """Nothing to write (the wrapper flushes its stream when it is closed)."""

    def close(self) -> None:
        """Nothing to release: the chunks belong to the file."""


def _batches(chunks: list[bytes], source: SourceDef) -> Iterator[_Batch]:
    """The file's records, split with the source's separator and delimiter, in batches."""
    sep, quote = source.column_separator, source.text_delimiter
    if len(sep) != 1:
        text = b"".join(chunks).decode(source.text_encoding)
        records = [line.split(sep) if sep else [line] for line in text.splitlines()]
        for start in range(0, len(records), BATCH_ROWS):
            rows = records[start : start + BATCH_ROWS]
            yield _Batch(rows, start + 1, start + len(rows))
        return
    stream = io.TextIOWrapper(
        cast("io.BufferedReader", _ChunkStream(chunks)),  # all the wrapper uses of one
        encoding=source.text_encoding,
        newline="",
    )
    # Decode 128 KiB at a time: the default 8 KiB costs a call every few lines, and 1 MiB of
    # text no longer stays in cache while csv reads its lines.
    stream._CHUNK_SIZE = READ_BYTES  # type: ignore[attr-defined]  # CPython's private decode size; typeshed omits it
    if quote:
        reader = csv.reader(stream, delimiter=sep, quotechar=quote)
    else:
        reader = csv.reader(stream, delimiter=sep, quoting=csv.QUOTE_NONE)
    first = 1
    while rows := list(itertools.islice(reader, BATCH_ROWS)):
        yield _Batch(rows, first, reader.line_num)
        first = reader.line_num + 1


def _stage_file(
    chunks: list[bytes], source: SourceDef, load: _Load, counts: _Counts, reject_rows: int
) -> str | None:
    """Stage every data row; why the file cannot be imported at all, or None."""
    header_row, first_data_row = source.header_row, source.first_data_row
    head_lines = max(header_row, first_data_row - 1)  # lines that may be the header or skipped
    header_seen = header_row <= 0
    for batch in _batches(chunks, source):
        if batch.first > head_lines:
            load.stage(batch.rows, batch.lines, counts, reject_rows)
            continue
        data: list[tuple[list[str], int]] = []
        for fields, line in zip(batch.rows, batch.lines(), strict=True):
            if line == header_row:
                mismatch = header_mismatch(fields, source)
                if mismatch:
                    return mismatch
                header_seen = True
            elif line >= first_data_row:
                data.append((fields, line))
        if data:
            rows, lines = (list(values) for values in zip(*data, strict=True))
            load.stage(rows, lines.copy, counts, reject_rows)
    if not header_seen:
        return header_mismatch(None, source)
    return None


def header_mismatch(found: list[str] | None, source: SourceDef) -> str | None:
    """Why the file's header row (None: the file has no such line) differs from headerNames
    (names and order), or None."""
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


# -- values ---------------------------------------------------------------------------------


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
            return int(value) if value.is_integer() and abs(value) < _EXACT_INTEGERS else value

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


# A column's cells -> their values, each exactly what the cell parser gives; None when a
# cell is malformed (the rows then take the reference path, which says which and why).
_ColumnParser = Callable[[tuple[str, ...]], "list[Any] | tuple[Any, ...] | None"]


def _column_parser(kind: str, decimal_separator: str) -> _ColumnParser:
    """The whole-column form of `_parser(kind, decimal_separator)`, for one import's column."""
    parse = _parser(kind, decimal_separator)
    if kind == "text":
        return _Remembered(_text_column)
    if kind == "number" and decimal_separator == ".":
        return _Remembered(functools.partial(_number_column, parse))
    return _Remembered(functools.partial(_parsed_column, parse))


class _Remembered:
    """A column's values by their text, while the column has few distinct values (a
    category, a quantity, a date, a flag): one dict look-up a cell instead of a conversion,
    and equal values share one object, so a million rows hold a few strings, not a million
    (most of the memory, and time, a big list import takes)."""

    DISTINCT_LIMIT = 4096

    def __init__(self, convert: _ColumnParser) -> None:
        self.convert = convert
        self.seen: dict[str, Any] | None = {}

    def __call__(self, column: tuple[str, ...]) -> list[Any] | tuple[Any, ...] | None:
        seen = self.seen
        if seen is None:
            return self.convert(column)
        with contextlib.suppress(KeyError):  # a value not seen yet
            return _look_up(seen, column)
        new = tuple(set(column).difference(seen))
        if len(seen) + len(new) > self.DISTINCT_LIMIT:
            self.seen = None  # many distinct values: convert each cell
            return self.convert(column)
        converted = self.convert(new)
        if converted is None:
            return None
        seen.update(zip(new, converted, strict=True))
        return _look_up(seen, column)


def _look_up(table: dict[str, Any], keys: tuple[str, ...]) -> tuple[Any, ...]:
    """`table[key]` for each key (KeyError for a missing one), in one call rather than the
    call a key that `map` makes."""
    if len(keys) < 2:  # an itemgetter of one key gives the value itself, of none fails
        return tuple(map(table.__getitem__, keys))
    return cast("tuple[Any, ...]", operator.itemgetter(*keys)(table))


def _text_column(column: tuple[str, ...]) -> tuple[str, ...]:
    return column


def _parsed_column(parse: Callable[[str], Any], column: tuple[str, ...]) -> list[Any] | None:
    try:
        return list(map(parse, column))
    except RowError:
        return None


def _number_column(parse: Callable[[str], Any], column: tuple[str, ...]) -> list[Any] | None:
    """Plain integers and decimals converted in C, as `parse` converts them: a value is an
    int when it is integral and exact as a float (below 2**53), else a float."""
    joined = "".join(column)
    if "" in column or not joined.isascii():
        return _parsed_column(parse, column)
    raw = joined.encode()  # bytes answer isdigit from a table, str from the Unicode database
    if raw.isdigit() and max(map(len, column)) < 16:
        return list(map(int, column))
    if raw.translate(None, _NUMBER_CHARACTERS):
        return _parsed_column(parse, column)
    try:
        values: list[Any] = list(map(float, column))
    except ValueError:  # "-", "1.2.3", ...: malformed
        return None
    integral = list(map(float.is_integer, values))
    if not any(integral):  # the common case for decimals: no int to make
        return values
    if all(integral) and min(values) > -_EXACT_INTEGERS and max(values) < _EXACT_INTEGERS:
        return list(map(int, values))
    for at in itertools.compress(range(len(values)), integral):
        if -_EXACT_INTEGERS < values[at] < _EXACT_INTEGERS:
            values[at] = int(values[at])
    return values


# (target name, position of the cell in the row, column name, parser)
_CellParser = tuple[str, int, str, Callable[[str], Any]]


def _cells(parsers: list[_CellParser], row: list[str]) -> dict[str, Any]:
    """Typed cells by target name; a malformed one raises RowError naming its column."""
    try:
        return {target: parse(row[at]) for target, at, _, parse in parsers}
    except RowError:
        for _, at, column, parse in parsers:  # slow path: find the column that failed
            try:
                parse(row[at])
            except RowError as err:
                raise RowError(err.kind, f"{err} in column {column!r}") from None
        raise


# -- loading --------------------------------------------------------------------------------


class _Load:
    """Stages the rows of one import into its list or module, then applies them."""

    def __init__(self, imp: ImportDef) -> None:
        self.imp = imp
        self.width = len(imp.source.header_names)
        # Row positions by column name (a repeated name: its last position, as Anaplan
        # reads it).
        self.position = {column: index for index, column in enumerate(imp.source.header_names)}

    def stage(
        self,
        rows: list[list[str]],
        lines: Callable[[], list[int]],
        counts: _Counts,
        reject_rows: int,
    ) -> None:
        """Stage a batch of data rows: all at once when every row is clean, else one by one
        (blank rows are ignored; a failing row is counted and dumped).

        A clean batch's `rows` are emptied once staged, for the collector: the task runner
        pauses it during an import, and each staged row is a new tuple it tracks, so a
        million would be walked, cold, by the first collection after the import (a sixth of
        its time) and by each full one after that. Looked at now, young and in cache, a
        tuple of plain values (str, int, float, bool) is untracked for good, and what the
        batch did not keep is already gone.
        """
        clean = counts.rejected >= reject_rows and set(map(len, rows)) == {self.width}
        if clean and self.stage_clean(rows):
            rows.clear()
            gc.collect(0)
            self.admit()
            return
        for fields, line in zip(rows, lines(), strict=True):
            if not "".join(fields).strip():  # every field blank
                counts.ignored += 1
                continue
            try:
                if len(fields) != self.width:
                    raise RowError(
                        "columnSeparatorExpected",
                        f"Expected {self.width} columns, found {len(fields)}",
                    )
                if counts.rejected < reject_rows:
                    counts.rejected += 1
                    raise RowError("rowRejected", "Row rejected (simulated fault)")
                self.stage_row(fields)
            except RowError as err:
                counts.failed += 1
                counts.errors.setdefault(err.kind, []).append(str(err))
                counts.dump_rows.append(_dump_row(fields, self.width, line, str(err)))

    def stage_clean(self, rows: list[list[str]]) -> bool:
        """Stage full-width rows column by column if none fails; False to go row by row."""
        raise NotImplementedError

    def stage_row(self, fields: list[str]) -> None:
        """Stage one full-width row; RowError if it cannot be loaded."""
        raise NotImplementedError

    def admit(self) -> None:
        """Finish staging the clean batch `stage_clean` took, now that the collector has seen
        its rows (nothing to do unless a subclass holds them back)."""

    def commit(self, counts: _Counts) -> None:
        """Apply what was staged, in file order, counting created and updated rows."""
        raise NotImplementedError


def _hash_keeping_dict() -> dict[str, Any]:
    """An empty dict that keeps each key's hash in its own table, for a million new items.

    CPython 3.11+ lays out a dict of str keys without their hashes (each str has its own):
    a probe that meets another key then reads that key's object to compare hashes, one
    more cache miss per probe once the dict outgrows the caches (adding a million items
    took a third longer). A dict that has held a key of another type keeps the hashes
    beside the keys for good, for 8 more bytes an item.
    """
    table: dict[Any, Any] = {None: None}
    del table[None]
    return table


class _ListLoad(_Load):
    """Rows into list items: keyed by code (else name); a later row updates an item."""

    def __init__(self, state: SimState, model: ModelDef, imp: ImportDef) -> None:
        super().__init__(imp)
        self.items: ListData = state.lists[(model.id, imp.target)]
        definition = model.lists[imp.target]
        kinds = definition.properties
        dec = imp.source.decimal_separator
        position = self.position
        # Target field -> the column feeding it (the last such column).
        feeds = {imp.mapping[column]: column for column in position if column in imp.mapping}
        self.code_at, self.name_at, self.parent_at = (
            position[feeds[field]] if field in feeds else None for field in LIST_FIELDS
        )
        self.parent_column = feeds.get("parent", "")
        self.parents = (
            state.lists[(model.id, definition.parent)] if definition.parent is not None else None
        )
        properties = [
            (name, position[column], column, _parser(kinds[name], dec))
            for name, column in feeds.items()
            if name in kinds
        ]
        # Text cells are taken as they are, without a parser call per cell.
        self.texts = [(name, at) for name, at, _, parse in properties if parse is _text_value]
        self.typed = [cell for cell in properties if cell[3] is not _text_value]
        self.columns = [
            (name, at, _column_parser(kinds[name], dec)) for name, at, _, _ in properties
        ]
        self.next_id = self.items.next_id
        # Rows up to the first that may update an item: new items, by key, in file order.
        self.new_items: dict[str, tuple[Any, ...]] = _hash_keeping_dict()
        # The rows from there on, in batches: item keys, rows (id None: the key was in the
        # list or is a new item already), names as given.
        self.staged: list[tuple[list[str], list[tuple[Any, ...]], list[str]]] = []
        # The clean batch stage_clean took last, until admit: keys, rows, names as given.
        self.pending: tuple[list[str], list[tuple[Any, ...]], list[str]] = ([], [], [])

    def _add_new(self, keys: list[str], rows: list[tuple[Any, ...]]) -> bool:
        """Add the rows to the new items if each creates one (its key is not in the list,
        nor twice, and no row before them updates an item); else change nothing, say so."""
        if self.staged or not self.items.rows.keys().isdisjoint(keys):
            return False
        kept = list(map(self.new_items.setdefault, keys, rows))  # one look-up a key, in C
        if all(map(operator.is_, kept, rows)):
            return True
        for key, row, was in zip(keys, rows, kept, strict=True):
            if was is row:  # added by this call: take it back out
                del self.new_items[key]
        return False

    def _id(self, key: str) -> int | None:
        if key in self.items.rows or key in self.new_items:
            return None
        self.next_id += 1
        return self.next_id - 1

    def stage_clean(self, rows: list[list[str]]) -> bool:
        columns = list(zip(*rows, strict=True))
        blank = itertools.repeat("")
        codes = list(map(str.strip, columns[self.code_at])) if self.code_at is not None else None
        names = list(map(str.strip, columns[self.name_at])) if self.name_at is not None else None
        if codes is not None and all(codes):
            keys = codes
        elif codes is None and names is not None and all(names):
            keys = names
        else:
            return False  # a row without a code, or blank: row by row
        values = {}
        for name, at, parse in self.columns:
            parsed = parse(columns[at])
            if parsed is None:
                return False
            values[name] = parsed
        parents: Any = blank
        if self.parent_at is not None:
            parents = list(map(str.strip, columns[self.parent_at]))
            if self.parents is not None and not self.parents.lookup().keys() >= set(parents) - {""}:
                return False
        if names is None:
            shown: Any = keys
        elif all(names):
            shown = names
        else:
            shown = [name or code for name, code in zip(names, keys, strict=True)]
        properties = [values.get(p, itertools.repeat(MISSING)) for p in self.items.properties]
        ids = range(self.next_id, self.next_id + len(keys))  # if every row creates an item
        staged = list(zip(ids, codes or blank, shown, parents, *properties, strict=False))
        self.pending = (keys, staged, names or [""] * len(keys))
        return True

    def admit(self) -> None:
        """The batch's rows join the new items if each creates one, else the staged batches.

        Only now, once the collector has untracked the rows: a dict into which none but
        untracked values went is not tracked either, and then the collection after the
        import does not walk the million items of a new list.
        """
        keys, staged, names = self.pending
        if self._add_new(keys, staged):
            self.next_id += len(keys)
        else:
            staged = [(self._id(key), *row[1:]) for key, row in zip(keys, staged, strict=True)]
            self.staged.append((keys, staged, names))

    def stage_row(self, fields: list[str]) -> None:
        code = fields[self.code_at].strip() if self.code_at is not None else ""
        name = fields[self.name_at].strip() if self.name_at is not None else ""
        if not code and not name:
            raise RowError(
                "hierarchyImportInvalidName", "Invalid name: the row has no code or name"
            )
        props = {prop: fields[at] for prop, at in self.texts}
        props.update(_cells(self.typed, fields))
        parent = fields[self.parent_at].strip() if self.parent_at is not None else ""
        if parent and self.parents is not None and parent not in self.parents.lookup():
            raise RowError(
                "hierarchyImportInvalidParent",
                f"Invalid parent {parent!r} in column {self.parent_column!r}: "
                f"not an item of list {self.parents.definition.name!r}",
            )
        key = code or name
        row = (self._id(key), code, name or code, parent,
               *(props.get(p, MISSING) for p in self.items.properties))  # fmt: skip
        if not self._add_new([key], [row]):
            self.staged.append(([key], [row], [name]))

    def commit(self, counts: _Counts) -> None:
        items = self.items
        items.extend(self.new_items)
        counts.created += len(self.new_items)
        for keys, rows, names in self.staged:
            fresh = rows[0][ROW_ID] is not None and items.rows.keys().isdisjoint(keys)
            if fresh and len(set(keys)) == len(keys):
                items.extend(dict(zip(keys, rows, strict=True)))
                counts.created += len(rows)
                continue
            for key, row, name in zip(keys, rows, names, strict=True):
                old = items.rows.get(key)
                if old is not None:
                    items.put(key, self._merged(old, row, name))
                    counts.updated += 1
                else:
                    items.put(key, row if row[ROW_ID] is not None else (self._id(key), *row[1:]))
                    counts.created += 1
        items.next_id = self.next_id

    def _merged(self, old: tuple[Any, ...], new: tuple[Any, ...], name: str) -> tuple[Any, ...]:
        """An existing item updated by a row: its name if given, its parent if mapped, and
        the properties the import maps."""
        merged = list(old)
        if name:
            merged[ROW_NAME] = name
        if self.parent_at is not None:
            merged[ROW_PARENT] = new[ROW_PARENT]
        for at in range(ROW_PROPERTIES, len(old)):
            if new[at] is not MISSING:
                merged[at] = new[at]
        return tuple(merged)


class _ModuleLoad(_Load):
    """Rows into module cells, keyed by one item of each dimension (by its code or name)."""

    def __init__(self, state: SimState, model: ModelDef, imp: ImportDef) -> None:
        super().__init__(imp)
        module = model.modules[imp.target]
        self.dimensions = module.dimensions
        self.cells = state.modules[(model.id, module.name)]
        self.lookups = {dim: state.lists[(model.id, dim)].lookup() for dim in module.dimensions}
        dec = imp.source.decimal_separator
        # Each distinct column, in header order, with the position it is read from.
        self.reads = [
            (column, self.position[column], imp.mapping.get(column, ""))  # "": unmapped
            for column in dict.fromkeys(imp.source.header_names)
        ]
        self.parsers = {
            column: _parser(module.line_items[target], dec)
            for column, _, target in self.reads
            if target in module.line_items
        }
        self.column_parsers = {
            column: _column_parser(module.line_items[target], dec)
            for column, _, target in self.reads
            if target in module.line_items
        }
        self.staged: list[tuple[list[tuple[str, ...]], list[dict[str, Any]]]] = []

    def stage_clean(self, rows: list[list[str]]) -> bool:
        columns = list(zip(*rows, strict=True))
        dims: dict[str, list[str]] = {}
        values: dict[str, Any] = {}
        for column, at, target in self.reads:
            if target in self.lookups:
                given = list(map(str.strip, columns[at]))
                found = list(map(self.lookups[target].get, given))
                if "" in given or None in found or "" in found:
                    return False  # a blank row, or an unknown item: row by row
                dims[target] = cast("list[str]", found)
            elif column in self.column_parsers:
                parsed = self.column_parsers[column](columns[at])
                if parsed is None:
                    return False
                values[target] = parsed  # a later column feeding it wins
        keys = list(zip(*(dims[d] for d in self.dimensions), strict=True))
        names = list(values)
        rows_values = zip(*values.values(), strict=True)
        cells = list(map(dict, map(zip, itertools.repeat(names), rows_values)))
        if not names:
            cells = [{} for _ in keys]
        self.staged.append((keys, cells))
        return True

    def _item(self, dimension: str, column: str, raw: str) -> str:
        key = self.lookups[dimension].get(raw.strip())
        if key:
            return key
        raise RowError(
            "moduleImportInvalidListIdentifier",
            f"Item {raw!r} in column {column!r} is not in list {dimension!r}",
        )

    def stage_row(self, fields: list[str]) -> None:
        dims: dict[str, str] = {}
        line_items: dict[str, Any] = {}
        for column, at, target in self.reads:
            if target in self.lookups:
                dims[target] = self._item(target, column, fields[at])
            elif column in self.parsers:
                line_items.update(_cells([(target, at, column, self.parsers[column])], fields))
        key = tuple(dims[d] for d in self.dimensions)
        self.staged.append(([key], [line_items]))

    def commit(self, counts: _Counts) -> None:
        cells = self.cells
        for keys, values in self.staged:
            if cells.keys().isdisjoint(keys) and len(set(keys)) == len(keys):
                cells.update(zip(keys, values, strict=True))
                counts.created += len(keys)
                continue
            for key, row in zip(keys, values, strict=True):
                if key in cells:
                    cells[key].update(row)
                    counts.updated += 1
                else:
                    cells[key] = row
                    counts.created += 1


# -- the result -----------------------------------------------------------------------------


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
