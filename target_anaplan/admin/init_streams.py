"""``init``: a ready ``streams`` block for the chosen imports, from the model's own layouts
and, with a tap's catalog, its fields.

The proposals follow a few rules, documented in docs/admin.md so nothing is magic:

- a stream is the catalog's stream whose name (its last part: ``products`` of
  ``public-products``) matches the import's file without its extension or the object the
  import loads, ignoring case and punctuation, else the nearest such name; without a match
  or a catalog, it is named after the file;
- each header column reads the field of the same name, else the field of the same name
  ignoring case and punctuation, else (a list import's ``Code``) the stream's one key
  field, else the nearest field name; ``TODO`` where nothing matched;
- ``formats: date`` for a date-time field (Anaplan has no date-time type: such a value
  lands in a date), unless the column's name says it holds a time (``time``, ``stamp``);
- a stream with key properties gets ``mode: upsert`` and its ``key``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from target_anaplan.admin.listing import file_import
from target_anaplan.admin.tap_catalog import TapStream
from target_anaplan.anaplan.catalog import Catalog, import_target
from target_anaplan.anaplan.models import LIST_IMPORT, DataSourceTarget
from target_anaplan.csv_writer import near_names, normalized_name
from target_anaplan.errors import ConfigError

TODO = "TODO"
_TIME_WORDS = ("time", "stamp")
_CODE_COLUMN = "code"


@dataclass
class Proposal:
    """The ``streams`` block, and what the person should look at before using it."""

    streams: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def propose_streams(
    catalog: Catalog, imports: Sequence[str], tap: Mapping[str, TapStream] | None
) -> Proposal:
    """One stream per file among ``imports`` (imports reading the same file share it)."""
    proposal = Proposal()
    files: dict[str, str] = {}  # file id -> stream
    for name in imports:
        source = file_import(catalog, name)
        action = source.actions[0].name
        stream = files.get(source.file_id)
        if stream is not None:
            proposal.streams[stream]["imports"].append(action)
            continue
        tap_stream = _matching_stream(source, action, tap or {})
        stream = tap_stream.name if tap_stream else _file_stem(source.file_name)
        if stream in proposal.streams:
            raise ConfigError(
                f"Imports of two files both make stream {stream!r}; run init for them one at "
                "a time, or rename one stream in the output."
            )
        files[source.file_id] = stream
        entry: dict[str, Any] = {"file": source.file_name, "imports": [action]}
        if tap_stream is None:
            proposal.notes.append(_unmatched_note(stream, tap))
        else:
            entry.update(_fields_entry(stream, source, tap_stream, proposal.notes))
        proposal.streams[stream] = entry
    return proposal


def _matching_stream(
    source: DataSourceTarget, action: str, tap: Mapping[str, TapStream]
) -> TapStream | None:
    """The tap stream named like the import's file or target, exactly or nearly."""
    wanted = [_file_stem(source.file_name), import_target(action)]
    by_name = {normalized_name(_last_part(name)): name for name in tap}
    for name in wanted:
        if normalized_name(name) in by_name:
            return tap[by_name[normalized_name(name)]]
    for name in wanted:
        near = near_names(name, [_last_part(n) for n in tap])
        if near:
            return tap[by_name[normalized_name(near[0])]]
    return None


def _last_part(stream: str) -> str:
    """``products`` of ``public-products`` (how database taps name a schema's tables)."""
    return re.split(r"[-.]", stream)[-1]


def _file_stem(file_name: str) -> str:
    return file_name.rsplit(".", 1)[0]


def _unmatched_note(stream: str, tap: Mapping[str, TapStream] | None) -> str:
    if tap is None:
        return (
            f"{stream}: no --catalog given, so no columns are proposed (each column reads the "
            "field of its own name); rename the stream to the tap's stream name."
        )
    return (
        f"{stream}: no stream of the catalog matches; named after its file. Known streams: "
        f"{', '.join(tap) or 'none'}."
    )


