"""A large commit's chunks are uploaded while the stream is still read (early_upload.py).

With 1 MB chunks, 600 kB rows make a chunk each: the chunks the spool finishes go out
before the input ends; the commit sends the last one, completes and imports. A transient
failure on the way makes the commit upload the whole file again from chunk 0; a refusal
fails the run at commit, as a refused upload always did.
"""

from __future__ import annotations

import time

import pytest

from target_anaplan.anaplan.errors import ModelUnavailableError
from tests.kit.singer import lines, record, schema, state
from tests.kit.targetkit import (
    CUSTOMER,
    CUSTOMERS,
    core_config,
    failing_run_in_process,
    list_items,
    run_in_process,
    start_target,
    write_config,
)

BIG = "x" * 600_000
FILE_ID = "113000000004"  # customers.csv


def big_rows(*ids: str) -> list[dict]:
    return [record("customers", {"id": i, "city": BIG}) for i in ids]


def chunk_puts(sim) -> list[str]:
    return [
        r["path"].rsplit("/", 1)[-1]
        for r in sim.requests()
        if r["method"] == "PUT" and f"/files/{FILE_ID}/chunks/" in r["path"]
    ]


def announcements(sim) -> int:
    return len([r for r in sim.requests() if r["method"] == "POST" and r["path"].endswith(FILE_ID)])


def config(sim, mode: str = "all", **settings):
    stream = CUSTOMERS | {"mode": mode}
    return core_config(sim, {"customers": stream}, chunk_size_mb=1, **settings)


def test_finished_chunks_are_sent_before_the_input_ends(sim, tmp_path):
    process = start_target(write_config(config(sim), tmp_path / "config.json"))
    assert process.stdin is not None
    process.stdin.write(lines(schema("customers", CUSTOMER, ["id"]), *big_rows("C1", "C2", "C3")))
    process.stdin.flush()
    for _ in range(600):  # the tap has more to send: stdin stays open meanwhile
        if len(chunk_puts(sim)) >= 2:
            break
        time.sleep(0.05)
    assert chunk_puts(sim) == ["0", "1"]
    assert not [r for r in sim.requests() if r["path"].endswith("/complete")]

    process.stdin.write(lines(*big_rows("C4"), state({"n": 4})))
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert chunk_puts(sim) == ["0", "1", "2", "3"]
    assert announcements(sim) == 1
    assert sorted(list_items(sim, "Customers")) == ["C1", "C2", "C3", "C4"]
    assert stdout.strip() == '{"n": 4}'


def test_every_row_of_many_small_ones_lands(sim):
    """The last chunk, sent at commit, holds rows still buffered when the input ended."""
    rows = [record("customers", {"id": f"C{n}", "city": f"City {n:0>90}"}) for n in range(25_000)]
    run_in_process(config(sim), lines(schema("customers", CUSTOMER, ["id"]), *rows))
    assert len(chunk_puts(sim)) == 3
    assert len(list_items(sim, "Customers")) == 25_000


def test_a_transient_failure_while_reading_uploads_the_file_again_at_commit(sim, caplog):
    # The early chunk PUT fails past its one attempt; the commit starts over from chunk 0.
    sim.add_fault({"kind": "http", "status": 503, "method": "PUT", "path": "/chunks/0$"})
    text = lines(schema("customers", CUSTOMER, ["id"]), *big_rows("C1", "C2", "C3"))
    run_in_process(config(sim, retry_max_attempts=1), text + lines(state({"n": 3})))
    assert announcements(sim) == 2
    assert chunk_puts(sim)[-3:] == ["0", "1", "2"]
    assert "uploading it again from chunk 0" in caplog.text
    assert sorted(list_items(sim, "Customers")) == ["C1", "C2", "C3"]


def test_a_refused_chunk_while_reading_fails_the_commit_without_a_second_upload(sim):
    sim.add_fault({"kind": "http", "status": 423, "method": "PUT", "path": "/chunks/0$"})
    text = lines(schema("customers", CUSTOMER, ["id"]), *big_rows("C1", "C2", "C3"), state({}))
    run = failing_run_in_process(config(sim), text, ModelUnavailableError, "locked")
    assert run.states == []
    assert announcements(sim) == 1
    assert not [r for r in sim.requests() if r["path"].endswith("/complete")]
    assert list_items(sim, "Customers") == {}


@pytest.mark.parametrize("mode", ["insert", "all"])
def test_a_dry_run_uploads_nothing_early(sim, tmp_path, mode):
    text = lines(schema("customers", CUSTOMER, ["id"]), *big_rows("C1", "C2", "C3"))
    run_in_process(config(sim, mode, dry_run=True, dry_run_dir=str(tmp_path)), text)
    assert chunk_puts(sim) == []
    assert announcements(sim) == 0


@pytest.mark.parametrize("first", ["customers", "more_customers"])
def test_streams_sharing_a_file_take_turns_on_it(sim, tmp_path, first):
    """Two streams load customers.csv: neither holds the file while it is read (the other's
    commit would wait for it forever), and both commits land, whichever stream came first."""
    streams = {"customers": CUSTOMERS, "more_customers": CUSTOMERS}
    settings = core_config(sim, streams, chunk_size_mb=1)
    second = "more_customers" if first == "customers" else "customers"
    text = lines(
        schema(first, CUSTOMER, ["id"]),
        *[record(first, {"id": i, "city": BIG}) for i in ("C1", "C2", "C3")],
        schema(second, CUSTOMER, ["id"]),
        *[record(second, {"id": i, "city": BIG}) for i in ("C4", "C5", "C6")],
        state({"n": 6}),
    )
    process = start_target(write_config(settings, tmp_path / "config.json"))
    try:
        stdout, stderr = process.communicate(text, timeout=120)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    assert stdout.strip() == '{"n": 6}'
    assert announcements(sim) == 2
    assert sorted(list_items(sim, "Customers")) == [f"C{n}" for n in range(1, 7)]
