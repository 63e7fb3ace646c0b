"""The simulator's live, in-memory model data: lists, modules, files, tasks, request log.

One re-entrant lock guards all of it; the HTTP handler holds it for a whole request, so every
request sees and leaves a consistent state and tests stay deterministic.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from target_anaplan.simulator.faults import FaultBook
from target_anaplan.simulator.scenario import (
    MODEL_BUILDER_GUID,
    FileDef,
    ModelDef,
    Scenario,
    user_guid,
)

PRIVATE_LIFETIME_S = 48 * 3600  # private files and dumps vanish 48 h after last access
MODEL_BASE_BYTES = 1_048_576
ITEM_BYTES = 64
CELL_BYTES = 8


class Clock:
    """Wall-clock time plus an offset that tests move forward (token expiry, timestamps)."""

    def __init__(self) -> None:
        self.offset_s = 0.0

    def __call__(self) -> float:
        """Epoch seconds as the simulator sees them."""
        return time.time() + self.offset_s

    def advance(self, seconds: float) -> float:
        """Move the clock forward and return the new time."""
        self.offset_s += seconds
        return self()

    def millis(self) -> int:
        """Epoch milliseconds, the unit Anaplan uses for creationTime and expiresAt."""
        return int(self() * 1000)


@dataclass
class ListItem:
    """One list member."""

    code: str
    name: str
    parent: str = ""
    properties: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The control API shape of an item."""
        return {
            "code": self.code,
            "name": self.name,
            "parent": self.parent,
            "properties": dict(self.properties),
        }


@dataclass
class Upload:
    """A chunked upload in progress for one user; expected is -1 when unknown."""

    expected: int
    chunks: dict[int, bytes] = field(default_factory=dict)


@dataclass
class FileState:
    """A file in a model: its definition, each user's private content, upload counters."""

    definition: FileDef
    model_id: str
    chunk_count: int = 0
    content: dict[str, list[bytes]] = field(default_factory=dict)
    pending: dict[str, Upload] = field(default_factory=dict)
    uploads: dict[str, int] = field(default_factory=dict)
    touched: dict[str, float] = field(default_factory=dict)
    last_upload: tuple[str, float] | None = None  # (user, when) of the latest completed upload

    def chunks_for(self, user: str, now: float) -> list[bytes] | None:
        """The caller's private chunks (this counts as an access), else the default, else None."""
        if user in self.content:
            self.touched[user] = now
            return self.content[user]
        if self.definition.content is not None:
            return [self.definition.content]
        return None

    def finish_upload(self, user: str, chunks: list[bytes], now: float) -> None:
        """Store a completed upload as the user's private content and count it."""
        self.content[user] = chunks
        self.touched[user] = now
        self.pending.pop(user, None)
        self.chunk_count = len(chunks)
        self.uploads[user] = self.uploads.get(user, 0) + 1
        self.last_upload = (user, now)


@dataclass
class ModelSave:
    """What `modelDetails` says about a model's last save; each applied import is a save."""

    serial_number: int
    modified_at: str  # "2024-01-15T09:30:00.000+0000", as Anaplan writes dates
    modified_by_guid: str


@dataclass
class Task:
    """An import or process run; `state` follows Anaplan's taskState values."""

    id: str
    model_id: str
    action_id: str
    kind: str  # "import" or "process"
    user: str
    created_ms: int
    state: str = "NOT_STARTED"
    polls: int = 0
    hold: int = 0
    snapshot: dict[str, list[bytes] | None] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    dumps: dict[str, bytes] = field(default_factory=dict)
    dumps_touched: float = 0.0

    def summary(self) -> dict[str, Any]:
        """The `tasks[]` item of a task list."""
        return {"taskId": self.id, "taskState": self.state, "creationTime": self.created_ms}


