"""Issue 5's proof: a real two-stream load under every fault class, checked the same way.

Each case runs ``target-anaplan`` as a process against the simulator with the case's
faults, then checks: the exit code; a failure is one clear line; every emitted STATE
covers only rows already in the model; each commit's import ran exactly once on its own
upload; the spool is gone. If the load did not complete, the faults are cleared and the
tap's output is replayed from the last emitted STATE: the rerun must leave the model
exactly equal to the input. Adding a fault class is one line in ``CASES``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from target_anaplan.simulator import Simulator
from tests.kit.faultkit import (
    PRODUCTS,
    PRODUCTS_IMPORT,
    RECALC_PROCESS,
    SALES_IMPORT,
    SALES_PROCESS,
    SIGKILL,
    SIGTERM,
    Context,
    Hook,
    LiveRun,
    RunResult,
    Table,
    cancel_in_anaplan,
    commits_for,
    config,
    counters,
    expected_product,
    expected_rows,
    fired,
    landed,
    loaded_codes,
    private,
    rows_after,
    scenario_overrides,
    singer_input,
    tasks_of,
    wait_for,
)
from tests.kit.simkit import MODEL_ID, PASSWORD

CHUNK, COMPLETE = r"/files/\d+/chunks/\d+$", r"/files/\d+/complete$"
TASKS, TASK = r"/(imports|processes)/\d+/tasks$", r"/(imports|processes)/\d+/tasks/\w+$"
DUMP = r"/dump(s/\d+)?(/chunks(/\d+)?)?$"


def http(status: int, method: str | None = None, path: str | None = None, **more: Any) -> dict:
    """An HTTP fault; 5xx and 429 answer ``Retry-After: 0`` unless told otherwise."""
    spec = {"kind": "http", "status": status, "method": method, "path": path, **more}
    if status >= 429:
        spec.setdefault("retry_after", 0)
    return {k: v for k, v in spec.items() if v is not None}


def drop(method: str, path: str, **more: Any) -> dict:
    return {"kind": "drop", "method": method, "path": path, **more}


def task(kind: str, action_id: str, **more: Any) -> dict:
    return {"kind": kind, "action_id": action_id, **more}


# Hooks: what happens while the run is live (default: all input at once).


def after_first_commit(change: Callable[[Simulator], None]) -> Hook:
    """Let the first products commit finish, change the world, then send the rest."""

    def hook(ctx: Context) -> None:
        wait_for(lambda: ctx.run.stderr_has("Committed stream products"), "first commit")
        change(ctx.sim)
        ctx.write_rest()

    return hook


def cancel_held_import(ctx: Context) -> None:
    """Someone cancels the products import in Anaplan while it runs."""
    ctx.write_rest()
    held = wait_for(
        lambda: [t for t in tasks_of(ctx.sim, PRODUCTS_IMPORT) if t["taskState"] == "IN_PROGRESS"],
        "a running products import",
    )
    cancel_in_anaplan(ctx.sim, PRODUCTS_IMPORT, held[0]["taskId"])


def sigterm_mid_stream(ctx: Context) -> None:
    """SIGTERM while the second products commit's import runs and input is still open."""
    wait_for(lambda: ctx.run.stderr_has("Committed stream products"), "first commit")
    ctx.sim.add_fault(task("hold", PRODUCTS_IMPORT, polls=FOREVER))
    ctx.write_rest(close=False)
    # Polled once: the target is waiting for it (a signal during the POST itself cannot
    # know the task id yet).
    wait_for(
        lambda: [t for t in tasks_of(ctx.sim, PRODUCTS_IMPORT)[1:] if t["polls"] >= 1],
        "second products import polled",
    )
    ctx.run.signal(SIGTERM)


def sigkill_mid_upload(ctx: Context) -> None:
    """SIGKILL while a chunk PUT waits out a long Retry-After (mid-upload)."""
    ctx.write_rest()
    wait_for(lambda: fired(ctx.sim) >= 1, "the chunk PUT answered 429")
    ctx.run.signal(SIGKILL)


