"""`reset`: the change store forgets a stream's data source, so its next run sends every row
again (Hightouch's "resync full query")."""

from __future__ import annotations

import pytest

from tests.kit.adminkit import admin, table, write_json
from tests.kit.singer import lines, record, schema, state
from tests.kit.targetkit import (
    PRODUCTS,
    SALES,
    core_config,
    last_upload_codes,
    run_in_process,
    uploads,
)

PRODUCTS_FILE = "113000000000"
FIELDS = {name: {"type": ["null", "string"]} for name in ("Code", "Name", "Category", "Price",
                                                          "Launched", "Active")}  # fmt: skip


def full_table(*codes: str) -> str:
    rows = [{"Code": c, "Name": f"Product {c}", "Category": "Tools"} for c in codes]
    return lines(
        schema("products", FIELDS, ["Code"]),
        *(record("products", r) for r in rows),
        state({"bookmarks": {}}),
    )


@pytest.fixture(params=["default store", "change_store"])
def config(request, sim, tmp_path) -> dict:
    store = {"change_store": f"sqlite:///{tmp_path / 'changes.sqlite'}"}
    settings = store if request.param == "change_store" else {}
    streams = {"products": {**PRODUCTS, "mode": "upsert"}, "sales": SALES}
    return core_config(sim, streams, **settings)


def test_after_a_reset_the_next_upsert_run_sends_every_row_again(sim, config, tmp_path):
    path = write_json(tmp_path / "c.json", config)
    run_in_process(config, full_table("P1", "P2", "P3"))
    run_in_process(config, full_table("P1", "P2", "P3"))
    assert uploads(sim, PRODUCTS_FILE) == 1  # the unchanged second run sent nothing

    reset = admin("reset", "products", "--config", path)
    assert reset.code == 0, reset.err
    assert table(reset) == [
        {"stream": "products", "file": "products.csv", "model": "Core Model", "forgotten": "3"}
    ]
    assert reset.err == (
        "Their next run sends every row it receives (the tap's own state is unchanged).\n"
    )

    run_in_process(config, full_table("P1", "P2", "P3"))
    assert uploads(sim, PRODUCTS_FILE) == 2
    assert last_upload_codes(sim, PRODUCTS_FILE) == ["P1", "P2", "P3"]


def test_reset_all_as_json_and_a_second_reset_forgets_nothing(sim, config, tmp_path):
    path = write_json(tmp_path / "c.json", config)
    run_in_process(config, full_table("P1", "P2"))
    first = admin("reset", "--all", "--config", path, "--json")
    again = admin("reset", "--all", "--config", path, "--json")
    assert first.json == [
        {"stream": "products", "file": "products.csv", "model": "Core Model", "forgotten": 2},
        {"stream": "sales", "file": "sales.csv", "model": "Core Model", "forgotten": 0},
    ]
    assert [row["forgotten"] for row in again.json] == [0, 0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "error: Name the streams to reset, or give --all for every configured one.\n"),
        (("orders",), "error: Not in `streams`: 'orders'. Configured streams: 'products', "
                      "'sales'.\n"),
    ],
)  # fmt: skip
def test_reset_names_configured_streams(config, tmp_path, args, message):
    reset = admin("reset", *args, "--config", write_json(tmp_path / "c.json", config))
    assert (reset.code, reset.out, reset.err) == (1, "", message)
