"""Change tracking: insert sends new keys only, upsert new and changed rows, deletes mirror
the source; the store moves only with a successful commit."""

from __future__ import annotations

import logging
import signal
import time

import pytest
from singer_sdk.singerlib.exceptions import InvalidInputLine

from target_anaplan.anaplan.errors import ActionFailedError
from target_anaplan.errors import ConfigError, DeleteGuardError
from tests.kit.simkit import cancel_import
from tests.kit.singer import activate_version, lines, record, schema, state
from tests.kit.targetkit import (
    CORE_MODEL,
    PRODUCT,
    PRODUCTS,
    REGION,
    REGIONS,
    SALES,
    USER,
    core_config,
    failing_run_in_process,
    last_upload_codes,
    list_items,
    module_rows,
    run_in_process,
    start_target,
    task_starts,
    uploads,
    write_config,
)

PRODUCTS_FILE, PRODUCTS_IMPORT, SALES_FILE = "113000000000", "112000000000", "113000000001"
FLAGS_IMPORT, DELETE_ACTION = "112000000007", "117000000000"
SALE = {
    "Product": {"type": "string"},
    "Region": {"type": "string"},
    "Units": {"type": ["integer", "null"]},
    "Revenue": {"type": ["number", "null"]},
    "Note": {"type": ["string", "null"]},
}


def row(code: str, price: float = 1.5) -> dict:
    return {
        "Code": code,
        "Name": f"Product {code}",
        "Category": "Tools",
        "Price": price,
        "Launched": None,
        "Active": True,
    }


def full_table(*rows: dict, run: int) -> str:
    """A full-table sync (no bookmark): every row, then a STATE."""
    return lines(
        schema("products", PRODUCT, ["Code"]),
        *(record("products", r) for r in rows),
        state({"run": run}),
    )


@pytest.mark.parametrize(
    ("mode", "third_run_sends"), [("insert", ["P4"]), ("upsert", ["P2", "P4"])]
)
def test_a_full_table_stream_sends_only_what_its_mode_asks(sim, mode, third_run_sends, caplog):
    config = core_config(sim, {"products": PRODUCTS | {"mode": mode}})
    first = run_in_process(config, full_table(row("P1"), row("P2"), row("P3"), run=1))
    assert last_upload_codes(sim, PRODUCTS_FILE) == ["P1", "P2", "P3"]
    assert first.states == [{"run": 1}]

    second = run_in_process(config, full_table(row("P1"), row("P2"), row("P3"), run=2))
    assert uploads(sim, PRODUCTS_FILE) == 1  # nothing changed: nothing uploaded
    assert len(task_starts(sim, PRODUCTS_IMPORT)) == 1  # and no import ran
    assert second.states == [{"run": 2}]

    with caplog.at_level(logging.INFO):
        third = run_in_process(config, full_table(row("P1"), row("P2", 9.99), row("P4"), run=3))
    assert last_upload_codes(sim, PRODUCTS_FILE) == third_run_sends
    assert third.states == [{"run": 3}]
    changed = mode == "upsert"
    assert "new 1, changed 1, unchanged 1, deleted 0" in caplog.text
    assert list_items(sim, "Products")["P2"]["properties"]["Price"] == (9.99 if changed else 1.5)
    assert "P3" in list_items(sim, "Products")  # deletes: ignore (the default)


def test_upsert_skips_the_unchanged_row_an_incremental_tap_resends(sim):
    config = core_config(sim, {"products": PRODUCTS | {"mode": "upsert"}})
    run_in_process(config, full_table(row("P1"), row("P2"), run=1))
    # tap-postgres resends the row at its bookmark (P2), unchanged, with the new ones.
    run_in_process(config, full_table(row("P2"), row("P3"), run=2))
    assert last_upload_codes(sim, PRODUCTS_FILE) == ["P3"]


def test_a_key_setting_stands_in_for_missing_key_properties(sim):
    config = core_config(sim, {"products": PRODUCTS | {"mode": "upsert", "key": ["Code"]}})
    no_key = lines(schema("products", PRODUCT), *(record("products", row(c)) for c in "AB"))
    run_in_process(config, no_key)
    run_in_process(config, no_key)
    assert uploads(sim, PRODUCTS_FILE) == 1


