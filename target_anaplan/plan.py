"""The load plan: the order in which streams commit, and run-level actions after them.

An Anaplan model is fed in dependency order: list items must exist before the module
rows that use them, and parent list items before their children. Taps send streams in
their own order, so the run orders its streams once, after resolution:

- streams whose imports load lists (``HIERARCHY_DATA``) before all others;
- among those, a stream loading a parent list before one loading its child list (the
  list metadata names a list's parent);
- otherwise the order of ``streams`` in the config;
- ``load_order`` puts the streams it names first, in its order.

Whenever a stream commits, every stream before it in the plan that holds rows commits
first, so a module's rows never reach Anaplan before the list items they refer to.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from target_anaplan.anaplan.errors import ActionFailedError, AnaplanError
from target_anaplan.anaplan.models import ActionRef, DataSourceTarget
from target_anaplan.errors import RowsRejectedError
from target_anaplan.loading import CommitRules, StreamLoad, run_and_judge

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamShape:
    """What the plan needs to know of one stream: does it load lists, and which ones
    (qualified by model, since parents are per model)."""

    loads_lists: bool
    lists: tuple[tuple[str, str], ...] = ()  # (model id, list name)


def order_streams(
    streams: Sequence[str],
    shapes: Mapping[str, StreamShape],
    parents: Mapping[tuple[str, str], str],
    load_order: Sequence[str] = (),
) -> list[str]:
    """The commit order of ``streams`` (config order) by the rules in this module's doc.

    ``parents`` maps (model id, list name) to the name of that list's parent list.
    """
    lists = [s for s in streams if shapes[s].loads_lists]
    others = [s for s in streams if not shapes[s].loads_lists]
    default = _parents_first(lists, shapes, parents) + others
    chosen = [s for s in load_order if s in shapes]
    return chosen + [s for s in default if s not in chosen]


def _parents_first(
    streams: list[str],
    shapes: Mapping[str, StreamShape],
    parents: Mapping[tuple[str, str], str],
) -> list[str]:
    """``streams`` reordered so that a stream loading a parent list comes before one loading
    a child list of it (directly or further down); otherwise their order is kept."""
    parent_of = {(model, name.casefold()): p.casefold() for (model, name), p in parents.items()}
    loaders: dict[tuple[str, str], set[str]] = {}
    for stream in streams:
        for model, name in shapes[stream].lists:
            loaders.setdefault((model, name.casefold()), set()).add(stream)

    def ancestors(model: str, name: str) -> set[str]:
        """The streams loading any list above ``name`` (a cycle in the metadata ends it)."""
        found: set[str] = set()
        seen = {name.casefold()}
        parent = parent_of.get((model, name.casefold()))
        while parent is not None and parent not in seen:
            seen.add(parent)
            found |= loaders.get((model, parent), set())
            parent = parent_of.get((model, parent))
        return found

    before = {
        stream: set().union(*(ancestors(m, n) for m, n in shapes[stream].lists)) - {stream}
        for stream in streams
    }
    ordered: list[str] = []
    waiting = list(streams)
    while waiting:
        # The first stream whose parents are placed; on a cycle, the first one waiting.
        ready = next((s for s in waiting if before[s] <= set(ordered)), waiting[0])
        ordered.append(ready)
        waiting.remove(ready)
    return ordered


@dataclass(frozen=True)
class RunLevelAction:
    """A process or import of ``after_load``, resolved in its model."""

    rules: CommitRules
    action: ActionRef


class LoadPlan:
    """Commits streams in plan order and runs the run-level actions after them.

    ``loads`` is the run's live mapping of stream to load (loads appear as their first
    SCHEMA arrives); ``on_commit`` is called after every commit cascade, and from a commit
    thread when a commit left running succeeded, so the run can emit the newest STATE whose
    records are all committed.
    """

    def __init__(
        self,
        order: Sequence[str],
        loads: Mapping[str, StreamLoad],
        *,
        after_load: Sequence[RunLevelAction] = (),
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self.order = list(order)
        self._loads = loads
        self.after_load = list(after_load)
        self._on_commit = on_commit
        self._lock = threading.Lock()
        self.committed_rows = 0
        self._after_load_done = False

    @property
    def after_load_due(self) -> bool:
        """Whether run-level actions still have to run (rows were sent in this run)."""
        return bool(self.after_load) and self.committed_rows > 0 and not self._after_load_done

    def commit_through(self, stream: str, *, wait: bool = True) -> None:
        """Commit ``stream``, after every stream before it in the plan that holds rows (their
        commits done first). ``wait`` False leaves ``stream``'s own commit running while the
        next batch is read (a full batch of insert or upsert mode); the state is offered
        again when it succeeded."""
        with self._lock:
            for name in self.order[: self.order.index(stream) + 1]:
                load = self._loads.get(name)
                if load is not None and (name == stream or load.pending_rows):
                    last = name == stream
                    self.committed_rows += load.commit(wait=wait or not last, then=self._on_commit)
        self._on_commit()

    def run_after_load(self) -> None:
        """Run ``after_load`` once, in order, if anything was committed in this run."""
        if not self.after_load_due:
            return
        for item in self.after_load:
            subject = f"the after_load {item.action.label}"
            logger.info("Running %s after every stream has committed", item.action.label)
            try:
                run_and_judge(item.rules, [item.action], subject=subject)
            except (ActionFailedError, RowsRejectedError):
                raise  # they name the action already
            except AnaplanError as error:
                raise AnaplanError(
                    f"{subject[:1].upper()}{subject[1:]} could not run: {error}"
                ) from error
        self._after_load_done = True


def describe_plan(order: Sequence[str], sources: Mapping[str, DataSourceTarget]) -> list[str]:
    """One line per stream: its position, file and the actions its commit runs."""
    lines = []
    for position, stream in enumerate(order, 1):
        source = sources[stream]
        actions = ", ".join(a.label for a in source.actions) or "no import (file upload only)"
        loads = f"; loads list {', '.join(source.lists)}" if source.lists else ""
        lines.append(f"{position}. {stream}: file {source.file_name!r}, then {actions}{loads}")
    return lines
