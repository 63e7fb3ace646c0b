"""`tap-postgres | target-anaplan` with pipelinewise-tap-postgres 2.1.0, no Meltano, no maps.

The PipelineWise family writes draft-4 schemas (boolean exclusive bounds, `multipleOf` on
numeric columns), sends `date` columns as date-times and `ACTIVATE_VERSION` messages; these
tests run it with the target's defaults (records validated) and check what landed.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from demo import stack
from tests.kit.pipelinewise import PipelinewiseTap, run_pipe, target_config
from tests.kit.productkit import (
    SECOND_ROUND_CODES,
    SECOND_ROUND_ROWS,
    assert_matches_recorded_fixture,
    expected_items,
    items_by_code,
)
from tests.kit.targetkit import upload_codes

pytestmark = pytest.mark.e2e

# The Products import loads Launched into a date property, which takes YYYY-MM-DD only.
DATE_FORMATS = {"Launched": "date"}


def replication_key_value(state: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(state["bookmarks"][stack.STREAM]["replication_key_value"])


def last_tap_state(tap_messages: list[dict[str, Any]]) -> dict[str, Any]:
    return [m["value"] for m in tap_messages if m["type"] == "STATE"][-1]


def states_before_records(tap_messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The STATE values the tap sent before its first RECORD."""
    first = next(i for i, m in enumerate(tap_messages) if m["type"] == "RECORD")
    return [m["value"] for m in tap_messages[:first] if m["type"] == "STATE"]


def test_full_table_with_date_format_loads_every_row_exactly(
    pipelinewise_tap: PipelinewiseTap, sim: stack.SimulatorProcess, tmp_path: Path
) -> None:
    properties = pipelinewise_tap.properties("FULL_TABLE")
    config = target_config(sim, tmp_path / "dumps", formats=DATE_FORMATS)

    run = run_pipe(pipelinewise_tap, properties, config)

    assert (run.tap_returncode, run.returncode) == (0, 0), run.report()
    assert items_by_code(sim) == expected_items(stack.SEED_PRODUCTS)
    uploaded = upload_codes(sim.file("products.csv"))
    assert sorted(uploaded) == [row[0] for row in stack.SEED_PRODUCTS]
    # The target passes on the tap's final state: the full table sync is complete.
    final = last_tap_state(run.tap_messages)
    assert final["bookmarks"][stack.STREAM]["last_replication_method"] == "FULL_TABLE"
    assert final["currently_syncing"] is None
    assert run.states[-1] == final


def test_date_time_values_for_a_date_property_are_rejected_rows_reported_in_one_line(
    pipelinewise_tap: PipelinewiseTap, sim: stack.SimulatorProcess, tmp_path: Path
) -> None:
    properties = pipelinewise_tap.properties("FULL_TABLE")
    config = target_config(sim, tmp_path / "dumps")

    run = run_pipe(pipelinewise_tap, properties, config)

    assert (run.tap_returncode, run.returncode) == (0, 1), run.report()
    assert "Traceback" not in run.stderr
    # No state that covers a record: the next run sends every row again.
    assert run.states == states_before_records(run.tap_messages)
    rejected = [row[0] for row in stack.SEED_PRODUCTS if row[4] is not None]
    # One ERROR line says it all (the run summary repeats it in its last line).
    (line,) = [
        line
        for line in run.stderr.splitlines()
        if f"{len(rejected)} rows failed" in line and "| ERROR " in line
    ]
    assert stack.STREAM in line
    named_dump = re.search(r"Failure dump: (\S+\.csv)", line)
    assert named_dump, line
    dump = Path(named_dump.group(1))
    assert dump.parent == tmp_path / "dumps"
    dump_text = dump.read_text(encoding="utf-8")
    assert all(code in dump_text for code in rejected)
    assert "2024-01-15T00:00:00+00:00" in dump_text
    # Anaplan loads the rows it can: the one product without a launch date.
    (accepted,) = [row for row in stack.SEED_PRODUCTS if row[4] is None]
    assert items_by_code(sim) == expected_items([accepted])


def test_incremental_second_run_sends_only_new_and_changed_rows(
    pipelinewise_tap: PipelinewiseTap,
    products: stack.EmbeddedPostgres,
    sim: stack.SimulatorProcess,
    tmp_path: Path,
) -> None:
    properties = pipelinewise_tap.properties("INCREMENTAL", replication_key="updated_at")
    config = target_config(sim, tmp_path / "dumps", formats=DATE_FORMATS)

    first = run_pipe(pipelinewise_tap, properties, config)

    assert (first.tap_returncode, first.returncode) == (0, 0), first.report()
    expected = expected_items(stack.SEED_PRODUCTS)
    assert items_by_code(sim) == expected
    state = first.states[-1]
    assert replication_key_value(state) == datetime.fromisoformat("2026-01-01T07:00:00+00:00")

    stack.add_second_round(products)
    second = run_pipe(pipelinewise_tap, properties, config, state=state)

    assert (second.tap_returncode, second.returncode) == (0, 0), second.report()
    # The tap selects updated_at >= the bookmark, so the row at the bookmark (P008) comes
    # again, unchanged: upsert (meltano.yml's demo stream) skips it.
    assert sorted(upload_codes(sim.file("products.csv"))) == SECOND_ROUND_CODES
    # The deleted row's item stays: an incremental tap never sees a deleted row.
    expected.update(expected_items(SECOND_ROUND_ROWS))
    assert items_by_code(sim) == expected
    assert replication_key_value(second.states[-1]) == datetime.fromisoformat(
        "2026-01-02T03:00:00+00:00"
    )


def test_the_tap_emits_what_its_schema_fixture_recorded(
    pipelinewise_tap: PipelinewiseTap,
) -> None:
    output = pipelinewise_tap.sync(pipelinewise_tap.properties("FULL_TABLE"))

    emitted = assert_matches_recorded_fixture(output, "pipelinewise-tap-postgres")
    assert [m["type"] for m in emitted] == [
        "SCHEMA",
        "STATE",
        "ACTIVATE_VERSION",
        *["RECORD"] * len(stack.SEED_PRODUCTS),
        "ACTIVATE_VERSION",
        "STATE",
    ]
    versions = {m["version"] for m in emitted if m["type"] in ("RECORD", "ACTIVATE_VERSION")}
    assert len(versions) == 1
