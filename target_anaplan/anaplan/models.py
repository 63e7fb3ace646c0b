"""Plain values passed between the client and the target (no behaviour, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ActionKind = Literal["imports", "processes", "actions"]
LIST_IMPORT = "HIERARCHY_DATA"  # the importType of an import into a list
# How an action of each kind is named in messages.
KIND_LABELS: dict[str, str] = {"imports": "import", "processes": "process", "actions": "action"}


@dataclass(frozen=True)
class ModelRef:
    """A resolved workspace and model."""

    workspace_id: str
    workspace_name: str
    model_id: str
    model_name: str

    @property
    def path(self) -> str:
        """The model's root in the Integration API: ``/workspaces/{ws}/models/{m}``."""
        return f"/workspaces/{self.workspace_id}/models/{self.model_id}"


@dataclass(frozen=True)
class DataSourceLayout:
    """What the CSV for an import data source must look like.

    Taken from ``importMetadata.source`` (or, with no imports, the file's own settings
    and header row). ``header_row``/``first_data_row`` are 1-based; ``header_row == 0``
    means the file has no header line. ``text_delimiter == ""`` means no quoting.
    """

    header_names: tuple[str, ...]
    separator: str = ","
    text_delimiter: str = '"'
    encoding: str = "UTF-8"
    header_row: int = 1
    first_data_row: int = 2


@dataclass(frozen=True)
class ActionRef:
    """An import or process to run after a file upload."""

    kind: ActionKind
    id: str
    name: str

    @property
    def label(self) -> str:
        """``import 'Load orders' (112000000001)``, for messages."""
        return f"{KIND_LABELS[self.kind]} {self.name!r} ({self.id})"


@dataclass(frozen=True)
class DataSourceTarget:
    """Everything needed to commit one stream: the file, its layout, what to run.

    ``import_types`` are the ``importType`` of every import that reads the file (directly or
    as a process step): ``HIERARCHY_DATA`` loads a list, ``MODULE_DATA`` a module. ``lists``
    names the lists those list imports load, as far as their names tell ("<List> from
    <file>", Anaplan's naming convention; the API has no field for an import's target).
    """

    file_id: str
    file_name: str
    layout: DataSourceLayout
    actions: tuple[ActionRef, ...] = ()
    import_types: frozenset[str] = frozenset()
    lists: tuple[str, ...] = ()

    @property
    def loads_lists(self) -> bool:
        """Whether the stream's imports load list items (so modules may depend on it)."""
        return LIST_IMPORT in self.import_types


@dataclass(frozen=True)
class TaskOutcome:
    """The terminal state of one import or process task, parsed from the task result.

    ``counts`` sums the numeric pairs of every ``details[].values`` list (for example
    ``failedCount``, ``ignoredCount``, ``successRowCount``). ``nested`` holds a process's
    per-action results.
    """

    action: ActionRef
    task_id: str
    task_state: str
    successful: bool
    failure_dump_available: bool = False
    messages: tuple[str, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)
    nested: tuple[TaskOutcome, ...] = ()
