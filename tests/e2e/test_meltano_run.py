"""`meltano run tap-postgres target-anaplan`: a real table into the simulator's Products list.

The first run loads every row; rows inserted or updated afterwards arrive in the second run
(insert mode, INCREMENTAL on updated_at) and nothing else is re-sent but the row at the
bookmark. A run whose import fails leaves Meltano's bookmark where it was, so the next run
delivers the same rows. The pipeline is meltano.yml's `demo` environment, as the demo runs it.
"""

from __future__ import annotations

from datetime import datetime

import pytest
import stack
from productkit import (
    assert_matches_recorded_fixture,
    codes_in_last_upload,
    expected_items,
    items_by_code,
)

pytestmark = pytest.mark.e2e


def bookmark(meltano: stack.Meltano) -> datetime:
    """The replication key value in the state Meltano stored for the pipeline."""
    state = meltano.state()
    assert state, "meltano stored no state for " + stack.STATE_ID
    value = state["singer_state"]["bookmarks"][stack.STREAM]["replication_key_value"]
    return datetime.fromisoformat(value)


def test_first_run_loads_every_row_then_second_run_only_new_and_changed_rows(
    meltano: stack.Meltano,
    products: stack.EmbeddedPostgres,
    sim: stack.SimulatorProcess,
) -> None:
    stack.run_checked(meltano, "run", "tap-postgres", "target-anaplan")

    expected = expected_items(stack.SEED_PRODUCTS)
    assert items_by_code(sim) == expected
    first = sim.file("products.csv")
    assert sorted(codes_in_last_upload(first)) == sorted(expected)
    assert bookmark(meltano) == datetime.fromisoformat("2026-01-01T07:00:00+00:00")

    stack.add_second_round(products)
    stack.run_checked(meltano, "run", "tap-postgres", "target-anaplan")

    second = sim.file("products.csv")
    assert second["uploads"] == first["uploads"] + 1
    # The tap selects updated_at >= the bookmark (Singer's at-least-once rule), so the one
    # row at the bookmark (P008) comes again; every other unchanged row stays behind.
    assert sorted(codes_in_last_upload(second)) == ["P003", "P008", "P009", "P010"]
    second_round = [*stack.NEW_PRODUCTS, stack.CHANGED_PRODUCT]
    expected.update(expected_items(second_round))
    assert items_by_code(sim) == expected
    assert bookmark(meltano) == datetime.fromisoformat("2026-01-02T02:00:00+00:00")


def test_failed_import_keeps_the_bookmark_and_the_next_run_delivers_the_rows(
    meltano: stack.Meltano,
    products: stack.EmbeddedPostgres,
    sim: stack.SimulatorProcess,
) -> None:
    stack.run_checked(meltano, "run", "tap-postgres", "target-anaplan")
    loaded = items_by_code(sim)
    stack.add_second_round(products)
    fault = {"kind": "fail", "action_id": stack.PRODUCTS_IMPORT_ID, "message": "Model is busy"}
    sim.post("/__sim__/faults", fault)

    failed = meltano("run", "tap-postgres", "target-anaplan")

    assert failed.returncode != 0
    assert "Model is busy" in failed.stderr
    assert bookmark(meltano) == datetime.fromisoformat("2026-01-01T07:00:00+00:00")
    assert items_by_code(sim) == loaded

    stack.run_checked(meltano, "run", "tap-postgres", "target-anaplan")

    second_round = [*stack.NEW_PRODUCTS, stack.CHANGED_PRODUCT]
    loaded.update(expected_items(second_round))
    assert items_by_code(sim) == loaded
    assert bookmark(meltano) == datetime.fromisoformat("2026-01-02T02:00:00+00:00")


def test_tap_postgres_emits_what_its_schema_fixture_recorded(meltano: stack.Meltano) -> None:
    result = stack.run_checked(meltano, "invoke", "tap-postgres")

    emitted = assert_matches_recorded_fixture(result.stdout, "meltanolabs-tap-postgres")
    assert [m["type"] for m in emitted] == [
        "SCHEMA",
        *["RECORD"] * len(stack.SEED_PRODUCTS),
        "STATE",
    ]
