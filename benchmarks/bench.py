"""Benchmark: target-anaplan (into the simulator), the raw ceiling and meltanolabs-target-csv.

Not a test: it prints, and optionally writes, a markdown report of records/s, peak RSS
and bytes for each program and each record count.

    python benchmarks/bench.py --records 1000000 --tracking --output results.md

For each N it generates one Singer stream file of N records (11 columns: text with
quotes, commas, newlines and non-ASCII characters, numbers, dates, date-times,
booleans, nulls), cached under ``.bench/``. Each program then runs as a subprocess of
``benchmarks/measure.py``, which feeds it that file as stdin (no pipe through Python)
and reads the program's own peak RSS from ``RUSAGE_CHILDREN``:

* the **ceiling**: a bare loop that parses each line with orjson and hands the RECORD's
  values to ``csv.writer`` (no validation, no conversion, no upload): what Python can do
  with this input at all (orjson lives in its own virtualenv, ``.bench/venv-ceiling``);
* **target-anaplan** in ``all`` mode, into a list of a simulator started with
  ``benchmarks/scenario.json``, with record validation on (the default); the import
  really runs, and its task result is checked for N loaded rows;
* with ``--tracking``, target-anaplan in ``upsert`` mode with a fresh change store (the
  first load: every row new) and again on the same input (nothing changed: nothing is
  uploaded and no import runs);
* **meltanolabs-target-csv** (``--skip-csv`` leaves it out), in its own virtualenv,
  ``.bench/venv-csv``, since its singer-sdk pin may differ from ours;
* with ``--before REV``, target-anaplan as it was at git revision REV, target and
  simulator both (its package extracted into ``.bench/``, put first on ``PYTHONPATH``;
  the installed dependencies are today's), in all mode into a simulator of its own, in
  every round: how much faster the current code is, measured in the same run.

Columns of the table:

* wall s, records/s: the process from start to exit (start-up, reading, validation, CSV,
  upload, import, everything);
* own work s, records/s: target-anaplan from start to the end of its input (every record
  read, validated, formatted and spooled; chunks finished by then are already uploaded):
  its own work before the commit's last upload and the import;
* x ceiling: records/s of the own work, or of the whole run for the others, against the
  ceiling loop's;
* peak RSS: the process alone;
* bytes raw / gzip: the CSV uploaded as the target logged it (target-anaplan), or the
  size of the CSV file written.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = Path(__file__).with_name("scenario.json")
MEASURE = Path(__file__).with_name("measure.py")
WORK = ROOT / ".bench"
CSV_VENV = WORK / "venv-csv"
STREAM = "orders"
INPUT_VERSION = 1  # bump when the generated records change
MODEL_ID = "B0000000000000000000000000000001"
IMPORT_ID = "112000000000"

SCHEMA = {
    "type": "object",
    "properties": {
        "order_id": {"type": "integer"},
        "code": {"type": "string"},
        "name": {"type": "string"},
        "customer": {"type": "string"},
        "comment": {"type": ["string", "null"]},
        "city": {"type": "string"},
        "amount": {"type": "number"},
        "quantity": {"type": "integer"},
        "order_date": {"type": "string", "format": "date"},
        "updated_at": {"type": "string", "format": "date-time"},
        "paid": {"type": "boolean"},
    },
    "additionalProperties": False,
}
# Anaplan header name -> record field; the header order differs from the schema's.
COLUMNS = {
    "Code": "code",
    "Name": "name",
    "Order Id": "order_id",
    "Customer": "customer",
    "Comment": "comment",
    "City": "city",
    "Amount": "amount",
    "Quantity": "quantity",
    "Order Date": "order_date",
    "Updated At": "updated_at",
    "Paid": "paid",
}
CUSTOMERS = ["Zoë Müller", "José Álvarez", "Łukasz Wróbel", "山田 太郎", "Søren Ærø", "O'Brien"]
CITIES = ["München", "São Paulo", "Kraków", "東京", "Zürich, CH", "Reykjavík"]
COMMENTS = [
    'Said "deliver after 5pm", gate code 1234',
    "Line one\nline two, with a comma",
    "Crème brûlée — très bien ✓",
    "plain comment",
    None,
    "Tab\tseparated and 'single' quotes",
]


def generate(path: Path, count: int) -> None:
    """Write a Singer stream of ``count`` records (with a STATE every 10,000)."""
    dumps = json.dumps
    with path.open("w", encoding="utf-8", newline="\n") as out:
        out.write(dumps({"type": "SCHEMA", "stream": STREAM, "schema": SCHEMA,
                         "key_properties": ["order_id"]}) + "\n")  # fmt: skip
        for i in range(1, count + 1):
            comment = COMMENTS[i % len(COMMENTS)]
            name = f'Order {i}, size {i % 7} "{i % 13}"'
            day = 1 + i % 28
            record = (
                f'{{"order_id": {i}, "code": "ORD-{i:08d}", '
                f'"name": {dumps(name)}, '
                f'"customer": {dumps(CUSTOMERS[i % 6], ensure_ascii=False)}, '
                f'"comment": {dumps(comment, ensure_ascii=False)}, '
                f'"city": {dumps(CITIES[i % 6], ensure_ascii=False)}, '
                f'"amount": {i % 100000}.{i % 100:02d}, "quantity": {i % 50}, '
                f'"order_date": "2024-{1 + i % 12:02d}-{day:02d}", '
                f'"updated_at": "2024-03-{day:02d}T{i % 24:02d}:{i % 60:02d}:07.{i % 1000:03d}Z", '
                f'"paid": {"true" if i % 3 else "false"}}}'
            )
            out.write(f'{{"type": "RECORD", "stream": "{STREAM}", "record": {record}}}\n')
            if i % 10_000 == 0:
                out.write(dumps({"type": "STATE", "value": {"orders": {"order_id": i}}}) + "\n")
        out.write(dumps({"type": "STATE", "value": {"orders": {"order_id": count}}}) + "\n")


def input_file(count: int) -> Path:
    """The cached stream file of ``count`` records, generated once."""
    path = WORK / f"input-v{INPUT_VERSION}-{count}.singer"
    if not path.exists():
        print(f"generating {count:,} records into {path} ...", file=sys.stderr)
        partial = path.with_suffix(".partial")
        generate(partial, count)
        partial.replace(path)
    return path


@dataclass
class Run:
    """One program's run on one input."""

    target: str
    records: int
    wall_s: float
    peak_rss_bytes: int
    own_work_s: float | None = None
    raw_bytes: int | None = None
    gzip_bytes: int | None = None
    landed: int | None = None
    round: int = 0  # -1: run once per count, outside the rounds


