"""Where the admin commands read and write: results on stdout (a table, or JSON), the
rest on stderr, so ``target-anaplan-admin list files --json | jq`` sees only results."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

EMPTY_CELL = "-"
# Separators and delimiters that would vanish in a table cell.
_VISIBLE = {"\t": "tab", " ": "space", "\n": "newline", "\r\n": "CRLF"}


@dataclass
class Terminal:
    """Where a command reads and writes, and how it waits (replaceable in tests)."""

    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    sleep: Callable[[float], None] = time.sleep

    def say(self, text: str) -> None:
        """A prompt, note or error for the person (stderr, so stdout stays parseable)."""
        print(text, file=self.stderr, flush=True)

    def result(self, text: str) -> None:
        """What the command produced (stdout)."""
        print(text, file=self.stdout, flush=True)

    def show(
        self, rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *, as_json: bool
    ) -> None:
        """Rows as an aligned table of ``columns``, or as a JSON list of objects."""
        self.result(json_text(list(rows)) if as_json else table(rows, columns))

    def show_one(self, fields: Mapping[str, Any], *, as_json: bool) -> None:
        """One object as "name  value" lines, or as a JSON object."""
        self.result(json_text(dict(fields)) if as_json else record(fields))


def json_text(value: Any) -> str:
    """JSON as the commands print it: indented, keys in the order built, non-ASCII kept."""
    return json.dumps(value, indent=2, ensure_ascii=False)


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Aligned text: a header of ``columns``, then one line a row (lists joined by commas)."""
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [
        max([len(column), *(len(line[n]) for line in cells)]) for n, column in enumerate(columns)
    ]
    lines = [list(columns), *cells]
    return "\n".join(
        "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def record(fields: Mapping[str, Any]) -> str:
    """One object as "name  value" lines; a list takes a numbered line per item."""
    width = max(map(len, fields), default=0)
    lines = []
    for name, value in fields.items():
        if isinstance(value, list) and value:
            for number, item in enumerate(value, 1):
                label = name if number == 1 else ""
                lines.append(f"{label:<{width}}  {number}. {_cell(item)}")
        else:
            lines.append(f"{name:<{width}}  {_cell(value)}")
    return "\n".join(line.rstrip() for line in lines)


def _cell(value: Any) -> str:
    if value is None or value == "":
        return EMPTY_CELL
    if isinstance(value, (list, tuple)):
        return ", ".join(map(_cell, value)) or EMPTY_CELL
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _VISIBLE.get(value) or " ".join(value.split())
    return str(value)
