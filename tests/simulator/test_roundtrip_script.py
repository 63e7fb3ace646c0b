"""The console-script simulator driven by a standalone script that follows anaplan-api.md."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).with_name("roundtrip_script.py")


def test_standalone_round_trip_lands_rows(simulator_process) -> None:
    sim = simulator_process
    done = subprocess.run(
        [sys.executable, str(SCRIPT), sim.url, "integration@example.com", "demo-password"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads(done.stdout)
    model = summary["model"]
    assert {s["counts"]["successRowCount"] for s in summary["imports"].values()} == {"2"}
    assert [(i["code"], i["name"]) for i in sim.list_items(model, "Products")] == [
        ("RT1", "Round trip one"), ("RT2", 'Round, trip "two"')]  # fmt: skip
    assert sim.module_rows(model, "Sales")[1] == {
        "dimensions": {"Products": "RT2", "Regions": "APAC"},
        "values": {"Units": 1, "Revenue": 1, "Note": "b"},
    }
    assert all(f["uploads"] == 1 for f in sim.files())
