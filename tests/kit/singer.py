"""Singer messages as a tap writes them: one builder a message type, and the lines of input.

Every test that feeds the target well-formed messages builds them here; a test about raw or
malformed input writes its exact text itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def schema(stream: str, properties: dict, key: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "SCHEMA",
        "stream": stream,
        "schema": {"type": "object", "properties": properties},
        "key_properties": key or [],
    }


def record(stream: str, rec: dict, **extra: Any) -> dict[str, Any]:
    """A RECORD; `extra` adds message keys such as `version` or `time_extracted`."""
    return {"type": "RECORD", "stream": stream, "record": rec, **extra}


def state(value: dict) -> dict[str, Any]:
    return {"type": "STATE", "value": value}


def activate_version(stream: str, version: int) -> dict[str, Any]:
    return {"type": "ACTIVATE_VERSION", "stream": stream, "version": version}


def batch(stream: str, path: Path, *, fmt: str = "jsonl", compression: str = "gzip") -> dict:
    """A BATCH message naming one file of records."""
    return {
        "type": "BATCH",
        "stream": stream,
        "encoding": {"format": fmt, "compression": compression},
        "manifest": [path.as_uri()],
    }


def lines(*messages: dict) -> str:
    """The messages as the target reads them: one JSON object a line."""
    return "".join(json.dumps(m) + "\n" for m in messages)