def _fields_entry(
    stream: str, source: DataSourceTarget, tap_stream: TapStream, notes: list[str]
) -> dict[str, Any]:
    """``columns``, ``formats``, ``mode`` and ``key`` for a stream with known fields."""
    header = source.layout.header_names
    columns = _match_columns(header, list(tap_stream.properties), tap_stream.key, source)
    todo = [column for column, found in columns.items() if found == TODO]
    if todo:
        notes.append(f"{stream}: no field matched {', '.join(map(repr, todo))}; replace the TODOs.")
    entry: dict[str, Any] = {}
    if tap_stream.key:
        entry.update(mode="upsert", key=list(tap_stream.key))
    entry["columns"] = columns
    formats = {
        column: "date"
        for column, found in columns.items()
        if _is_datetime(tap_stream.properties.get(found, {}))
        and not any(word in normalized_name(column) for word in _TIME_WORDS)
    }
    if formats:
        entry["formats"] = formats
    return entry


def _match_columns(
    header: Sequence[str], fields: list[str], key: Sequence[str], source: DataSourceTarget
) -> dict[str, str]:
    """Header column -> the field proposed to feed it (``TODO``: none), by the rules above."""
    found: dict[str, str] = {}
    for column in header:
        same = [f for f in fields if normalized_name(f) == normalized_name(column)]
        if column in fields:
            found[column] = column
        elif same:
            found[column] = same[0]
    unused = [f for f in fields if f not in found.values()]
    for column in header:
        if column in found:
            continue
        if (
            LIST_IMPORT in source.import_types
            and normalized_name(column) == _CODE_COLUMN
            and len(key) == 1
            and key[0] in unused
        ):
            found[column] = key[0]
        else:
            near = near_names(column, unused)
            found[column] = near[0] if near else TODO
        if found[column] in unused:
            unused.remove(found[column])
    return {column: found[column] for column in header}


def _is_datetime(schema: Mapping[str, Any]) -> bool:
    if schema.get("format") == "date-time":
        return True
    return any(_is_datetime(option) for option in schema.get("anyOf") or ())


# Output


def as_json(streams: Mapping[str, Any]) -> str:
    """The block as a JSON config fragment."""
    return json.dumps({"streams": streams}, indent=2, ensure_ascii=False)


def as_yaml(streams: Mapping[str, Any], heading: str) -> str:
    """The block as YAML for a loader's ``config:`` in meltano.yml, after a comment."""
    lines = [f"# {line}" for line in heading.splitlines()]
    lines += ["streams:", *_yaml_lines(streams, 1)]
    return "\n".join(lines)


_PLAIN = re.compile(r"[A-Za-z_][\w .()/-]*")
# Words YAML 1.1 (PyYAML, and so many tools) reads as booleans or null.
_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}


def _yaml_lines(value: Mapping[str, Any], depth: int) -> list[str]:
    """Block YAML for mappings of text, lists of text and mappings (all the block holds)."""
    indent = "  " * depth
    lines = []
    for key, item in value.items():
        name = f"{indent}{_yaml_text(key)}:"
        if isinstance(item, str):
            lines.append(f"{name} {_yaml_text(item)}")
        elif not item:
            lines.append(f"{name} {'{}' if isinstance(item, Mapping) else '[]'}")
        elif isinstance(item, Mapping):
            lines += [name, *_yaml_lines(item, depth + 1)]
        else:
            lines += [name, *(f"{indent}- {_yaml_text(element)}" for element in item)]
    return lines


def _yaml_text(text: str) -> str:
    """Text as a plain YAML scalar when it reads back as the same text, else JSON-quoted
    (a JSON string is a valid YAML double-quoted scalar)."""
    plain = _PLAIN.fullmatch(text) and text == text.strip() and text.lower() not in _YAML_WORDS
    return text if plain else json.dumps(text, ensure_ascii=False)