def measured(
    command: list[str], stdin: Path, name: str, env: dict[str, str] | None = None
) -> tuple[dict[str, Any], Path]:
    """Run ``command`` under measure.py (in ``env``, by default this one's); fail loudly with
    its stderr if it fails."""
    out, err = WORK / f"{name}.stdout", WORK / f"{name}.stderr"
    wrapper = [sys.executable, str(MEASURE), "--stdin", str(stdin), "--stdout", str(out)]
    result = subprocess.run(
        [*wrapper, "--stderr", str(err), "--", *command],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    stats = json.loads(result.stdout.strip().splitlines()[-1])
    if stats["returncode"] != 0:
        tail = err.read_text(errors="replace")[-3000:]
        raise SystemExit(f"{name} exited {stats['returncode']}:\n{tail}")
    return stats, err


class SimulatorProcess:
    """``anaplan-simulator`` as a subprocess on a free port (in ``env``, by default this
    one's)."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        command = [_script("anaplan-simulator"), "--scenario", str(SCENARIO), "--port", "0"]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
        line = self.process.stdout.readline() if self.process.stdout else ""
        match = re.search(r"(http://127\.0\.0\.1:\d+)", line)
        if not match:
            self.process.kill()
            raise SystemExit(f"the simulator did not start: {line!r}")
        self.url = match.group(1)

    def call(self, method: str, path: str) -> Any:
        """A control API call."""
        body = b"" if method == "POST" else None
        request = urllib.request.Request(self.url + path, method=method, data=body)
        with urllib.request.urlopen(request, timeout=600) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        """Stop the simulator (SIGTERM, then wait)."""
        self.process.terminate()
        self.process.wait(timeout=30)


def _script(name: str) -> str:
    """A console script of the environment running this benchmark."""
    path = Path(sys.executable).with_name(name)
    if not path.exists():
        raise SystemExit(f"{name} not found next to {sys.executable}: pip install -e .")
    return str(path)


def run_anaplan(
    sim: SimulatorProcess,
    source: Path,
    count: int,
    *,
    mode: str = "all",
    change_store: Path | None = None,
    label: str = "target-anaplan",
    expect_rows: int | None = None,
    env: dict[str, str] | None = None,
) -> Run:
    """target-anaplan into the simulator's list (all mode unless ``mode``); checks that the
    rows it sent landed (``expect_rows``, by default all ``count``)."""
    sim.call("POST", "/__sim__/reset")
    stream = {"file": "orders.csv", "imports": ["Orders from orders.csv"], "mode": mode,
              "columns": COLUMNS}  # fmt: skip
    config = {
        "api_base_url": sim.url + "/2/0",
        "auth_base_url": sim.url,
        "oauth_base_url": sim.url,
        "username": "bench@example.com",
        "password": "bench-password",
        "workspace": "Benchmark Workspace",
        "model": "Benchmark Model",
        "poll_interval_s": 0.05,
        "streams": {STREAM: stream},
    }
    if change_store is not None:
        config["change_store"] = f"sqlite:///{change_store}"
    config_path = WORK / "target-anaplan.json"
    config_path.write_text(json.dumps(config))
    stats, err = measured(
        [_script("target-anaplan"), "--config", str(config_path)], source, "target-anaplan", env
    )
    log = err.read_text(errors="replace")
    expected = count if expect_rows is None else expect_rows
    sent = sum(int(n) for n in re.findall(r"Committed stream \S+: (\d+) rows", log))
    if sent != expected:
        raise SystemExit(f"{label} committed {sent} rows, not {expected}:\n{log[-3000:]}")
    tasks = [t for t in sim.call("GET", "/__sim__/tasks") if t["actionId"] == IMPORT_ID]
    landed = sum(
        _detail_value(t["result"]["details"][0]["values"], "successRowCount") or 0 for t in tasks
    )
    if landed != expected:
        raise SystemExit(f"the imports loaded {landed} rows, not {expected}: {tasks[-1:]}")
    raw = sum(int(n) for n in re.findall(r"Committed stream \S+: \d+ rows, (\d+) bytes", log))
    gzip = sum(int(n) for n in re.findall(r"\((\d+) sent gzip", log))
    return Run(
        target=label,
        records=count,
        wall_s=stats["wall_s"],
        peak_rss_bytes=stats["peak_rss_bytes"],
        own_work_s=_input_read_at(log) - stats["started"],
        raw_bytes=raw or None,
        gzip_bytes=gzip or None,
        landed=landed,
    )


def _input_read_at(log: str) -> float:
    """When the target had read (validated, formatted, spooled) its whole input: the time
    of its reader's summary line, as an epoch."""
    found = re.search(r"^(\S+ \S+) \| INFO .*completed processing", log, re.MULTILINE)
    if not found:
        raise SystemExit("target-anaplan's log has no 'completed processing' line")
    when = datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S,%f")
    return when.replace(tzinfo=datetime.now().astimezone().tzinfo).timestamp()


def run_tracking(sim: SimulatorProcess, source: Path, count: int) -> list[Run]:
    """Upsert with change tracking on a fresh store, then again on the same input."""
    store = WORK / "changes.sqlite"
    for leftover in WORK.glob("changes.sqlite*"):
        leftover.unlink()
    first = run_anaplan(sim, source, count, mode="upsert", change_store=store,
                        label="target-anaplan upsert, first load")  # fmt: skip
    again = run_anaplan(sim, source, count, mode="upsert", change_store=store,
                        label="target-anaplan upsert, nothing changed", expect_rows=0)  # fmt: skip
    return [first, again]


def before_env(revision: str) -> dict[str, str]:
    """An environment whose ``target_anaplan`` is the package at git ``revision``."""
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", revision],
                            check=True, capture_output=True, text=True).stdout.strip()  # fmt: skip
    package = WORK / f"before-{commit}"
    if not (package / "target_anaplan").is_dir():
        package.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "target_anaplan"],
                                 check=True, capture_output=True).stdout  # fmt: skip
        subprocess.run(["tar", "-x", "-C", str(package)], input=archive, check=True)
    env = {**os.environ, "PYTHONPATH": str(package)}
    where = "import target_anaplan; print(target_anaplan.__file__)"
    found = subprocess.run([sys.executable, "-c", where], cwd=WORK,  # not ROOT: its package
                           env=env, check=True, capture_output=True, text=True).stdout  # fmt: skip
    if not found.startswith(str(package)):
        raise SystemExit(f"{revision}'s package is not the one imported: {found.strip()}")
    return env


