"""Benchmark the simulator's import alone: the benchmark stream's CSV into its list.

Not a test: it prints rows/s and memory for one import of N rows.

    python benchmarks/sim_import.py --records 1000000

The CSV is exactly what target-anaplan uploads for ``benchmarks/bench.py``'s stream of N
records: made once by running the target into an in-process simulator, and cached as
``.bench/orders-v<INPUT_VERSION>-<N>.csv``. The measured import then runs in this process on
a fresh simulator state (with the garbage collector paused, as a simulator task runs it), on
that content read as 25 MB chunks (at byte offsets, not row ends: any client may cut a file
anywhere), and must report N rows loaded. Printed: the import's wall time and rows/s, the
CSV's size, and the process's peak RSS before the import (the chunks: the one copy of the
file the simulator holds) and after it (the chunks plus the N list items it made, which stay).
"""

from __future__ import annotations

import argparse
import functools
import resource
import sys
import time
from pathlib import Path

import bench

from target_anaplan.simulator import Simulator
from target_anaplan.simulator.engine import run_import
from target_anaplan.simulator.scenario import load_scenario
from target_anaplan.simulator.state import Clock, SimState
from target_anaplan.simulator.tweaks import ProcessTweaks

CHUNK_BYTES = 25_000_000
FILE_ID = "113000000000"
USER = "bench@example.com"


class _InProcess(bench.SimulatorProcess):
    """bench.run_anaplan's simulator, served from this process so its files can be read."""

    def __init__(self, sim: Simulator) -> None:  # no subprocess to start
        self.sim = sim
        self.url = sim.url

    def stop(self) -> None:
        """Stop serving."""
        self.sim.stop()


def uploaded_csv(count: int) -> Path:
    """The CSV target-anaplan uploads for the benchmark stream of ``count`` records."""
    path = bench.WORK / f"orders-v{bench.INPUT_VERSION}-{count}.csv"
    if path.exists():
        return path
    source = bench.input_file(count)
    print(f"running target-anaplan on {count:,} records to get its CSV ...", file=sys.stderr)
    served = _InProcess(Simulator(bench.SCENARIO).start())
    try:
        bench.run_anaplan(served, source, count)
        with served.sim.state.lock:
            file = served.sim.state.files[bench.MODEL_ID][FILE_ID]
            data = b"".join(file.content[USER])
    finally:
        served.stop()
    partial = path.with_suffix(".partial")
    partial.write_bytes(data)
    partial.replace(path)
    return path


def peak_rss_mib() -> float:
    """This process's peak RSS so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(path: Path, count: int) -> str:
    """Run the import once on a fresh state; the report line."""
    scenario = load_scenario(bench.SCENARIO)
    model = scenario.models[bench.MODEL_ID]
    state = SimState(scenario, Clock())
    with path.open("rb") as file:
        chunks = list(iter(functools.partial(file.read, CHUNK_BYTES), b""))
    before = peak_rss_mib()
    start = time.perf_counter()
    with ProcessTweaks.collector_paused():  # as the simulator's task runner does
        outcome = run_import(state, model, model.imports[bench.IMPORT_ID], chunks)
    wall = time.perf_counter() - start
    landed = bench._detail_value(outcome.result["details"][0]["values"], "successRowCount")
    if landed != count:
        raise SystemExit(f"the import loaded {landed} rows, not {count}: {outcome.result}")
    size = sum(map(len, chunks)) / 1e6
    return (
        f"{count:,} rows ({size:,.0f} MB CSV, {len(chunks)} chunks): {wall:.2f} s, "
        f"{count / wall:,.0f} rows/s; peak RSS {before:,.0f} -> {peak_rss_mib():,.0f} MiB"
    )


def main(argv: list[str] | None = None) -> int:
    """Make (or reuse) the CSV, import it, print the result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="rows (default 1M)")
    args = parser.parse_args(argv)
    bench.WORK.mkdir(exist_ok=True)
    print(measure(uploaded_csv(args.records), args.records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
