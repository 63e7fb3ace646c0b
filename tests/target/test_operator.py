"""What an operator sees: a dry run, progress lines, the run summary, METRIC lines, and
warnings about settings that do nothing."""

from __future__ import annotations

import json
import logging
import re

import pytest

from target_anaplan.errors import ConfigError
from tests.kit.singer import lines, record, schema, state
from tests.kit.targetkit import (
    CUSTOMER,
    CUSTOMERS,
    completes,
    core_config,
    list_items,
    run_in_process,
    run_subprocess,
    task_starts,
)

CUSTOMERS_FILE, CUSTOMERS_IMPORT = "113000000004", "112000000004"


def customers(mode: str = "all", **stream: object) -> dict:
    return {"customers": CUSTOMERS | {"mode": mode, **stream}}


def customer_run(*ids: str, bookmark: int = 1) -> str:
    return lines(
        schema("customers", CUSTOMER, ["id"]),
        *(record("customers", {"id": i, "city": f"City {i}"}) for i in ids),
        state({"bookmark": bookmark}),
    )


def test_a_dry_run_writes_the_csv_and_changes_nothing(sim, tmp_path, caplog):
    out = tmp_path / "dry"
    store = tmp_path / "store" / "changes.sqlite"
    tracked = customers("upsert")
    config = core_config(sim, tracked, dry_run=True, dry_run_dir=str(out),
                         change_store=f"sqlite:///{store}")  # fmt: skip
    with caplog.at_level(logging.INFO):
        run = run_in_process(config, customer_run("C1", "C2"))

    assert (out / "customers.csv").read_text() == "id,city\nC1,City C1\nC2,City C2\n"
    assert completes(sim, CUSTOMERS_FILE) == []  # nothing uploaded
    assert not [r for r in sim.requests() if r["method"] in ("PUT", "DELETE")]
    assert task_starts(sim, CUSTOMERS_IMPORT) == []  # no task
    assert run.states == []  # no state
    assert "would upload 2 rows" in caplog.text
    assert "new 2, changed 0, unchanged 0, deleted 0" in caplog.text
    assert not store.parent.exists()  # the change store was not even created

    # The real run sends both rows, as new.
    real = run_in_process(core_config(sim, tracked, change_store=f"sqlite:///{store}"),
                          customer_run("C1", "C2"))  # fmt: skip
    assert sorted(list_items(sim, "Customers")) == ["C1", "C2"]
    assert real.states == [{"bookmark": 1}]
    assert store.exists()


def test_a_dry_run_says_what_it_would_delete_and_deletes_nothing(sim, tmp_path, caplog):
    store = tmp_path / "changes.sqlite"
    mirror = customers("upsert", deletes="delete", full_snapshot=True)
    real = core_config(sim, mirror, change_store=f"sqlite:///{store}")
    run_in_process(real, customer_run("C1", "C2", "C3"))
    assert sorted(list_items(sim, "Customers")) == ["C1", "C2", "C3"]
    stored = store.read_bytes()
    requests_before = len(sim.requests())

    with caplog.at_level(logging.INFO):
        run_in_process(real | {"dry_run": True, "dry_run_dir": str(tmp_path / "dry")},
                       customer_run("C1", "C2", bookmark=2))  # fmt: skip

    assert "Dry run: stream customers would delete 1 item(s) that left the source" in caplog.text
    assert sorted(list_items(sim, "Customers")) == ["C1", "C2", "C3"]
    changes = [r for r in sim.requests()[requests_before:] if r["method"] != "GET"]
    assert not [r for r in changes if "/lists/" in r["path"]]  # no delete call
    assert store.read_bytes() == stored
    # The store still knows C3, so the real run deletes it.
    run_in_process(real, customer_run("C1", "C2", bookmark=2))
    assert sorted(list_items(sim, "Customers")) == ["C1", "C2"]


def test_a_dry_run_says_what_after_load_would_run_and_runs_nothing(sim, tmp_path, caplog):
    config = core_config(sim, customers(), after_load=["Reload regions"], dry_run=True,
                         dry_run_dir=str(tmp_path))  # fmt: skip
    with caplog.at_level(logging.INFO):
        run = run_in_process(config, customer_run("C1"))

    assert "Dry run: after_load would run process 'Reload regions' (118000000000)" in caplog.text
    assert task_starts(sim, "118000000000") == []
    assert not [r for r in sim.requests() if r["path"].endswith("/tasks")]
    assert run.states == []


