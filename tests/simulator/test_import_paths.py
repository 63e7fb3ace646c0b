"""The import's two paths agree on everything a client sees.

A batch of clean rows is staged column by column, in C; a batch with a row that fails (or a
blank one) goes row by row, the reference path. The same files imported once as usual and
once with every batch forced row by row must give the same task results, dumps, list items
and module cells; a spy checks the first run really took the column path.
"""

from __future__ import annotations

import json

import pytest

from target_anaplan.simulator import engine
from tests.kit.simkit import (
    MODEL_ID,
    PRODUCTS_FILE,
    PRODUCTS_HEADER,
    PRODUCTS_IMPORT,
    SALES_FILE,
    SALES_HEADER,
    SALES_IMPORT,
    Client,
)

PRODUCTS_LIST = "101000000000"

# Styles of value, a batch (500 rows) each, so that batches take each branch of the column
# converters: plain integers, decimals, integral decimals, digits too long for an int, a
# number too large to be exact, anything else (cell by cell), integers with blanks, and
# what float() reads but Anaplan does not.
PRICES = [
    ["1", "007", "42", "900000000000000", "0"],
    ["2.50", "100.00", "-0.0", "1.", "-12.75", "0.5", "3"],
    ["-3", "5.", "-0", "12", "-0.0"],
    ["1", "12345678901234567890", "42"],
    ["9007199254740993", "2.5"],
    ["1e3", " 4 ", ".5", "0.1234567890123456789", "", "+7"],
    ["7", "", "8"],
    ["1_000", "5"],
]
DATES = [["2024-01-02", "2024-02-29"], ["2024-03-04"], [" 2024-03-04 ", ""]]
FLAGS = [["true", "false", "1", "0"], ["yes", "no"], [" yes ", "TRUE", "", "No"]]
TEXTS = ["Tools", 'Say "hi"', "a, b", "two\r\nlines", "", " edge ", "Zoë", "東京"]


def pick(pools: list[list[str]], record: int) -> str:
    """A value for the file's `record`-th record (the header is record 0)."""
    pool = pools[record // 500 % len(pools)]
    return pool[record % len(pool)]


def quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def products(
    count: int, *, start: int = 0, codes: int = 10**6, prefix: str = "P", bad_at: int | None = None
) -> str:
    """Rows coded `prefix` + n modulo `codes`, so a small `codes` repeats items in the file."""
    rows = []
    for record, n in enumerate(range(start, start + count), 1):
        price = "x" if n == bad_at else pick(PRICES, record)
        name = quoted(f"{TEXTS[n % len(TEXTS)]} {n}")
        rows.append(f"{prefix}{n % codes},{name},{quoted(TEXTS[n % 3])},{price},"
                    f"{pick(DATES, record)},{pick(FLAGS, record)}\n")  # fmt: skip
    return PRODUCTS_HEADER + "".join(rows)


def sales(count: int, products: int = 650) -> str:
    """Rows for `products` products in four ways to name a region."""
    regions = ["EMEA", "Americas", " APAC ", "AMER"]
    rows = [
        f"P{n % products},{regions[n % 4]},{pick(PRICES, n + 1)},{n}.25,{quoted(TEXTS[n % 8])}\n"
        for n in range(count)
    ]
    return SALES_HEADER + "".join(rows)


UPLOADS = [
    (PRODUCTS_IMPORT, PRODUCTS_FILE, products(4000)),  # new items
    (PRODUCTS_IMPORT, PRODUCTS_FILE, products(1500, start=2000, codes=3300)),  # some new
    (SALES_IMPORT, SALES_FILE, sales(600, products=50)),  # new cells, twice a batch
    (SALES_IMPORT, SALES_FILE, sales(3000)),
    (SALES_IMPORT, SALES_FILE, sales(800)),  # updates
    (PRODUCTS_IMPORT, PRODUCTS_FILE, products(1200, start=50, codes=700, bad_at=1100)),
    (PRODUCTS_IMPORT, PRODUCTS_FILE, products(1000, codes=600, prefix="N")),  # new, twice
    (PRODUCTS_IMPORT, PRODUCTS_FILE, products(700, codes=300, prefix="M")),  # twice a batch
]


def seen_by_a_client(api: Client) -> list[str]:
    """After each import: its result and dump, the list (with item ids) and the module, as
    JSON (which tells 1 from 1.0 and from true)."""
    seen: list[str] = []
    for import_id, file_id, text in UPLOADS:
        api.upload(file_id, text, chunks=5)
        task = api.run(import_id)
        dump = api.get(f"@/imports/{import_id}/tasks/{task['taskId']}/dump")
        seen.append(json.dumps([
            task["result"],
            dump.text if dump.status_code == 200 else None,
            api.sim.list_items(MODEL_ID, "Products"),
            api.get(f"@/lists/{PRODUCTS_LIST}/items").json()["listItems"],
            api.sim.module_rows(MODEL_ID, "Sales"),
        ]))  # fmt: skip
    return seen


def test_column_path_and_row_path_load_the_same(sim_with, monkeypatch: pytest.MonkeyPatch) -> None:
    clean_batches = []
    list_stage, module_stage = engine._ListLoad.stage_clean, engine._ModuleLoad.stage_clean

    def spy(stage):
        def staged(self, rows):
            clean_batches.append(stage(self, rows))
            return clean_batches[-1]

        return staged

    monkeypatch.setattr(engine._ListLoad, "stage_clean", spy(list_stage))
    monkeypatch.setattr(engine._ModuleLoad, "stage_clean", spy(module_stage))
    by_columns = seen_by_a_client(Client(sim_with()))
    assert clean_batches.count(True) >= 8
    for load in (engine._ListLoad, engine._ModuleLoad):
        monkeypatch.setattr(load, "stage_clean", lambda self, rows: False)
    by_rows = seen_by_a_client(Client(sim_with()))
    for step, (columns, rows) in enumerate(zip(by_columns, by_rows, strict=True)):
        assert columns == rows, f"import {step} differs"
    _, _, _, _, _, (_, dump, items, _, cells), *_ = map(json.loads, by_rows)
    assert dump is not None
    assert len(items) == 4000 - 250  # the rows priced "1_000" failed
    assert len(cells) > 100
