"""The fault suite's world: one two-stream load, a live subprocess run, and what to check.

The load is a list stream (``products``, insert mode, 3 rows per commit, so several
commits) and a module stream (``sales``, all mode, one commit through a process). Each
run is ``target-anaplan --config`` as a real process against an in-process simulator.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from target_anaplan.simulator import Simulator
from tests.kit.simkit import MODEL_ID, MODEL_PATH, PASSWORD, USER, cancel_import
from tests.kit.singer import lines, record, schema, state
from tests.kit.targetkit import Run, example_config, start_target

PRODUCTS_FILE, SALES_FILE = "113000000000", "113000000001"
PRODUCTS_IMPORT, SALES_IMPORT, SALES_PROCESS = "112000000000", "112000000001", "118000000001"
BATCH = 3
RECALC_PROCESS = "118000000002"
PRODUCTS = [
    {
        "Code": f"P{i}",
        "Name": f"Product {i}",
        "Category": "Tools",
        "Price": 10 + i,
        "Launched": f"2024-01-0{i}",
        "Active": i % 2 == 0,
    }
    for i in range(1, 8)
]
STORES = [f"S{i}" for i in range(1, 7)]
SALES = [{"Store": s, "Units": i, "Revenue": 100 * i} for i, s in enumerate(STORES, 1)]
PRODUCT_SCHEMA = {
    "Code": {"type": "string"},
    "Name": {"type": "string"},
    "Category": {"type": "string"},
    "Price": {"type": "integer"},
    "Launched": {"type": "string"},
    "Active": {"type": "boolean"},
}
SALES_SCHEMA = {
    "Store": {"type": "string"},
    "Units": {"type": "integer"},
    "Revenue": {"type": "integer"},
}
STREAMS = {
    "products": {
        "file": "products.csv",
        "imports": ["Products from products.csv"],
        "mode": "insert",
    },
    "sales": {"file": "sales.csv", "processes": ["Load sales"], "mode": "all"},
}
# (action id, file id) of each stream: every commit is one upload and one task of the action.
ACTIONS = {"products": (PRODUCTS_IMPORT, PRODUCTS_FILE), "sales": (SALES_PROCESS, SALES_FILE)}


def scenario_overrides() -> dict[str, Any]:
    """Model keys for ``make_scenario``: a Stores list and a Sales module loaded by a process."""
    return {
        "lists": [
            {
                "name": "Products",
                "properties": {
                    "Category": "text",
                    "Price": "number",
                    "Launched": "date",
                    "Active": "boolean",
                },
            },
            {"name": "Stores", "items": [{"code": s, "name": f"Store {s}"} for s in STORES]},
        ],
        "modules": [
            {
                "name": "Sales",
                "dimensions": ["Stores"],
                "line_items": {"Units": "number", "Revenue": "number"},
            }
        ],
        "imports": [
            {
                "id": PRODUCTS_IMPORT,
                "name": "Products from products.csv",
                "importDataSourceId": PRODUCTS_FILE,
                "source": {"headerNames": list(PRODUCT_SCHEMA)},
                "list": "Products",
                "mapping": {
                    "Code": "code",
                    "Name": "name",
                    **{p: p for p in ("Category", "Price", "Launched", "Active")},
                },
            },
            {
                "id": SALES_IMPORT,
                "name": "Sales from sales.csv",
                "importDataSourceId": SALES_FILE,
                "source": {"headerNames": list(SALES_SCHEMA)},
                "module": "Sales",
                "mapping": {"Store": "Stores", "Units": "Units", "Revenue": "Revenue"},
            },
        ],
        "processes": [
            {"id": SALES_PROCESS, "name": "Load sales", "actions": [SALES_IMPORT]},
            # A run-level action (after_load) for the cases that need one.
            {"id": RECALC_PROCESS, "name": "Recalculate", "actions": [SALES_IMPORT]},
        ],
    }


def config(sim: Simulator, tmp_path: Path, **settings: Any) -> dict[str, Any]:
    """Target config: fast polls, tiny retry budget (faults answer Retry-After 0 or 1)."""
    load = {
        "username": USER,
        "password": PASSWORD,
        "streams": STREAMS,
        "batch_size_rows": BATCH,
        "import_timeout_s": 30,  # a held task never blocks the suite for long
        "retry_deadline_s": 10,
        "request_timeout_s": 10,
        "failure_dump_dir": str(tmp_path / "dumps"),
    }
    return example_config(sim, **(load | settings))


# Singer input


def singer_input(bookmark: dict[str, int]) -> tuple[str, str]:
    """The tap's output resuming after ``bookmark``, split after its first commit-sized batch.

    STATE values count the rows of each stream sent so far (what a tap would bookmark).
    """
    sent = {"products": bookmark.get("products", 0), "sales": bookmark.get("sales", 0)}
    messages: list[dict] = [schema("products", PRODUCT_SCHEMA, ["Code"])]
    first_part = 0
    for row in PRODUCTS[sent["products"] :]:
        messages.append(record("products", row))
        sent["products"] += 1
        if sent["products"] % BATCH == 0:
            messages.append(state(dict(sent)))
            first_part = first_part or len(messages)
    messages.append(schema("sales", SALES_SCHEMA, ["Store"]))
    for row in SALES[sent["sales"] :]:
        messages.append(record("sales", row))
        sent["sales"] += 1
    messages.append(state(dict(sent)))
    return lines(*messages[:first_part]), lines(*messages[first_part:])


def rows_after(bookmark: dict[str, int]) -> dict[str, int]:
    """Rows a run resuming from ``bookmark`` sends, per stream."""
    return {
        "products": len(PRODUCTS) - bookmark.get("products", 0),
        "sales": len(SALES) - bookmark.get("sales", 0),
    }


def commits_for(bookmark: dict[str, int], loaded: set[str]) -> dict[str, int]:
    """Commits a clean run resuming from ``bookmark`` makes: insert mode, one per batch
    holding a row not ``loaded`` before (change tracking skips the others); all mode once."""
    resent = PRODUCTS[bookmark.get("products", 0) :]
    batches = [resent[n : n + BATCH] for n in range(0, len(resent), BATCH)]
    return {
        "products": sum(any(row["Code"] not in loaded for row in batch) for batch in batches),
        "sales": int(rows_after(bookmark)["sales"] > 0),
    }


def loaded_codes(sim: Simulator) -> set[str]:
    """The product codes the model holds."""
    return {code for code, _, _ in landed(sim)["products"]}


# What the model holds


def expected_product(row: dict) -> tuple:
    props = {k: row[k] for k in ("Category", "Price", "Launched", "Active")}
    return (row["Code"], row["Name"], json.dumps(props, sort_keys=True))


def expected_sale(row: dict) -> tuple:
    return (row["Store"], row["Units"], row["Revenue"])


def landed(sim: Simulator) -> dict[str, list[tuple]]:
    """The model's Products items and Sales cells, in the shape of ``expected_*``."""
    items = sim.list_items(MODEL_ID, "Products")
    cells = sim.module_rows(MODEL_ID, "Sales")
    return {
        "products": [
            (i["code"], i["name"], json.dumps(i["properties"], sort_keys=True)) for i in items
        ],
        "sales": [
            (c["dimensions"]["Stores"], c["values"].get("Units"), c["values"].get("Revenue"))
            for c in cells
        ],
    }