@dataclass(frozen=True)
class Case:
    """One fault class: faults injected before the run, a live hook, and what must happen."""

    name: str
    faults: tuple[dict, ...] = ()
    exit: int = 0
    message: str = ""  # must appear in the one error line when the run fails
    says: str = ""  # must appear in the log (stderr)
    hook: Hook | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    restore: Callable[[Simulator], None] | None = None  # undo before the rerun
    accepted_rejects: int = 0  # rows Anaplan may drop because thresholds allow it
    rerun: bool = False  # run again even if every row landed (the run failed after that)

    @property
    def slug(self) -> str:
        """The test id: the name in lower case, words joined by '-' (for ``-k``)."""
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")


def case(name: str, *faults: dict, **kw: Any) -> Case:
    return Case(name, tuple(faults), **kw)


EXPIRE_TOKEN = after_first_commit(lambda sim: sim.advance_clock(2200))
LOCK_MODEL = after_first_commit(lambda sim: sim.set_model_state(MODEL_ID, "LOCKED"))
ARCHIVE_MODEL = after_first_commit(lambda sim: sim.set_model_state(MODEL_ID, "ARCHIVED"))
UNLOCK = {"restore": lambda sim: sim.set_model_state(MODEL_ID, "UNLOCKED")}
ACCEPTED = "Anaplan failed 1 and ignored 0 rows (accepted by settings)"
ACCEPT = {"settings": {"max_failed_rows": None}, "accepted_rejects": 1, "says": ACCEPTED}
FOREVER = 1_000_000
KILL = {"exit": -9, "settings": {"retry_deadline_s": 60}}
TERM = {"exit": 1, "says": "Asked Anaplan to cancel 1 running task(s)"}

# One line per fault class (name, faults..., expected exit and message, hook, settings).
# fmt: off
CASES = [
    case("no fault"),
    case("429 storm on every call (Retry-After 0)", http(429, nth=4, following=5)),
    case("429 on chunk PUTs (Retry-After 1)", http(429, "PUT", CHUNK, retry_after=1, following=1)),
    case("503 on auth (/token/authenticate)", http(503, "POST", "^/token/authenticate$")),
    case("500 on list files", http(500, "GET", r"/files$")),
    case("503 on list imports", http(503, "GET", r"/imports/?$", following=1)),
    case("500 on import metadata", http(500, "GET", r"/imports/\d+$")),
    case("503 on chunk PUT", http(503, "PUT", CHUNK, nth=2)),
    case("500 on chunk PUT (no Retry-After)", http(500, "PUT", CHUNK, retry_after=None)),
    case("503 on upload complete", http(503, "POST", COMPLETE, nth=2)),
    case("chunk PUT fails past the retry budget (restart)", http(503, "PUT", CHUNK, nth=2,
         following=8), says="starting again from chunk 0"),
    case("503 on task POST (2nd commit)", http(503, "POST", TASKS, nth=2)),
    case("500 on task POST (process)", http(500, "POST", r"/processes/\d+/tasks$")),
    case("503 on task GET", http(503, "GET", TASK, nth=2, following=2)),
    case("409 model busy on task POST", http(409, "POST", TASKS, nth=2)),
    case("500 on dump download (rows rejected, accepted)",
         task("reject", PRODUCTS_IMPORT, rows=1), http(500, "GET", DUMP, following=1), **ACCEPT),
    case("503 storm beyond the retry budget", http(503, "GET", TASK, following=50), exit=1,
         message="Gave up"),
    case("dropped connection on chunk PUT", drop("PUT", CHUNK, nth=2)),
    case("dropped connection on complete", drop("POST", COMPLETE)),
    case("dropped connection on task POST (2nd commit)", drop("POST", TASKS, nth=2)),
    case("dropped connection on task GET", drop("GET", TASK, nth=3)),
    case("token expiry mid-upload (401 on chunk PUT)", http(401, "PUT", CHUNK, nth=2)),
    case("token expiry mid-run (clock +2200 s)", hook=EXPIRE_TOKEN),
    case("model locked mid-run, then released", hook=LOCK_MODEL, exit=1, message="locked",
         **UNLOCK),
    case("423 on upload start, then ok", http(423, "POST", r"/files/\d+$", nth=2), exit=1,
         message="locked"),
    case("model-lock queue (held tasks)", task("hold", PRODUCTS_IMPORT, polls=5, tasks=-1),
         task("hold", SALES_PROCESS, polls=5)),
    case("model archived mid-run", hook=ARCHIVE_MODEL, exit=1, message="archived", **UNLOCK),
    case("import rejects rows (default thresholds)", task("reject", PRODUCTS_IMPORT, rows=2),
         exit=1, message="Failure dump:"),
    case("process step rejects rows (default thresholds)", task("reject", SALES_IMPORT, rows=1),
         exit=1, message="Failure dump:"),
    case("import rejects rows (max_failed_rows null)", task("reject", PRODUCTS_IMPORT, rows=1),
         **ACCEPT),
    case("import failed", task("fail", PRODUCTS_IMPORT, message="Mapping broken"), exit=1,
         message="Mapping broken"),
    case("task CANCELLED in Anaplan", task("hold", PRODUCTS_IMPORT, polls=FOREVER),
         hook=cancel_held_import, exit=1, message="cancelled"),
    case("process step fails", task("fail", SALES_IMPORT, message="Sales step broken"), exit=1,
         message="Sales step broken"),
    case("failure in a cascaded commit (sales planned first)",
         task("fail", SALES_IMPORT, message="Sales step broken"), exit=1,
         message="Sales step broken", settings={"load_order": ["sales", "products"]}),
    case("failure in after_load", http(423, "POST", rf"/processes/{RECALC_PROCESS}/tasks$"),
         exit=1, message="after_load process 'Recalculate'",
         settings={"after_load": ["Recalculate"]}, rerun=True),
    case("SIGTERM mid-stream", hook=sigterm_mid_stream, **TERM),
    case("SIGKILL mid-upload, then rerun", http(429, "PUT", CHUNK, nth=2, retry_after=30),
         hook=sigkill_mid_upload, **KILL),
]
# fmt: on