def run_before(env: dict[str, str], revision: str, source: Path, count: int) -> Run:
    """target-anaplan at ``revision`` in all mode, into that revision's simulator."""
    sim = SimulatorProcess(env)
    try:
        return run_anaplan(sim, source, count, label=f"target-anaplan at {revision}", env=env)
    finally:
        sim.stop()


CEILING = """\
import csv, sys, orjson
write = csv.writer(open(sys.argv[1], "w", newline="")).writerow
loads = orjson.loads
for line in sys.stdin.buffer:
    message = loads(line)
    if message["type"] == "RECORD":
        write(message["record"].values())
"""


def run_ceiling(source: Path, count: int) -> Run:
    """The bare loop: orjson parses each line, csv.writer writes the record's values."""
    python = _venv(WORK / "venv-ceiling", "orjson") / "bin" / "python"
    output = WORK / "ceiling.csv"
    stats, _ = measured([str(python), "-c", CEILING, str(output)], source, "ceiling")
    return Run(
        target="ceiling: orjson + csv.writer",
        records=count,
        wall_s=stats["wall_s"],
        peak_rss_bytes=stats["peak_rss_bytes"],
        raw_bytes=output.stat().st_size,
    )


def _detail_value(values: Any, name: str) -> int | None:
    """A count from a task result detail: Anaplan's flat [key, value, key, value, ...]."""
    if isinstance(values, dict):
        return values.get(name)
    pairs = dict(zip(values[::2], values[1::2], strict=True)) if values else {}
    return int(pairs[name]) if name in pairs else None