def expected_rows() -> dict[str, list[tuple]]:
    return {
        "products": [expected_product(r) for r in PRODUCTS],
        "sales": [expected_sale(r) for r in SALES],
    }


def counters(sim: Simulator) -> dict[str, tuple[int, int]]:
    """Per stream: (completed uploads of its file, tasks of its action)."""
    uploads = {f["id"]: f["uploads"] for f in sim.files() if f["model"] == MODEL_ID}
    tasks = sim.tasks()
    return {
        stream: (uploads.get(file_id, 0), sum(t["actionId"] == action for t in tasks))
        for stream, (action, file_id) in ACTIONS.items()
    }


def fired(sim: Simulator) -> int:
    """How often the injected faults have fired so far."""
    return sum(f.get("fired", 0) for f in sim.faults())


def cancel_in_anaplan(sim: Simulator, action_id: str, task_id: str) -> None:
    """What a model builder does in Anaplan's UI: cancel a running task as the same user."""
    cancel_import(sim, USER, MODEL_PATH, action_id, task_id)


def tasks_of(sim: Simulator, action_id: str) -> list[dict]:
    return [t for t in sim.tasks() if t["actionId"] == action_id]


def wait_for(condition: Callable[[], Any], what: str, attempts: int = 600) -> Any:
    """Poll an observable condition (not a timing assertion); fail naming it if it never holds."""
    for _ in range(attempts):
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


# A live run


class LiveRun:
    """``target-anaplan --config`` as a subprocess, fed and watched while it runs.

    ``tmpdir`` holds its spool and ``home`` its machine-wide file locks.
    """

    def __init__(self, config_file: Path, tmpdir: Path, home: Path) -> None:
        self.process = start_target(
            config_file, env=os.environ | {"TMPDIR": str(tmpdir), "HOME": str(home)}
        )
        self._out: list[str] = []
        self._err: list[str] = []
        self._readers = [
            threading.Thread(target=_drain, args=(self.process.stdout, self._out), daemon=True),
            threading.Thread(target=_drain, args=(self.process.stderr, self._err), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def write(self, text: str, *, close: bool = False) -> None:
        stdin = self.process.stdin
        assert stdin is not None
        try:
            stdin.write(text)
            stdin.flush()
            if close:
                stdin.close()
        except BrokenPipeError:  # the target already stopped; its exit code says why
            pass

    def stderr_has(self, needle: str) -> bool:
        return any(needle in line for line in list(self._err))

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def finish(self, timeout: float = 60) -> RunResult:
        returncode = self.process.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=10)
        return RunResult("".join(self._out), "".join(self._err), returncode)


def _drain(stream: Any, into: list[str]) -> None:
    for line in stream:
        into.append(line)


class RunResult(Run):
    """What one live run produced, and the lines of it a user reads as the failure."""

    @property
    def errors(self) -> list[str]:
        """The lines a user reads as the failure (ERROR or CRITICAL level)."""
        return [
            line
            for line in self.stderr.splitlines()
            if " ERROR " in line or " CRITICAL " in line or line.startswith(("ERROR", "CRITICAL"))
        ]


@dataclass
class Context:
    """What a fault hook may touch while a run is live."""

    sim: Simulator
    run: LiveRun
    rest: str
    rest_written: bool = False

    def write_rest(self, *, close: bool = True) -> None:
        self.run.write(self.rest, close=close)
        self.rest_written = True


Hook = Callable[[Context], None]


@dataclass
class Table:
    """The suite's result table, one row per fault case."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    HEADER = ("fault", "runs", "rows sent", "rows landed", "duplicates", "exit code")

    def markdown(self) -> str:
        lines = [
            "| " + " | ".join(self.HEADER) + " |",
            "|" + "|".join(" --- " for _ in self.HEADER) + "|",
        ]
        lines += ["| " + " | ".join(str(row[h]) for h in self.HEADER) + " |" for row in self.rows]
        return "\n".join(lines) + "\n"


def private(path: Path) -> bool:
    """Readable and writable by the owner only."""
    return stat.S_IMODE(path.stat().st_mode) & 0o077 == 0


SIGTERM, SIGKILL = signal.SIGTERM, signal.SIGKILL
