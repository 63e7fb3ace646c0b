"""The recorded SCHEMA fixtures (tests/fixtures/schemas/) are complete and say where they came from.

Each file holds one tap family's SCHEMA message, records its schema accepts and records it must
reject (with the field and keyword), and a note naming the tap, version, source and how the
fixture was made. Numbers are read as Decimal, as the target reads them.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

SCHEMAS = Path(__file__).parents[1] / "fixtures" / "schemas"
FIXTURES = sorted(SCHEMAS.glob("*.json"))
# How a fixture was made: a recorded run of the tap, the tap's own code called on hand-written
# input, or read from the source by hand.
ORIGINS = {"run", "tap-code", "source"}
NOTE_FIELDS = {"tap", "version", "repository", "source_files", "origin", "how", "dialect"}
REQUIRED_FAMILIES = {
    "meltanolabs-tap-postgres",
    "pipelinewise-tap-postgres",
    "pipelinewise-tap-mysql",
    "meltanolabs-tap-github",
}


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)


def test_every_required_tap_family_has_a_fixture() -> None:
    assert {path.stem for path in FIXTURES} >= REQUIRED_FAMILIES


@pytest.mark.parametrize("path", FIXTURES, ids=lambda path: path.stem)
def test_fixture_note_says_where_it_came_from(path: Path) -> None:
    note = load(path)["note"]

    assert set(note) >= NOTE_FIELDS, f"note lacks {NOTE_FIELDS - set(note)}"
    assert note["origin"] in ORIGINS
    assert note["repository"].startswith("https://github.com/")
    assert note["source_files"]
    assert all(
        isinstance(note[name], str) and note[name] for name in NOTE_FIELDS - {"source_files"}
    )


@pytest.mark.parametrize("path", FIXTURES, ids=lambda path: path.stem)
def test_fixture_schema_message_is_a_singer_schema_message(path: Path) -> None:
    message = load(path)["schema_message"]

    assert message["type"] == "SCHEMA"
    assert isinstance(message["stream"], str) and message["stream"]
    properties = message["schema"]["properties"]
    assert isinstance(properties, dict) and properties
    assert set(message["key_properties"]) <= set(properties)
    assert set(message.get("bookmark_properties") or []) <= set(properties)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda path: path.stem)
def test_fixture_example_messages_belong_to_the_stream(path: Path) -> None:
    fixture = load(path)
    stream = fixture["schema_message"]["stream"]

    for message in fixture.get("example_messages", []):
        assert message["type"] in {"RECORD", "STATE", "ACTIVATE_VERSION"}
        if message["type"] != "STATE":
            assert message["stream"] == stream


@pytest.mark.parametrize("path", FIXTURES, ids=lambda path: path.stem)
def test_fixture_has_valid_and_invalid_records_naming_the_failing_field(path: Path) -> None:
    fixture = load(path)
    properties = fixture["schema_message"]["schema"]["properties"]

    assert fixture["valid_records"]
    assert all(isinstance(record, dict) and record for record in fixture["valid_records"])
    assert fixture["invalid_records"]
    for case in fixture["invalid_records"]:
        assert isinstance(case["record"], dict)
        assert case["keyword"] and case["reason"]
        top_level_field = case["field"].split(".")[0].split("[")[0]
        if case["keyword"] == "additionalProperties":
            assert top_level_field in case["record"]
            assert top_level_field not in properties
        else:
            assert top_level_field in properties
