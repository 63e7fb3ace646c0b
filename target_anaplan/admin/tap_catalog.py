"""A tap's Singer catalog (``meltano invoke tap-x --discover > catalog.json``): each
stream's fields and key, as the target will see them in the stream's SCHEMA message."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from target_anaplan.admin.config import read_json
from target_anaplan.errors import ConfigError


@dataclass(frozen=True)
class TapStream:
    """One stream of the catalog: its name in Singer messages, its fields, its key."""

    name: str
    properties: Mapping[str, Mapping[str, Any]]  # in schema order
    key: tuple[str, ...]


def read_tap_catalog(path: str) -> dict[str, TapStream]:
    """Stream name -> stream, for every stream of the catalog file at ``path``.

    A stream is named by its ``tap_stream_id`` (what SDK and most other taps put in their
    messages), else its ``stream``. Fields the catalog's metadata marks unsupported or
    deselected are left out: the tap does not send them.
    """
    catalog = read_json("--catalog", path)
    entries = catalog.get("streams") if isinstance(catalog, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(
            f"--catalog {path} is not a Singer catalog (no `streams` list). Write one with "
            "`meltano invoke <tap> --discover > catalog.json` or `<tap> --discover`."
        )
    streams = [_stream(entry, path) for entry in entries]
    return {stream.name: stream for stream in streams}


def _stream(entry: Any, path: str) -> TapStream:
    found = entry if isinstance(entry, dict) else {}
    name = found.get("tap_stream_id") or found.get("stream")
    schema = found.get("schema")
    if not isinstance(name, str) or not isinstance(schema, dict):
        raise ConfigError(
            f"--catalog {path}: every stream needs a `tap_stream_id` (or `stream`) and a "
            f"`schema`; one has neither: {json.dumps(entry)[:200]}."
        )
    metadata = {
        tuple(item.get("breadcrumb") or ()): item.get("metadata") or {}
        for item in found.get("metadata") or ()
        if isinstance(item, dict)
    }
    left_out = {
        crumb[1]
        for crumb, meta in metadata.items()
        if len(crumb) == 2
        and crumb[0] == "properties"
        and (meta.get("selected") is False or meta.get("inclusion") == "unsupported")
    }
    properties = {
        field: spec
        for field, spec in (schema.get("properties") or {}).items()
        if field not in left_out
    }
    key = found.get("key_properties") or metadata.get((), {}).get("table-key-properties") or ()
    return TapStream(name, properties, tuple(str(k) for k in key))