class SimState:
    """Everything that changes while the simulator runs; `reset()` restores the scenario."""

    def __init__(self, scenario: Scenario, clock: Clock) -> None:
        self.scenario = scenario
        self.clock = clock
        self.lock = threading.RLock()
        self.faults = FaultBook()
        self.reset()

    def reset(self) -> None:
        """Back to the scenario's initial data; clears tasks, faults, uploads and the log."""
        with self.lock:
            self.model_states = {m.id: m.active_state for m in self.scenario.models.values()}
            self.saves = {
                m.id: ModelSave(m.last_saved_serial_number, m.iso_creation_date, MODEL_BUILDER_GUID)
                for m in self.scenario.models.values()
            }
            self.lists: dict[tuple[str, str], dict[str, ListItem]] = {}
            self.modules: dict[tuple[str, str], dict[tuple[str, ...], dict[str, Any]]] = {}
            self.files: dict[str, dict[str, FileState]] = {}
            for model in self.scenario.models.values():
                self._load_model(model)
            self.tasks: dict[str, Task] = {}
            self.requests: list[dict[str, Any]] = []
            self.faults.clear()

    def _load_model(self, model: ModelDef) -> None:
        for lst in model.lists.values():
            items = {}
            for raw in lst.items:
                code = str(raw.get("code", ""))
                item = ListItem(
                    code=code,
                    name=str(raw.get("name", code)),
                    parent=str(raw.get("parent", "")),
                    properties=dict(raw.get("properties", {})),
                )
                items[code or item.name] = item
            self.lists[(model.id, lst.name)] = items
        for module in model.modules.values():
            self.modules[(model.id, module.name)] = {}
        self.files[model.id] = {
            fid: FileState(definition=fdef, model_id=model.id, chunk_count=_count(fdef))
            for fid, fdef in model.files.items()
        }

    def expire(self) -> None:
        """Drop private file content and dumps not accessed for 48 h (simulator clock)."""
        cutoff = self.clock() - PRIVATE_LIFETIME_S
        for model_files in self.files.values():
            for file in model_files.values():
                for user in [u for u, at in file.touched.items() if at < cutoff]:
                    file.content.pop(user, None)
                    file.touched.pop(user)
        for task in self.tasks.values():
            if task.dumps and task.dumps_touched < cutoff:
                task.dumps.clear()

    def model(self, model_id: str) -> ModelDef | None:
        """The model definition, or None."""
        return self.scenario.models.get(model_id)

    def list_items(self, model_id: str, name: str) -> list[ListItem]:
        """A list's items in insertion order (KeyError if unknown)."""
        return list(self.lists[(model_id, name)].values())

    def module_rows(self, model_id: str, name: str) -> list[dict[str, Any]]:
        """A module's cells as rows keyed by dimension item codes (KeyError if unknown)."""
        module = self.scenario.models[model_id].modules[name]
        return [
            {"dimensions": dict(zip(module.dimensions, key, strict=True)), "values": dict(values)}
            for key, values in self.modules[(model_id, name)].items()
        ]

    def record_save(self, model_id: str, user: str) -> None:
        """The model changed: a new serial number, modified now by `user`."""
        save = self.saves[model_id]
        save.serial_number += 1
        save.modified_at = iso_date(self.clock())
        save.modified_by_guid = user_guid(user)

    def memory_usage(self, model_id: str) -> int:
        """Bytes, estimated as Anaplan allocates: every module cell of the full grid counts."""
        model = self.scenario.models[model_id]
        total = MODEL_BASE_BYTES
        for lst in model.lists.values():
            total += ITEM_BYTES * len(self.lists[(model_id, lst.name)])
        for module in model.modules.values():
            cells = len(module.line_items)
            for dimension in module.dimensions:
                cells *= len(self.lists[(model_id, dimension)])
            total += CELL_BYTES * cells
        return total

    def log_request(self, method: str, path: str, query: str, status: int | None) -> None:
        """Append to the request log (status None: the connection was dropped)."""
        with self.lock:
            self.requests.append(
                {
                    "time": self.clock(),
                    "method": method,
                    "path": path,
                    "query": query,
                    "status": status,
                }
            )


def iso_date(epoch_s: float) -> str:
    """Anaplan's model date format: 2024-01-15T09:30:00.000+0000."""
    stamp = dt.datetime.fromtimestamp(epoch_s, tz=dt.timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}+0000"


def _count(fdef: FileDef) -> int:
    return 1 if fdef.content is not None else 0