def test_upsert_without_a_key_fails_at_the_schema(sim):
    config = core_config(sim, {"products": PRODUCTS | {"mode": "upsert"}})
    with pytest.raises(ConfigError, match=r"mode upsert.*needs a key.*`streams\.products\.key`"):
        run_in_process(config, lines(schema("products", PRODUCT), record("products", row("A"))))


def mirror(**stream: object) -> dict:
    return PRODUCTS | {"mode": "upsert", "deletes": "delete", "full_snapshot": True} | stream


@pytest.mark.parametrize(
    "how",
    [
        {},
        {
            "delete_action": "Delete flagged products",
            "delete_flag_import": "Product Flags from product_flags.csv",
        },
    ],
    ids=["list API", "delete action"],
)
def test_a_row_gone_from_a_full_snapshot_is_deleted_from_the_list(sim, how):
    config = core_config(sim, {"products": mirror(**how)})
    run_in_process(config, full_table(*(row(f"P{n}") for n in range(1, 5)), run=1))
    second = run_in_process(config, full_table(row("P1"), row("P2"), row("P4"), run=2))
    assert sorted(list_items(sim, "Products")) == ["P1", "P2", "P4"]
    assert second.states == [{"run": 2}]
    if how:
        assert len(task_starts(sim, FLAGS_IMPORT)) == 1
        assert len(task_starts(sim, DELETE_ACTION)) == 1
    # The store forgot P3: sent again, it is new.
    run_in_process(config, full_table(row("P1"), row("P2"), row("P3"), row("P4"), run=3))
    assert last_upload_codes(sim, PRODUCTS_FILE) == ["P3"]


def test_a_closing_activate_version_drives_the_delete(sim):
    config = core_config(sim, {"products": PRODUCTS | {"mode": "upsert", "deletes": "delete"}})

    def versioned(*codes: str, version: int) -> str:
        return lines(
            schema("products", PRODUCT, ["Code"]),
            activate_version("products", version),
            *(record("products", row(c), version=version) for c in codes),
            activate_version("products", version),
            state({"version": version}),
        )

    run_in_process(config, versioned("P1", "P2", "P3", version=1))
    run_in_process(config, versioned("P1", "P3", version=2))
    assert sorted(list_items(sim, "Products")) == ["P1", "P3"]


def test_without_a_closed_version_nothing_is_deleted(sim):
    # An incremental sync opens a version and never closes it: no snapshot, no deletes.
    config = core_config(sim, {"products": PRODUCTS | {"mode": "upsert", "deletes": "delete"}})
    run_in_process(config, full_table(row("P1"), row("P2"), run=1))
    opened = lines(
        schema("products", PRODUCT, ["Code"]),
        activate_version("products", 5),
        record("products", row("P3")),
    )
    run_in_process(config, opened)
    assert sorted(list_items(sim, "Products")) == ["P1", "P2", "P3"]


def test_a_record_with_sdc_deleted_at_is_deleted(sim):
    config = core_config(sim, {"products": PRODUCTS | {"mode": "upsert", "deletes": "delete"}})
    log_based = {**PRODUCT, "_sdc_deleted_at": {"type": ["string", "null"], "format": "date-time"}}
    run_in_process(
        config,
        lines(
            schema("products", log_based, ["Code"]), *(record("products", row(c)) for c in "XYZ")
        ),
    )
    run_in_process(
        config,
        lines(
            schema("products", log_based, ["Code"]),
            record("products", {**row("Y"), "_sdc_deleted_at": "2026-12-01T10:00:00+00:00"}),
            state({"lsn": 2}),
        ),
    )
    assert sorted(list_items(sim, "Products")) == ["X", "Z"]


def test_a_state_after_a_deletion_waits_for_the_delete(sim):
    """A bookmark past a deletion the run never applied would lose it: the tap does not
    send a deleted row again."""
    config = core_config(sim, {"products": PRODUCTS | {"mode": "upsert", "deletes": "delete"}})
    log_based = {**PRODUCT, "_sdc_deleted_at": {"type": ["string", "null"], "format": "date-time"}}
    head = schema("products", log_based, ["Code"])
    run_in_process(config, lines(head, *(record("products", row(c)) for c in "XYZ")))
    deletion = lines(
        head,
        record("products", {**row("Y"), "_sdc_deleted_at": "2026-12-01T10:00:00+00:00"}),
        state({"lsn": 2}),
    )
    failed = failing_run_in_process(config, deletion + "not a Singer message\n", InvalidInputLine)
    assert failed.states == []
    assert sorted(list_items(sim, "Products")) == ["X", "Y", "Z"]

    assert run_in_process(config, deletion).states == [{"lsn": 2}]
    assert sorted(list_items(sim, "Products")) == ["X", "Z"]


