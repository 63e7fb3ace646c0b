"""The simulator leaves the process as it found it: csv's field limit and the garbage collector."""

from __future__ import annotations

import csv
import gc
import subprocess
import sys

from tests.kit.simkit import PRODUCTS_FILE, PRODUCTS_HEADER, PRODUCTS_IMPORT, Client


def test_importing_the_simulator_changes_no_csv_limit() -> None:
    code = (
        "import csv; before = csv.field_size_limit(); import target_anaplan.simulator; "
        "print(csv.field_size_limit() == before)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_the_csv_limit_is_raised_while_any_simulator_runs(sim_with) -> None:
    before = csv.field_size_limit()
    first, second = sim_with(), sim_with()
    assert csv.field_size_limit() > 2**30
    first.stop()
    assert csv.field_size_limit() > 2**30  # the second one still runs
    second.stop()
    assert csv.field_size_limit() == before


def test_an_import_leaves_the_garbage_collector_on(api: Client) -> None:
    api.upload(PRODUCTS_FILE, PRODUCTS_HEADER + "P1,Widget,Tools,2,2024-01-01,true\n")
    assert api.run(PRODUCTS_IMPORT)["result"]["successful"] is True
    assert gc.isenabled()