def _venv(path: Path, package: str) -> Path:
    """A virtualenv of its own with ``package``, made on first use."""
    if not (path / "bin" / "python").exists():
        print(f"installing {package} into {path} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        subprocess.run([str(path / "bin" / "pip"), "install", "-q", package], check=True)
    return path


def csv_target() -> str:
    """meltanolabs-target-csv's executable, installed into its own venv on first use."""
    return str(_venv(CSV_VENV, "meltanolabs-target-csv") / "bin" / "target-csv")


def run_csv(source: Path, count: int) -> Run:
    """meltanolabs-target-csv writing one CSV file (its defaults: validation on)."""
    output = WORK / "csv-out"
    shutil.rmtree(output, ignore_errors=True)
    output.mkdir(parents=True)
    config_path = WORK / "target-csv.json"
    config_path.write_text(json.dumps({"output_path": str(output)}))
    stats, _ = measured([csv_target(), "--config", str(config_path)], source, "target-csv")
    files = list(output.rglob("*.csv"))
    return Run(
        target="meltanolabs-target-csv",
        records=count,
        wall_s=stats["wall_s"],
        peak_rss_bytes=stats["peak_rss_bytes"],
        raw_bytes=sum(f.stat().st_size for f in files),
    )


def table(runs: list[Run]) -> str:
    """The results as a markdown table: per program and count, its median run (by wall)."""
    ceiling = {
        run.records: run.records / run.wall_s
        for run in medians(runs)
        if run.target.startswith("ceiling")
    }
    lines = [
        "| program | records | wall s | records/s | own work s | records/s own work "
        "| x ceiling | peak RSS MiB | bytes raw | bytes gzip |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in medians(runs):
        own = run.own_work_s
        rate = run.records / (own or run.wall_s)
        overall = run.records / run.wall_s
        peak = max(
            r.peak_rss_bytes for r in runs if (r.target, r.records) == (run.target, run.records)
        )
        lines.append(
            f"| {run.target} | {run.records:,} | {run.wall_s:.1f} | {overall:,.0f} "
            f"| {_or_dash(own, '{:.1f}')} | {_or_dash(own and run.records / own, '{:,.0f}')} "
            f"| {rate / ceiling[run.records]:.2f} "
            f"| {peak / 2**20:,.0f} "
            f"| {_or_dash(run.raw_bytes, '{:,}')} | {_or_dash(run.gzip_bytes, '{:,}')} |"
        )
    return "\n".join(lines)


def medians(runs: list[Run]) -> list[Run]:
    """Each program's median run (by wall time) per record count, in the order first run."""
    groups: dict[tuple[str, int], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.target, run.records), []).append(run)
    return [sorted(group, key=lambda r: r.wall_s)[len(group) // 2] for group in groups.values()]


def ratios(runs: list[Run]) -> str:
    """The comparisons the goals are stated in, per record count: each taken within a round
    (programs run one after the other), then the median and the range over the rounds."""
    lines = []
    for count in sorted({run.records for run in runs}):
        rounds: dict[int, dict[str, Run]] = {}
        for run in runs:
            if run.records == count and run.round >= 0:
                rounds.setdefault(run.round, {})[run.target] = run
        found: dict[str, list[float]] = {}
        for by in rounds.values():
            anaplan = by["target-anaplan"]
            assert anaplan.own_work_s is not None
            ceiling = by["ceiling: orjson + csv.writer"]
            found.setdefault("own work, x the ceiling's records/s", []).append(
                ceiling.wall_s / anaplan.own_work_s
            )
            for name, before in by.items():
                if name.startswith("target-anaplan at "):
                    found.setdefault(f"end to end, x {name}'s records/s", []).append(
                        before.wall_s / anaplan.wall_s
                    )
            first = by.get("target-anaplan upsert, first load")
            again = by.get("target-anaplan upsert, nothing changed")
            if first is not None and again is not None:
                found.setdefault("upsert first load, x all mode's time", []).append(
                    first.wall_s / anaplan.wall_s
                )
                found.setdefault("upsert with nothing changed, x all mode's time", []).append(
                    again.wall_s / anaplan.wall_s
                )
        anaplan_walls = sorted(
            r.wall_s for r in runs if (r.records, r.target) == (count, "target-anaplan")
        )
        for other in runs:
            if other.records == count and other.round < 0:  # run once per count
                found[f"end to end, x {other.target}'s records/s"] = [
                    other.wall_s / anaplan_walls[len(anaplan_walls) // 2]
                ]
        parts = []
        for what, values in found.items():
            values.sort()
            spread = f" ({values[0]:.2f}-{values[-1]:.2f})" if len(values) > 1 else ""
            parts.append(f"{what} {values[len(values) // 2]:.2f}{spread}")
        lines.append(
            f"* {count:,} records, median over {len(rounds)} round(s): " + "; ".join(parts) + "."
        )
    return "\n".join(lines)


def _or_dash(value: float | None, form: str) -> str:
    return "-" if value is None else form.format(value)


def machine() -> str:
    """One line saying where the numbers come from."""
    return (
        f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}, {_proc('model name')}), "
        f"{_proc('MemTotal')} memory, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}, "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
    )


def _proc(key: str) -> str:
    """A value from /proc/cpuinfo or /proc/meminfo (Linux), or '?' elsewhere."""
    for name in ("/proc/cpuinfo", "/proc/meminfo"):
        with contextlib.suppress(OSError):
            for line in Path(name).read_text().splitlines():
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
    return "?"


def main(argv: list[str] | None = None) -> int:
    """Generate inputs, run every program for each N, print (and write) the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, action="append",
                        help="records per run; repeat for several (default 100000)")  # fmt: skip
    parser.add_argument("--skip-csv", action="store_true", help="do not run target-csv")
    parser.add_argument("--tracking", action="store_true",
                        help="also run upsert, first load and unchanged")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=1,
                        help="runs of each program per count (target-csv: one)")  # fmt: skip
    parser.add_argument("--before", metavar="REV",
                        help="also run target-anaplan as it was at git revision REV")  # fmt: skip
    parser.add_argument("--output", type=Path, help="also write the markdown report here")
    args = parser.parse_args(argv)
    env = before_env(args.before) if args.before else None
    counts = args.records or [100_000]
    WORK.mkdir(exist_ok=True)
    runs: list[Run] = []
    sim = SimulatorProcess()
    try:
        for count in counts:
            source = input_file(count)
            for number in range(args.rounds):
                print(f"round {number + 1}, {count:,} records ...", file=sys.stderr)
                round_runs = [run_ceiling(source, count), run_anaplan(sim, source, count)]
                if args.tracking:
                    round_runs += run_tracking(sim, source, count)
                if env is not None:
                    round_runs.append(run_before(env, args.before, source, count))
                for run in round_runs:
                    run.round = number
                runs += round_runs
                sim.call("POST", "/__sim__/reset")  # frees the loaded rows before the next run
            if not args.skip_csv:
                print(f"meltanolabs-target-csv, {count:,} records ...", file=sys.stderr)
                csv_run = run_csv(source, count)
                csv_run.round = -1
                runs.append(csv_run)
    finally:
        sim.stop()
    arguments = argv if argv is not None else sys.argv[1:]
    command = " ".join(["python benchmarks/bench.py", *arguments])
    report = f"{table(runs)}\n\n{ratios(runs)}\n\nCommand: `{command}`\n\nMachine: {machine()}.\n"
    print(report)
    if args.output:
        args.output.write_text(report, encoding="utf-8")
    return 0


if __name__ == "__main__":
    start = time.perf_counter()
    code = main()
    print(f"benchmark took {time.perf_counter() - start:.0f} s", file=sys.stderr)
    sys.exit(code)
