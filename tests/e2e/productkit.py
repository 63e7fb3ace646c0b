"""What the products table's rows look like once loaded, shared by every tap's e2e tests."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

import stack

Row = tuple[Any, ...]


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
    return {item["code"]: item for item in sim.list_items("Products")}


def codes_in_last_upload(file: dict[str, Any]) -> list[str]:
    """Codes of the rows in the file's current content, i.e. its most recent upload."""
    (content,) = file["content"].values()
    return [row["Code"] for row in csv.DictReader(io.StringIO(content))]
