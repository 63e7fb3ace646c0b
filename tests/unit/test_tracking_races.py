"""Change tracking while a commit runs on its own thread: a batch is judged against the
newest row of each key, whether a running commit still holds it or has just recorded it
in the store, even when the batch's look-up was made before that commit was recorded."""

from __future__ import annotations

import pytest

from target_anaplan.change_store import ChangeStore
from target_anaplan.changes import Scratch, StreamTracking, fingerprints

KEY = '["K"]'


@pytest.fixture
def tracking(tmp_path):
    store = ChangeStore(f"sqlite:///{tmp_path / 'changes.sqlite'}")
    store.record("m/f", [[(KEY, fingerprints(["K,A"])[0], None)]])  # loaded before: K,A
    scratch = Scratch(tmp_path / "scratch.sqlite")
    tracking = StreamTracking(
        store, scratch, tmp_path, stream="s", source="m/f", mode="upsert", deletes="ignore"
    )
    yield tracking
    tracking.close()
    scratch.close()
    store.close()


def commit_running(tracking: StreamTracking, row: str):
    """A batch sending ``row`` for K, set aside for a commit that is still running."""
    assert tracking.choose([KEY], [row], first_line=0) == [0]
    return tracking.seal()


@pytest.mark.parametrize("when", ["running", "recorded since the look-up"])
def test_a_row_back_to_its_stored_value_is_sent_after_a_change_in_flight(tracking, when):
    sealed = commit_running(tracking, "K,B")
    known = tracking.look_up([KEY])  # made while the commit of K,B runs: the store says K,A
    if when != "running":
        tracking.record_commit(sealed)
    # The next batch sends K,A again: Anaplan holds (or is about to hold) K,B.
    assert tracking.choose([KEY], ["K,A"], first_line=0, known=known) == [0]
    assert (tracking.counts.changed, tracking.counts.unchanged) == (2, 0)


def test_the_same_row_as_the_commit_in_flight_is_unchanged(tracking):
    sealed = commit_running(tracking, "K,B")
    known = tracking.look_up([KEY])
    tracking.record_commit(sealed)
    assert tracking.choose([KEY], ["K,B"], first_line=0, known=known) == []
    assert tracking.counts.unchanged == 1


def test_prefilter_keeps_a_record_whose_key_a_commit_recorded_since_the_look_up(tracking):
    raw = 42
    tracking.store.record("m/f", [[(KEY, fingerprints(["K,A"])[0], raw)]])  # record known
    tracking.choose([KEY], ["K,B"], first_line=0, raws=[43])
    sealed = tracking.seal()
    known = tracking.look_up([KEY])  # raw 42 stored: the record would pass as unchanged
    tracking.record_commit(sealed)
    kept, _ = tracking.prefilter([KEY], [raw], known)
    assert kept == [0]  # formatted and judged: K,A against the K,B just recorded