def test_the_summary_and_the_json_report_on_success(sim, tmp_path, caplog):
    report = tmp_path / "report" / "run.json"
    config = core_config(sim, customers("upsert"), run_report_path=str(report))
    with caplog.at_level(logging.INFO):
        run_in_process(config, customer_run("C1", "C2", "C3"))

    summary = json.loads(report.read_text())
    assert summary["verdict"] == "succeeded"
    (stream,) = summary["streams"]
    assert (stream["stream"], stream["received"], stream["sent"], stream["commits"]) == (
        "customers",
        3,
        3,
        1,
    )
    assert stream["changes"] == {"new": 3, "changed": 0, "unchanged": 0, "deleted": 0}
    assert stream["bytes_raw"] == len("id,city\n") + 3 * len("C1,City C1\n")
    assert stream["bytes_gzip"] > 0
    (counts,) = stream["imports"].values()
    assert counts == {"success": 3, "failed": 0, "ignored": 0}
    table = next(r.getMessage() for r in caplog.records if "Run summary" in r.getMessage())
    assert "customers" in table
    assert "3/0/0/0" in table
    assert "run succeeded" in table
    metrics = [r.getMessage() for r in caplog.records if r.getMessage().startswith("METRIC: ")]
    points = [json.loads(m.removeprefix("METRIC: ")) for m in metrics]
    sent = [p for p in points if p["metric"] == "anaplan_rows_sent"]
    assert sent == [
        {
            "type": "counter",
            "metric": "anaplan_rows_sent",
            "value": 3,
            "tags": {"stream": "customers", "file": "customers.csv"},
        }
    ]
    (timer,) = [p for p in points if p["metric"] == "anaplan_commit_seconds"]
    assert timer["tags"]["imports"] == ["import 'Customers from customers.csv' (112000000004)"]


def test_the_summary_and_the_json_report_on_failure(sim, tmp_path):
    sim.add_fault({"kind": "fail", "action_id": CUSTOMERS_IMPORT, "message": "Customers broke"})
    report = tmp_path / "run.json"
    config = core_config(sim, customers(), run_report_path=str(report))
    run = run_subprocess(config, customer_run("C1"), tmp_path)

    assert run.returncode == 1
    summary = json.loads(report.read_text())
    assert summary["verdict"] == "failed"
    assert "Customers broke" in summary["error"]
    assert summary["streams"][0]["received"] == 1
    assert summary["streams"][0]["commits"] == 0
    assert "run failed after " in run.stderr
    assert "error: " in run.stderr and "Customers broke" in run.stderr


def test_progress_lines_while_reading_and_while_an_import_runs(sim, tmp_path):
    sim.add_fault({"kind": "hold", "action_id": CUSTOMERS_IMPORT, "polls": 40})
    ids = [f"C{n}" for n in range(3000)]
    config = core_config(sim, customers(), progress_interval_s=0.000001)
    run = run_subprocess(config, customer_run(*ids), tmp_path)

    assert run.returncode == 0, run.stderr
    assert "Stream customers: 2000 rows read in" in run.stderr
    assert "rows/s)" in run.stderr
    assert "Uploading file 'customers.csv': chunk 1 of 1" in run.stderr
    assert "Import 'Customers from customers.csv' (112000000004): IN_PROGRESS" in run.stderr


def test_progress_lines_while_a_chunked_upload_runs(sim, caplog):
    """Each chunk of a long upload is reported as it goes, with its bytes: those sent while
    the stream is still read as more to come, those sent at commit as k of n."""
    city = "x" * 600_000  # with 1 MB chunks, each row makes a chunk of its own
    text = lines(
        schema("customers", CUSTOMER, ["id"]),
        *(record("customers", {"id": f"C{n}", "city": city}) for n in (1, 2, 3)),
    )
    with caplog.at_level(logging.INFO):
        run_in_process(core_config(sim, customers(), chunk_size_mb=1), text)

    header, row = len("id,city\n"), len(f"C1,{city}\n")
    progress = [m for r in caplog.records if (m := r.getMessage()).startswith("Uploading file")]
    assert [re.sub(r"\(\d+ gzip\)", "(gzip)", m) for m in progress] == [
        f"Uploading file 'customers.csv': chunk 1 (more to come), {header + row} bytes (gzip)",
        f"Uploading file 'customers.csv': chunk 2 (more to come), {row} bytes (gzip)",
        f"Uploading file 'customers.csv': chunk 3 of 3, {row} bytes (gzip)",
    ]
    assert len(list_items(sim, "Customers")) == 3


def test_a_typo_in_a_setting_is_warned_about_with_the_nearest_setting(sim, caplog):
    config = core_config(sim, customers(), poll_intervall_s=1)
    with caplog.at_level(logging.WARNING):
        run_in_process(config, customer_run("C1"))
    assert "`poll_intervall_s` is not a target-anaplan setting" in caplog.text
    assert "did you mean `poll_interval_s`?" in caplog.text


def test_load_method_is_refused_with_the_setting_to_use(sim):
    with pytest.raises(ConfigError, match=r"`load_method`.*streams\.<stream>\.mode"):
        run_in_process(core_config(sim, customers(), load_method="overwrite"), "")


def test_add_record_metadata_gives_sdc_fields_columns_can_map(sim):
    """With the SDK's `add_record_metadata`, an `_sdc_*` field feeds a header column."""
    extracted = "2024-05-06T07:08:09+00:00"
    stream = customers(columns={"city": "_sdc_extracted_at"})
    text = lines(
        schema("customers", CUSTOMER, ["id"]),
        record("customers", {"id": "C1", "city": "Oslo"}, time_extracted=extracted),
        state({"bookmark": 1}),
    )
    run = run_in_process(core_config(sim, stream, add_record_metadata=True), text)

    assert list_items(sim, "Customers")["C1"]["properties"]["City"] == extracted
    assert run.states == [{"bookmark": 1}]
    # Without it there is no such field, and the column is not fed.
    with pytest.raises(ConfigError, match=r"'city' \(read from field '_sdc_extracted_at'\)"):
        run_in_process(core_config(sim, stream), text)
