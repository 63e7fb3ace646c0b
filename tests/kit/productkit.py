"""What the products table's rows look like once loaded, shared by every tap's e2e tests."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from demo import stack

Row = tuple[Any, ...]

SCHEMA_FIXTURES = Path(__file__).parents[1] / "fixtures" / "schemas"

# The rows stack.add_second_round inserts or changes: what a second run sends in upsert mode.
SECOND_ROUND_ROWS = [*stack.NEW_PRODUCTS, stack.CHANGED_PRODUCT]
SECOND_ROUND_CODES = sorted(row[0] for row in SECOND_ROUND_ROWS)


def expected_item(row: Row) -> dict[str, Any]:
    """How a products row looks as a Products list item after the import."""
    code, name, category, price, launched, active = row
    return {
        "code": code,
        "name": name,
        "parent": "",
        "properties": {
            "Category": category or "",
            "Price": None if price is None else float(Decimal(price)),
            "Launched": launched,
            "Active": active,
        },
    }


def expected_items(rows: list[Row]) -> dict[str, dict[str, Any]]:
    """Products list items by code for these rows."""
    return {row[0]: expected_item(row) for row in rows}


def items_by_code(sim: stack.SimulatorProcess) -> dict[str, dict[str, Any]]:
    """The example model's Products list, item by code."""
    return {item["code"]: item for item in sim.list_items(stack.MODEL_ID, "Products")}


def decode_messages(output: str) -> list[dict[str, Any]]:
    """Singer messages, one JSON object a line, numbers as Decimal (as the tap wrote them)."""
    return [json.loads(line, parse_float=Decimal) for line in output.splitlines() if line.strip()]


def assert_matches_recorded_fixture(output: str, fixture_name: str) -> list[dict[str, Any]]:
    """The tap's SCHEMA, seed RECORDs and RECORD message shape are what the fixture in
    tests/fixtures/schemas/ recorded; returns the decoded messages."""
    fixture = json.loads(
        (SCHEMA_FIXTURES / f"{fixture_name}.json").read_text(encoding="utf-8"),
        parse_float=Decimal,
    )
    emitted = decode_messages(output)
    assert emitted[0] == fixture["schema_message"]
    record_messages = [m for m in emitted if m["type"] == "RECORD"]
    assert len(record_messages) == len(stack.SEED_PRODUCTS)
    recorded = fixture["valid_records"][: len(record_messages)]
    assert [m["record"] for m in record_messages] == recorded
    (example,) = [m for m in fixture["example_messages"] if m["type"] == "RECORD"]
    assert all(m.keys() == example.keys() for m in record_messages)
    return emitted
