"""The target as a process: exit codes, one-line messages, stdout carrying STATE only, signals."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

from tests.kit.singer import lines, record, schema, state
from tests.kit.targetkit import (
    CUSTOMERS,
    REGION,
    REGIONS,
    completes,
    core_config,
    list_items,
    run_subprocess,
    start_target,
    write_config,
)

CUSTOMER = {"id": {"type": "string"}, "city": {"type": "string"}}


def customer_lines(n: int) -> str:
    return lines(
        schema("customers", CUSTOMER, ["id"]),
        *(record("customers", {"id": f"C{i}", "city": "Oslo"}) for i in range(n)),
        state({"customers": n}),
    )


def assert_one_line_failure(run, *needles: str) -> str:
    """Exit 1, nothing on stdout, no traceback, and a message line naming the needles."""
    assert run.returncode == 1, run.stderr
    assert run.stdout == ""
    assert "Traceback" not in run.stderr
    return next(line for line in run.stderr.splitlines() if all(n in line for n in needles))


def test_success_prints_only_state_on_stdout(sim, tmp_path):
    run = run_subprocess(core_config(sim, {"customers": CUSTOMERS}), customer_lines(3), tmp_path)

    assert run.returncode == 0, run.stderr
    assert [json.loads(line) for line in run.stdout.splitlines()] == [{"customers": 3}]
    assert len(list_items(sim, "Customers")) == 3
    assert "Committed stream customers: 3 rows" in run.stderr


def test_invalid_config_is_one_line(sim, tmp_path):
    config = core_config(sim, {"customers": CUSTOMERS | {"mode": "replace"}})
    run = run_subprocess(config, customer_lines(1), tmp_path)

    assert_one_line_failure(run, "replace")
    assert not sim.requests()


def test_wrong_password_is_one_line(sim, tmp_path):
    config = core_config(sim, {"customers": CUSTOMERS}) | {"password": "wrong"}
    run = run_subprocess(config, customer_lines(1), tmp_path)

    line = assert_one_line_failure(run, "loader@example.com")
    assert "wrong" not in line


def test_missing_header_column_is_one_line_before_upload(sim, tmp_path):
    config = core_config(sim, {"customers": CUSTOMERS})
    text = lines(
        schema("customers", {"id": {"type": "string"}, "town": {"type": "string"}}),
        record("customers", {"id": "C1", "town": "Oslo"}),
    )
    run = run_subprocess(config, text, tmp_path)

    assert_one_line_failure(run, "city")
    assert not completes(sim, "113000000004")


def test_failed_import_exits_1_without_state(sim, tmp_path):
    sim.add_fault({"kind": "fail", "action_id": "112000000004", "message": "Mapping is broken"})
    run = run_subprocess(core_config(sim, {"customers": CUSTOMERS}), customer_lines(2), tmp_path)

    assert_one_line_failure(run, "Customers from customers.csv")


def test_bad_input_line_is_one_line(sim, tmp_path):
    config = core_config(sim, {"customers": CUSTOMERS})
    run = run_subprocess(config, lines(schema("customers", CUSTOMER)) + "{not json\n", tmp_path)

    assert_one_line_failure(run, "not valid JSON", "not json")


def test_sigterm_mid_stream_commits_nothing_partial(sim, tmp_path):
    # regions (insert, 2 rows per commit) is stuck in its import when the signal comes;
    # customers (all mode) has rows spooled that must never be uploaded as "all".
    sim.add_fault({"kind": "hold", "action_id": "112000000002", "polls": 1_000_000})
    spool_root = tmp_path / "tmp"
    spool_root.mkdir()
    streams = {"customers": CUSTOMERS | {"mode": "all"}, "regions": REGIONS | {"mode": "insert"}}
    # regions first in the plan: its batches do not commit customers before them.
    config = core_config(sim, streams, batch_size_rows=2, load_order=["regions"])
    process = start_target(
        write_config(config, tmp_path / "config.json"), env=os.environ | {"TMPDIR": str(spool_root)}
    )
    assert process.stdin is not None
    process.stdin.write(
        lines(
            schema("customers", CUSTOMER),
            schema("regions", REGION),
            record("customers", {"id": "C1", "city": "Oslo"}),
            state({"step": 1}),
            record("regions", {"Code": "EMEA", "Name": "Europe"}),
            record("regions", {"Code": "APAC", "Name": "Asia"}),
            state({"step": 2}),
        )
    )
    process.stdin.flush()
    wait_for(
        lambda: any(
            r["method"] == "POST" and r["path"].endswith("/112000000002/tasks")
            for r in sim.requests()
        )
    )

    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)

    assert process.returncode == 1, stderr
    assert stdout == ""
    assert "Traceback" not in stderr
    assert "2 rows of stream regions" in stderr
    assert "1 rows of stream customers" in stderr
    assert not completes(sim, "113000000004")
    assert list(spool_root.iterdir()) == []


def test_sigterm_with_everything_committed_exits_0(sim, tmp_path):
    streams = {"regions": REGIONS | {"mode": "insert"}}
    config_file = write_config(core_config(sim, streams, batch_size_rows=1), tmp_path / "c.json")
    log = tmp_path / "stderr.log"
    with log.open("w") as stderr:
        process = start_target(config_file, stderr=stderr)
        assert process.stdin is not None
        process.stdin.write(
            lines(
                schema("regions", REGION),
                state({"step": 0}),
                record("regions", {"Code": "EMEA", "Name": "Europe"}),
            )
        )
        process.stdin.flush()
        wait_for(lambda: "Committed stream regions" in log.read_text())
        # step 0 went out as soon as it arrived (nothing pending); the STATE that covers the
        # commit may or may not be read when the signal lands.
        process.stdin.write(lines(state({"step": 1})))
        process.stdin.flush()

        process.send_signal(signal.SIGTERM)
        stdout, _ = process.communicate(timeout=60)

    assert process.returncode == 0, log.read_text()
    states = [json.loads(line) for line in stdout.splitlines()]
    assert states in ([{"step": 0}, {"step": 1}], [{"step": 0}])
    assert len(list_items(sim, "Regions")) == 1


def wait_for(condition, attempts: int = 600) -> None:
    """Poll an observable condition (not a timing assertion): fail if it never holds."""
    for _ in range(attempts):
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition never held")


def test_settings_mistake_is_one_line(sim, tmp_path):
    config = core_config(sim, {"customers": CUSTOMERS}) | {"api_base_url": "http://example.com/2/0"}
    run = run_subprocess(config, customer_lines(1), tmp_path)

    assert_one_line_failure(run, "api_base_url", "https://")
    assert not sim.requests()


def test_config_from_environment_variables(sim, tmp_path):
    config = core_config(sim, {"customers": CUSTOMERS})
    env = os.environ | {
        f"TARGET_ANAPLAN_{key.upper()}": value if isinstance(value, str) else json.dumps(value)
        for key, value in config.items()
    }
    done = subprocess.run(
        [sys.executable, "-m", "target_anaplan", "--config", "ENV"],
        input=customer_lines(2),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )

    assert done.returncode == 0, done.stderr
    assert [json.loads(line) for line in done.stdout.splitlines()] == [{"customers": 2}]
    assert len(list_items(sim, "Customers")) == 2


def test_a_host_nobody_listens_on_fails_quickly_naming_it(tmp_path):
    with socket.socket() as probe:  # a loopback port with nothing listening on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    config = {
        "api_base_url": f"{url}/2/0",
        "auth_base_url": url,
        "oauth_base_url": url,
        "username": "loader@example.com",
        "password": "loader-password",
        "workspace": "w",
        "model": "m",
        "streams": {"customers": CUSTOMERS},
    }
    started = time.monotonic()
    run = run_subprocess(config, customer_lines(1), tmp_path)
    elapsed = time.monotonic() - started

    line = assert_one_line_failure(run, "ERROR", f"127.0.0.1:{port}")
    assert "Cannot reach Anaplan" in line
    assert "connection refused" in line
    assert "auth_base_url" in line
    assert elapsed < 20  # the run's own budget is about 15 s; not a speed goal
