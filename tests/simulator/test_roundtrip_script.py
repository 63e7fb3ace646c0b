"""The console-script simulator driven by a standalone script that follows anaplan-api.md."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import requests

from tests.kit.simkit import console_simulator

SCRIPT = Path(__file__).with_name("roundtrip_script.py")


def test_standalone_round_trip_lands_rows() -> None:
    with console_simulator() as url:
        done = subprocess.run(
            [sys.executable, str(SCRIPT), url, "integration@example.com", "demo-password"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        summary = json.loads(done.stdout)
        model = summary["model"]
        assert {s["counts"]["successRowCount"] for s in summary["imports"].values()} == {"2"}
        items = requests.get(f"{url}/__sim__/models/{model}/lists/Products", timeout=5).json()
        assert [(i["code"], i["name"]) for i in items["items"]] == [
            ("RT1", "Round trip one"), ("RT2", 'Round, trip "two"')]  # fmt: skip
        rows = requests.get(f"{url}/__sim__/models/{model}/modules/Sales", timeout=5).json()
        assert rows["rows"][1] == {
            "dimensions": {"Products": "RT2", "Regions": "APAC"},
            "values": {"Units": 1, "Revenue": 1, "Note": "b"},
        }
        files = requests.get(f"{url}/__sim__/files", timeout=5).json()
        assert all(f["uploads"] == 1 for f in files)
