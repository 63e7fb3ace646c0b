"""`meltano run tap-postgres target-anaplan` in the `mirror` environment: the Products list
follows the table, rows inserted, updated and deleted included.

The tap reads the whole table every run (FULL_TABLE); the target sends only the rows that
are new or changed since they were loaded (`mode: upsert`) and deletes the items whose rows
left the table (`deletes: delete`, `full_snapshot: true`). What was loaded is tracked in the
tests' PostgreSQL (`change_store: postgresql+psycopg://...`); a run that finds nothing
changed uploads nothing and runs no import.
"""

from __future__ import annotations

import pytest

from demo import stack
from tests.kit.productkit import (
    SECOND_ROUND_CODES,
    SECOND_ROUND_ROWS,
    expected_items,
    items_by_code,
)
from tests.kit.targetkit import upload_codes

pytestmark = pytest.mark.e2e


def run_pipeline(meltano: stack.Meltano) -> str:
    """`meltano run tap-postgres target-anaplan`; returns the change counts the target logged."""
    result = stack.run_checked(meltano, "run", "tap-postgres", "target-anaplan")
    (counts,) = stack.change_counts(result.stderr)
    return counts


def tracked(items: dict[str, object]) -> list[list[str]]:
    """The keys the change store should hold once these items are loaded."""
    return [[code] for code in sorted(items)]


def test_each_run_sends_only_new_and_changed_rows_and_deletes_the_removed_items(
    mirror_meltano: stack.Meltano,
    products: stack.EmbeddedPostgres,
    sim: stack.SimulatorProcess,
) -> None:
    counts = run_pipeline(mirror_meltano)

    assert counts == "new 8, changed 0, unchanged 0, deleted 0 (unchanged skipped)"
    expected = expected_items(stack.SEED_PRODUCTS)
    assert items_by_code(sim) == expected
    first = sim.file("products.csv")
    assert sorted(upload_codes(first)) == sorted(expected)
    assert stack.tracked_keys(products) == tracked(expected)

    stack.add_second_round(products)
    counts = run_pipeline(mirror_meltano)

    assert counts == "new 3, changed 1, unchanged 6, deleted 1 (unchanged skipped)"
    second = sim.file("products.csv")
    assert second["uploads"] == first["uploads"] + 1
    # The tap read all 10 rows; the 6 unchanged ones stayed behind.
    assert sorted(upload_codes(second)) == SECOND_ROUND_CODES
    loaded = items_by_code(sim)
    assert stack.DELETED_CODE not in loaded
    del expected[stack.DELETED_CODE]
    expected.update(expected_items(SECOND_ROUND_ROWS))
    assert loaded == expected
    assert stack.tracked_keys(products) == tracked(expected)
    tasks = sim.tasks()

    counts = run_pipeline(mirror_meltano)

    assert counts == "new 0, changed 0, unchanged 10, deleted 0 (unchanged skipped)"
    # Nothing changed: nothing uploaded, no import run.
    assert sim.file("products.csv")["uploads"] == second["uploads"]
    assert sim.tasks() == tasks
    assert items_by_code(sim) == expected
    assert stack.tracked_keys(products) == tracked(expected)
