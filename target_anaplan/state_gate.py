"""The state gate: a STATE message is emitted only once every record before it is committed.

Meltano saves each STATE line the target writes as the tap's bookmark, so a STATE must not
get out while any record received before it could still fail to reach Anaplan. Each STATE
is held with how many records each stream had received when it arrived; a stream's load
says how many of its records are committed (they are, in commit order, a batch at a time).
The newest STATE whose records are all committed is the one to emit; older ones are then
moot. A commit left running while the next batch is read does not hold back a STATE that
arrived before that batch's records.

States that wait for the same commits are kept as one, the newest: two states wait for
the same commits when no batch was set aside for a commit between them (in any stream)
and the same streams had records not yet set aside. So memory holds a handful of states
however often the tap sends one.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


class Counted(Protocol):
    """What the gate reads of a stream's load."""

    @property
    def received(self) -> int:
        """Records received so far."""

    @property
    def committed(self) -> int:
        """Records received and committed (the first this many)."""

    @property
    def batches(self) -> int:
        """Batches set aside for a commit so far."""

    @property
    def set_aside(self) -> int:
        """Records received when the last batch was set aside for a commit."""


@dataclass(frozen=True)
class _Waiting:
    commits: tuple[Any, ...]  # which commits it waits for (see the module)
    state: dict[str, Any]
    needed: dict[str, int]  # stream -> records received when the state arrived


class StateGate:
    """Holds each STATE until every record received before it is committed."""

    def __init__(self, loads: Mapping[str, Counted]) -> None:
        self._loads = loads
        # Reentrant: a signal handler on the main thread may ask while the main thread holds it.
        self._lock = threading.RLock()
        self._waiting: list[_Waiting] = []  # oldest first

    def arrived(self, state: dict[str, Any]) -> None:
        """A STATE message arrived (after every record before it reached its load)."""
        with self._lock:
            loads = dict(self._loads)
            commits = (
                sum(load.batches for load in loads.values()),
                *(name for name, load in loads.items() if load.received > load.set_aside),
            )
            waiting = _Waiting(commits, state, {n: load.received for n, load in loads.items()})
            if self._waiting and self._waiting[-1].commits == commits:
                self._waiting[-1] = waiting
            else:
                self._waiting.append(waiting)

    def ready(self) -> dict[str, Any] | None:
        """The newest STATE whose records are all committed (then no longer held), or None."""
        with self._lock:
            for index in range(len(self._waiting) - 1, -1, -1):
                waiting = self._waiting[index]
                if all(
                    self._loads[name].committed >= count for name, count in waiting.needed.items()
                ):
                    del self._waiting[: index + 1]
                    return waiting.state
        return None

    @property
    def holding(self) -> bool:
        """Whether a STATE is held."""
        return bool(self._waiting)
