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
    ListDef,
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


# Where things sit in a list row: (id, code, name, parent, *property values).
ROW_ID, ROW_CODE, ROW_NAME, ROW_PARENT, ROW_PROPERTIES = 0, 1, 2, 3, 4


class _Missing:
    """The value of a property never set on an item (it has no key in `properties`)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass
class ListItem:
    """One list member as callers see it (the list keeps it as a compact row)."""

    code: str
    name: str
    parent: str = ""
    properties: dict[str, Any] = field(default_factory=dict)
    id: str = ""

    def as_json(self) -> dict[str, Any]:
        """The control API shape of an item."""
        return {
            "code": self.code,
            "name": self.name,
            "parent": self.parent,
            "properties": dict(self.properties),
        }


class ListData:
    """One list's items in insertion order, keyed by code (by name when the code is empty).

    An item is a plain tuple, `(id, code, name, parent, *property values)` with the values in
    the list's declared property order (MISSING when never set): an import of a million rows
    then builds its items in bulk, and they take a fraction of the memory of objects.
    """

    def __init__(self, definition: ListDef) -> None:
        self.definition = definition
        self.properties = tuple(definition.properties)
        self.rows: dict[str, tuple[Any, ...]] = {}
        self.first_id = (201 + definition.index) * 1_000_000_000
        self.next_id = self.first_id
        self._lookup: dict[str, str] | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def item(self, row: tuple[Any, ...]) -> ListItem:
        """The caller's view of a row."""
        values = zip(self.properties, row[ROW_PROPERTIES:], strict=True)
        return ListItem(
            code=row[ROW_CODE],
            name=row[ROW_NAME],
            parent=row[ROW_PARENT],
            properties={name: value for name, value in values if value is not MISSING},
            id=str(row[ROW_ID]),
        )

    def items(self) -> list[ListItem]:
        """Every item, in insertion order."""
        return [self.item(row) for row in self.rows.values()]

    def new_row(
        self, code: str, name: str, parent: str, properties: dict[str, Any]
    ) -> tuple[Any, ...]:
        """A row for a new item, with the next free id (ids are never reused)."""
        row = (self.next_id, code, name, parent,
               *(properties.get(p, MISSING) for p in self.properties))  # fmt: skip
        self.next_id += 1
        return row

    def put(self, key: str, row: tuple[Any, ...]) -> None:
        """Add or replace one item."""
        self.rows[key] = row
        self._lookup = None

    def extend(self, new: dict[str, tuple[Any, ...]]) -> None:
        """Add many new items at once (their keys are not in the list); into an empty list,
        the dict itself becomes the list's, so a first load is not copied."""
        if self.rows:
            self.rows.update(new)
        else:
            self.rows = new
        self._lookup = None

    def rekey(self, old: str, new: str) -> None:
        """Key an item by `new` instead of `old`, keeping its place."""
        self.rows = {new if key == old else key: row for key, row in self.rows.items()}
        self._lookup = None

    def remove(self, keys: list[str]) -> None:
        """Drop items by key."""
        for key in keys:
            del self.rows[key]
        self._lookup = None

    def lookup(self) -> dict[str, str]:
        """Item key by code and by name, the ways a module row or a child item names an item
        (a code wins over another item's equal name; of equal names, the first item's)."""
        if self._lookup is None:
            index: dict[str, str] = {}
            for key, row in reversed(self.rows.items()):
                index[row[ROW_NAME]] = key
            for key, row in self.rows.items():
                if row[ROW_CODE]:
                    index[row[ROW_CODE]] = key
            self._lookup = index
        return self._lookup

    def by_id(self) -> dict[int, str]:
        """Item key by id."""
        return {row[ROW_ID]: key for key, row in self.rows.items()}


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
    """An import, process or action run; `state` follows Anaplan's taskState values."""

    id: str
    model_id: str
    action_id: str
    kind: str  # "import", "process" or "action"
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
            self.lists: dict[tuple[str, str], ListData] = {}
            self.modules: dict[tuple[str, str], dict[tuple[str, ...], dict[str, Any]]] = {}
            self.files: dict[str, dict[str, FileState]] = {}
            for model in self.scenario.models.values():
                self._load_model(model)
            self.tasks: dict[str, Task] = {}
            self.requests: list[dict[str, Any]] = []
            self.faults.clear()

    def _load_model(self, model: ModelDef) -> None:
        for lst in model.lists.values():
            data = ListData(lst)
            for raw in lst.items:
                code = str(raw.get("code", ""))
                name = str(raw.get("name", code))
                row = data.new_row(code, name, str(raw.get("parent", "")),
                                   dict(raw.get("properties", {})))  # fmt: skip
                if "id" in raw:
                    row = (int(raw["id"]), *row[1:])
                data.put(code or name, row)
            self.lists[(model.id, lst.name)] = data
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
        return self.lists[(model_id, name)].items()

    def rename_item(self, model_id: str, list_name: str, old: str, new: str) -> None:
        """An item's key (its code, or its name without one) changed: re-key it, in place,
        and its cells in every module dimensioned by the list."""
        self.lists[(model_id, list_name)].rekey(old, new)
        for module in self.scenario.models[model_id].modules.values():
            cells = self.modules[(model_id, module.name)]
            for position, dimension in enumerate(module.dimensions):
                if dimension == list_name and any(k[position] == old for k in cells):
                    renamed = {
                        (*k[:position], new, *k[position + 1 :]) if k[position] == old else k: v
                        for k, v in cells.items()
                    }
                    cells.clear()
                    cells.update(renamed)

    def delete_items(self, model_id: str, list_name: str, keys: list[str]) -> None:
        """Delete list items and their cells in every module dimensioned by the list, as
        Anaplan does (items of child lists keep naming them as their parent)."""
        self.lists[(model_id, list_name)].remove(keys)
        gone = set(keys)
        for module in self.scenario.models[model_id].modules.values():
            cells = self.modules[(model_id, module.name)]
            for position, dimension in enumerate(module.dimensions):
                if dimension == list_name:
                    for key in [k for k in cells if k[position] in gone]:
                        del cells[key]

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