def sales_run(*rows: tuple[str, str, int], run: int) -> str:
    return lines(
        schema("sales", SALE, ["Product", "Region"]),
        *(
            record(
                "sales", {"Product": p, "Region": r, "Units": u, "Revenue": u * 2.0, "Note": "n"}
            )
            for p, r, u in rows
        ),
        state({"run": run}),
    )


def test_clear_empties_the_module_cells_of_a_gone_row(sim):
    # The list items the sales rows use, loaded first.
    run_in_process(
        core_config(sim, {"products": PRODUCTS}), full_table(row("P1"), row("P2"), run=0)
    )
    run_in_process(
        core_config(sim, {"regions": REGIONS}),
        lines(
            schema("regions", REGION),
            record("regions", {"Code": "EMEA", "Name": "Europe"}),
        ),
    )
    config = core_config(
        sim, {"sales": SALES | {"mode": "upsert", "deletes": "clear", "full_snapshot": True}}
    )
    run_in_process(config, sales_run(("P1", "EMEA", 1), ("P2", "EMEA", 2), run=1))
    run = run_in_process(config, sales_run(("P1", "EMEA", 1), run=2))
    cells = {r["dimensions"]["Products"]: r["values"] for r in module_rows(sim, "Sales")}
    assert cells["P1"] == {"Units": 1, "Revenue": 2.0, "Note": "n"}
    assert not any(cells["P2"].values()), cells["P2"]
    assert run.states == [{"run": 2}]


def test_the_delete_guard_refuses_a_run_that_would_delete_too_much(sim):
    config = core_config(sim, {"products": mirror()})
    run_in_process(config, full_table(*(row(f"P{n}") for n in range(1, 5)), run=1))
    with pytest.raises(DeleteGuardError, match=r"3 of its 4 known keys.*max_delete_fraction"):
        run_in_process(config, full_table(row("P1"), run=2))
    assert sorted(list_items(sim, "Products")) == ["P1", "P2", "P3", "P4"]
    run_in_process({**config, "max_delete_fraction": 0.8}, full_table(row("P1"), run=3))
    assert sorted(list_items(sim, "Products")) == ["P1"]


def test_a_failed_import_leaves_the_tracking_as_it_was(sim):
    config = core_config(sim, {"products": PRODUCTS | {"mode": "upsert"}})
    sim.add_fault({"kind": "fail", "action_id": PRODUCTS_IMPORT, "message": "broke"})
    with pytest.raises(ActionFailedError):
        run_in_process(config, full_table(row("P1"), row("P2"), run=1))
    run_in_process(config, full_table(row("P1"), row("P2"), run=2))
    assert last_upload_codes(sim, PRODUCTS_FILE) == ["P1", "P2"]
    assert sorted(list_items(sim, "Products")) == ["P1", "P2"]


def test_a_kill_in_mid_commit_leaves_the_tracking_as_it_was(sim, tmp_path):
    config = core_config(sim, {"products": PRODUCTS | {"mode": "upsert"}})
    sim.add_fault({"kind": "hold", "action_id": PRODUCTS_IMPORT, "polls": 1_000_000})
    process = start_target(write_config(config, tmp_path / "config.json"))
    assert process.stdin is not None
    process.stdin.write(full_table(row("P1"), row("P2"), run=1))
    process.stdin.close()
    for _ in range(600):  # until the import is running in the simulator
        if task_starts(sim, PRODUCTS_IMPORT):
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    # The killed run's import still holds the model: cancel it, as a model builder would.
    (task,) = [t for t in sim.tasks() if t["taskState"] != "COMPLETE"]
    cancel_import(sim, USER["username"], f"/models/{CORE_MODEL}", PRODUCTS_IMPORT, task["taskId"])
    assert sorted(list_items(sim, "Products")) == []

    run_in_process(config, full_table(row("P1"), row("P2"), run=2))
    assert last_upload_codes(sim, PRODUCTS_FILE) == ["P1", "P2"]
    assert len([r for r in sim.requests() if r["path"].endswith("/complete")]) == 2
