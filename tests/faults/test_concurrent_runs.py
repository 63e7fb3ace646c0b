"""Two runs on one machine loading the same Anaplan file must not overwrite each other.

Anaplan keeps one private copy of a file per user: if run B uploads while run A's
import has not read A's upload yet, A imports B's rows and A's rows are lost silently.
Run A is held between its upload and its import (its task POST waits out a
``Retry-After``) while run B starts; the machine-wide file lock makes B wait.
"""

from __future__ import annotations

import json

from tests.kit.faultkit import (
    PRODUCT_SCHEMA,
    PRODUCTS_IMPORT,
    LiveRun,
    config,
    counters,
    fired,
    landed,
    scenario_overrides,
    wait_for,
)
from tests.kit.singer import lines, record, schema, state

STREAMS = {"products": {"file": "products.csv", "imports": ["Products from products.csv"]}}


def products(prefix: str) -> str:
    rows = [
        {"Code": f"{prefix}{i}", "Name": f"{prefix} {i}", "Category": "Tools", "Price": i,
         "Launched": "2024-02-01", "Active": True}
        for i in range(1, 4)
    ]  # fmt: skip
    return lines(
        schema("products", PRODUCT_SCHEMA, ["Code"]),
        *(record("products", row) for row in rows),
        state({prefix: 3}),
    )


def test_two_runs_loading_one_file_take_turns(sim_with, tmp_path, fault_table):
    sim = sim_with(**scenario_overrides())
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config(sim, tmp_path, streams=STREAMS)))
    # Run A's import start is answered 429 with Retry-After 2: A has uploaded, not imported.
    sim.add_fault({"kind": "http", "status": 429, "retry_after": 2, "method": "POST",
                   "path": rf"/imports/{PRODUCTS_IMPORT}/tasks$"})  # fmt: skip

    first = LiveRun(config_file, tmpdir, tmp_path)
    first.write(products("A"), close=True)
    wait_for(lambda: fired(sim) == 1, "run A uploaded and waits to start its import")
    second = LiveRun(config_file, tmpdir, tmp_path)
    second.write(products("B"), close=True)
    a, b = first.finish(), second.finish()

    assert (a.returncode, b.returncode) == (0, 0), a.stderr + b.stderr
    assert a.states == [{"A": 3}]
    assert b.states == [{"B": 3}]
    codes = sorted(code for code, _, _ in landed(sim)["products"])
    assert codes == ["A1", "A2", "A3", "B1", "B2", "B3"]
    assert counters(sim)["products"] == (2, 2)
    assert "Waiting for another run on this machine" in b.stderr
    fault_table.rows.append(
        {"fault": "two runs, one file, one machine (file lock)", "runs": 2, "rows sent": 6,
         "rows landed": f"{len(codes)}/6", "duplicates": 0, "exit code": "0 ∥ 0"}
    )  # fmt: skip
