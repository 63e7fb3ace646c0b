"""`meltano run tap-postgres target-anaplan`: a real table into the simulator's Products list.

The first run loads every row; rows inserted or updated afterwards arrive in the second run
(INCREMENTAL on updated_at), and of those the target sends only the new and changed ones
(`mode: upsert`): the row at the bookmark, which the tap reads again, stays behind. A run
whose import fails leaves Meltano's bookmark and the change store where they were, so the
next run delivers the same rows. The pipeline is meltano.yml's `demo` environment.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from demo import stack
from tests.kit.productkit import (
    SECOND_ROUND_CODES,
    SECOND_ROUND_ROWS,
    assert_matches_recorded_fixture,
    expected_items,
    items_by_code,
)
from tests.kit.targetkit import upload_codes

pytestmark = pytest.mark.e2e

# The second run's reading of the tap's rows: P009-P011 new, P003 changed, the resent P008
# unchanged (and skipped).
SECOND_RUN_COUNTS = "new 3, changed 1, unchanged 1, deleted 0 (unchanged skipped)"


def bookmark(meltano: stack.Meltano) -> datetime:
    """The replication key value in the state Meltano stored for the pipeline."""
    state = meltano.state()
    assert state, "meltano stored no state for " + meltano.state_id
    value = state["singer_state"]["bookmarks"][stack.STREAM]["replication_key_value"]
    return datetime.fromisoformat(value)


def test_first_run_loads_every_row_then_second_run_only_new_and_changed_rows(
    meltano: stack.Meltano,
    products: stack.EmbeddedPostgres,
    sim: stack.SimulatorProcess,
) -> None:
    first_run = stack.run_checked(meltano, "run", "tap-postgres", "target-anaplan")

    expected = expected_items(stack.SEED_PRODUCTS)
    assert items_by_code(sim) == expected
    first = sim.file("products.csv")
    assert sorted(upload_codes(first)) == sorted(expected)
    assert bookmark(meltano) == datetime.fromisoformat("2026-01-01T07:00:00+00:00")
    assert stack.change_counts(first_run.stderr) == [
        "new 8, changed 0, unchanged 0, deleted 0 (unchanged skipped)"
    ]

    stack.add_second_round(products)
    second_run = stack.run_checked(meltano, "run", "tap-postgres", "target-anaplan")

    second = sim.file("products.csv")
    assert second["uploads"] == first["uploads"] + 1
    # The tap selects updated_at >= the bookmark (Singer's at-least-once rule), so the one
    # row at the bookmark (P008) comes again, unchanged: upsert skips it.
    assert sorted(upload_codes(second)) == SECOND_ROUND_CODES
    assert stack.change_counts(second_run.stderr) == [SECOND_RUN_COUNTS]
    expected.update(expected_items(SECOND_ROUND_ROWS))
    loaded = items_by_code(sim)
    # An incremental tap never sees a deleted row: its item stays (the `mirror` environment
    # deletes it).
    assert stack.DELETED_CODE in loaded
    assert loaded == expected
    assert bookmark(meltano) == datetime.fromisoformat("2026-01-02T03:00:00+00:00")


def test_failed_import_keeps_the_bookmark_and_the_next_run_delivers_the_rows(
    meltano: stack.Meltano,
    products: stack.EmbeddedPostgres,
    sim: stack.SimulatorProcess,
) -> None:
    stack.run_checked(meltano, "run", "tap-postgres", "target-anaplan")
    loaded = items_by_code(sim)
    stack.add_second_round(products)
    fault = {"kind": "fail", "action_id": stack.PRODUCTS_IMPORT_ID, "message": "Model is busy"}
    sim.add_fault(fault)

    failed = meltano("run", "tap-postgres", "target-anaplan")

    assert failed.returncode != 0
    assert "Model is busy" in failed.stderr
    assert bookmark(meltano) == datetime.fromisoformat("2026-01-01T07:00:00+00:00")
    assert items_by_code(sim) == loaded

    rerun = stack.run_checked(meltano, "run", "tap-postgres", "target-anaplan")

    # The change store did not learn the failed run's rows: the same four travel again.
    assert sorted(upload_codes(sim.file("products.csv"))) == SECOND_ROUND_CODES
    assert stack.change_counts(rerun.stderr) == [SECOND_RUN_COUNTS]
    loaded.update(expected_items(SECOND_ROUND_ROWS))
    assert items_by_code(sim) == loaded
    assert bookmark(meltano) == datetime.fromisoformat("2026-01-02T03:00:00+00:00")


def test_tap_postgres_emits_what_its_schema_fixture_recorded(meltano: stack.Meltano) -> None:
    result = stack.run_checked(meltano, "invoke", "tap-postgres")

    emitted = assert_matches_recorded_fixture(result.stdout, "meltanolabs-tap-postgres")
    assert [m["type"] for m in emitted] == [
        "SCHEMA",
        *["RECORD"] * len(stack.SEED_PRODUCTS),
        "STATE",
    ]
