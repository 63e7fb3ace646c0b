"""Running `target-anaplan-admin` in process, and the tap catalogs its tests feed it."""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from target_anaplan.admin.cli import main
from target_anaplan.admin.terminal import Terminal

# The Products list's columns, as a tap with snake_case names would send them.
PRODUCT_FIELDS = {
    "sku": {"type": "string"},
    "name": {"type": ["null", "string"]},
    "category": {"type": ["null", "string"]},
    "price_usd": {"type": ["null", "number"]},
    "launched_at": {"type": ["null", "string"], "format": "date-time"},
    "is_active": {"type": ["null", "boolean"]},
}
SALE_FIELDS = {
    "Product": {"type": "string"},
    "Region": {"type": "string"},
    "Units": {"type": ["null", "integer"]},
    "Revenue": {"type": ["null", "number"]},
    "Note": {"type": ["null", "string"]},
}


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)


def admin(*argv: str, stdin: str = "", **terminal: Any) -> Result:
    """Run the command in this process; stdout and stderr captured."""
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), Terminal(io.StringIO(stdin), out, err, **terminal))
    return Result(code, out.getvalue(), err.getvalue())


def write_json(path: Path, value: Any) -> str:
    path.write_text(json.dumps(value), encoding="utf-8")
    return str(path)


def tap_stream(name: str, properties: dict, key: list[str] | None = None, **extra: Any) -> dict:
    """One stream of a Singer catalog, as `--discover` prints it."""
    schema = {"type": "object", "properties": properties}
    return {
        "tap_stream_id": name,
        "stream": name.rsplit("-", 1)[-1],
        "schema": schema,
        "key_properties": key or [],
        "metadata": [],
        **extra,
    }


def catalog_file(path: Path, *streams: dict) -> str:
    return write_json(path, {"streams": list(streams)})


def table(result: Result) -> list[dict[str, str]]:
    """The rows of a printed table, keyed by its header (cells cut at the header's columns)."""
    header, *rows = result.out.splitlines()
    starts = [m.start() for m in re.finditer(r"\S+", header)]
    bounds = list(zip(starts, [*starts[1:], None], strict=True))
    return [
        {name: row[a:b].strip() for name, (a, b) in zip(header.split(), bounds, strict=True)}
        for row in rows
    ]