@pytest.mark.parametrize("fault", CASES, ids=lambda c: c.slug)
def test_fault(fault: Case, sim_with, tmp_path: Path, fault_table: Table) -> None:
    sim = sim_with(**scenario_overrides())
    load = Load(sim, tmp_path, fault.settings)
    for spec in fault.faults:
        sim.add_fault(spec)

    first = load.run(fault.hook)
    load.check(first, fault)

    if fault.rerun or not load.complete(fault.accepted_rejects):
        sim.clear_faults()
        if fault.restore:
            fault.restore(sim)
        rerun = load.run(None)
        load.check(rerun, Case("rerun"))

    assert load.complete(fault.accepted_rejects), load.diff()
    fault_table.rows.append(load.row(fault.name))


class Load:
    """The runs of one case against one simulator, and their bookkeeping."""

    def __init__(self, sim: Simulator, tmp_path: Path, settings: dict[str, Any]) -> None:
        self.sim = sim
        self.tmpdir = tmp_path / "tmp"
        self.tmpdir.mkdir()
        self.dumps = tmp_path / "dumps"
        self.config_file = tmp_path / "config.json"
        self.config_file.write_text(json.dumps(config(sim, tmp_path, **settings)))
        self.bookmark: dict[str, int] = {}
        self.exits: list[int] = []
        self.sent = 0
        self.duplicates = 0

    def run(self, hook: Hook | None) -> Run:
        before = counters(self.sim)
        sent = rows_after(self.bookmark)
        commits = commits_for(self.bookmark, loaded_codes(self.sim))
        first, rest = singer_input(self.bookmark)
        live = LiveRun(self.config_file, self.tmpdir, self.tmpdir.parent)
        live.write(first)
        ctx = Context(self.sim, live, rest)
        if hook is None:
            ctx.write_rest()
        else:
            hook(ctx)
        result = live.finish()
        self.exits.append(result.returncode)
        self.sent += sum(sent.values())
        after = counters(self.sim)
        delta = {s: (after[s][0] - before[s][0], after[s][1] - before[s][1]) for s in after}
        self.duplicates += sum(max(0, tasks - uploads) for uploads, tasks in delta.values())
        return Run(result, sent, delta, commits)

    def check(self, run: Run, fault: Case) -> None:
        result = run.result
        assert result.returncode == fault.exit, result.stderr
        assert "Traceback" not in result.stderr
        assert PASSWORD not in result.stderr
        assert "AnaplanAuthToken " not in result.stderr
        assert not [t for t in list(self.sim.auth._sessions) if t in result.stderr]
        assert fault.says in result.stderr
        if fault.exit == 1 and fault.message:
            assert len(result.errors) == 1, result.errors
            assert fault.message in result.errors[0], result.errors
        for line in result.errors:
            self._check_dumps_named(line)
        self._check_states(result.states, fault.accepted_rejects)
        for stream, (uploads, tasks) in run.delta.items():
            assert tasks <= uploads, f"{stream}: {tasks} imports for {uploads} uploads"
        if fault.exit == 0:
            commits = run.commits
            assert run.delta == {s: (commits[s], commits[s]) for s in commits}, run.delta
        self._check_files(killed=fault.exit == -9)

    def _check_states(self, states: list[dict], accepted_rejects: int) -> None:
        """Every STATE's bookmark covers only rows that are in the model (or accepted losses)."""
        now, sent = landed(self.sim), expected_rows()
        allowed = self._expected(accepted_rejects)
        for state in states:
            for stream, count in state.items():
                covered = [r for r in sent[stream][:count] if r in allowed[stream]]
                missing = [r for r in covered if r not in now[stream]]
                assert not missing, f"state {state} emitted but {missing} not in the model"
            self.bookmark = state

    def _check_dumps_named(self, line: str) -> None:
        """A failure that names dumps names files that exist, readable by the owner only."""
        if "Failure dump: " not in line:
            return
        names = line.split("Failure dump: ", 1)[1].split(". ", 1)[0].split(", ")
        for name in names:
            assert Path(name).is_file(), line
            assert private(Path(name))
            assert Path(name).parent == self.dumps

    def _check_files(self, *, killed: bool) -> None:
        """Spool gone (SIGKILL leaves it, private); dumps private."""
        spooled = list(self.tmpdir.rglob("*"))
        if killed:
            assert spooled, "SIGKILL leaves the spool behind"
            assert all(private(p) for p in spooled), spooled
            for path in sorted(spooled, reverse=True):
                path.unlink() if path.is_file() else path.rmdir()
        else:
            assert spooled == []
        if self.dumps.exists():
            assert all(private(p) for p in self.dumps.iterdir())

    def complete(self, accepted_rejects: int) -> bool:
        now, expected = landed(self.sim), self._expected(accepted_rejects)
        return all(sorted(now[s]) == sorted(expected[s]) for s in expected)

    @staticmethod
    def _expected(accepted_rejects: int) -> dict[str, list[tuple]]:
        """The input rows, less the first products Anaplan rejected when settings allow it."""
        expected = expected_rows()
        skipped = {expected_product(r) for r in PRODUCTS[:accepted_rejects]}
        expected["products"] = [r for r in expected["products"] if r not in skipped]
        return expected

    def diff(self) -> str:
        return f"landed {landed(self.sim)}\nexpected {expected_rows()}"

    def row(self, name: str) -> dict[str, Any]:
        now, expected = landed(self.sim), expected_rows()
        hits = sum(r in now[s] for s in expected for r in expected[s])
        extra = sum(r not in expected[s] for s in now for r in now[s])
        return {
            "fault": name,
            "runs": len(self.exits),
            "rows sent": self.sent,
            "rows landed": f"{hits}/{sum(len(v) for v in expected.values())}",
            "duplicates": self.duplicates + extra,
            "exit code": " → ".join(map(str, self.exits)),
        }


@dataclass
class Run:
    result: RunResult
    sent: dict[str, int]
    delta: dict[str, tuple[int, int]]
    commits: dict[str, int]  # what a clean run of this input would commit, per stream
