"""Fault injection: HTTP faults on matching requests and outcome faults on tasks.

HTTP faults count the requests that match a method and a path regex and fire on the Nth
(and the K following) ones, so a test can say "the second chunk PUT gets a 503" without
caring about timing. Task faults apply to the next task(s) of an action.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

HTTP_STATUSES = (401, 409, 423, 429, 500, 503)
TASK_KINDS = ("hold", "fail", "reject")


class FaultSpecError(ValueError):
    """A fault body the simulator cannot use; the message says what is wrong."""


@dataclass
class HttpFault:
    """Answer `status` (or drop the connection) for matching requests nth..nth+following."""

    id: int
    kind: str  # "http" or "drop"
    method: str | None
    path: re.Pattern[str] | None
    nth: int
    following: int
    status: int | None
    retry_after: int | None
    seen: int = 0
    fired: int = 0

    def matches(self, method: str, path: str) -> bool:
        """Count a matching request and say whether this one is faulted."""
        if self.method and self.method != method:
            return False
        if self.path and not self.path.search(path):
            return False
        self.seen += 1
        if self.nth <= self.seen <= self.nth + self.following:
            self.fired += 1
            return True
        return False

    def as_json(self) -> dict[str, Any]:
        """The control API view of the fault."""
        return {
            "id": self.id,
            "kind": self.kind,
            "method": self.method,
            "path": self.path.pattern if self.path else None,
            "nth": self.nth,
            "following": self.following,
            "status": self.status,
            "retry_after": self.retry_after,
            "seen": self.seen,
            "fired": self.fired,
        }


@dataclass
class TaskFault:
    """Change the outcome of the next `tasks` tasks of `action_id` (None: any action)."""

    id: int
    kind: str  # "hold", "fail" or "reject"
    action_id: str | None
    tasks: int
    polls: int = 0
    rows: int = 0
    message: str = "Import failed (simulated fault)."
    fired: int = 0

    def as_json(self) -> dict[str, Any]:
        """The control API view of the fault."""
        return {
            "id": self.id,
            "kind": self.kind,
            "action_id": self.action_id,
            "tasks": self.tasks,
            "polls": self.polls,
            "rows": self.rows,
            "message": self.message,
            "fired": self.fired,
        }


class FaultBook:
    """All injected faults; the caller holds the state lock."""

    def __init__(self) -> None:
        self.http: list[HttpFault] = []
        self.task: list[TaskFault] = []
        self._next_id = 1

    def clear(self) -> None:
        """Forget every fault."""
        self.http.clear()
        self.task.clear()

    def add(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Validate a fault body (see docs/simulator.md) and register it."""
        if not isinstance(spec, dict):
            raise FaultSpecError("a fault must be a JSON object")
        kind = spec.get("kind", "http")
        fault_id, self._next_id = self._next_id, self._next_id + 1
        if kind in ("http", "drop"):
            fault = self._http(fault_id, kind, spec)
            self.http.append(fault)
            return fault.as_json()
        if kind in TASK_KINDS:
            task_fault = self._task(fault_id, kind, spec)
            self.task.append(task_fault)
            return task_fault.as_json()
        raise FaultSpecError(
            f"unknown fault kind {kind!r}; use http, drop, {', '.join(TASK_KINDS)}"
        )

    def describe(self) -> list[dict[str, Any]]:
        """Every fault with its counters."""
        return [f.as_json() for f in self.http] + [f.as_json() for f in self.task]

    def match_http(self, method: str, path: str) -> HttpFault | None:
        """The fault to apply to this request, if any (every rule counts the request)."""
        hit = None
        for fault in self.http:
            if fault.matches(method, path) and hit is None:
                hit = fault
        return hit

    def take_task(self, kind: str, action_id: str) -> TaskFault | None:
        """Consume one use of the first live task fault of `kind` for this action."""
        for fault in self.task:
            live = fault.tasks < 0 or fault.fired < fault.tasks
            if fault.kind == kind and live and fault.action_id in (None, action_id):
                fault.fired += 1
                return fault
        return None

    @staticmethod
    def _http(fault_id: int, kind: str, spec: dict[str, Any]) -> HttpFault:
        status = spec.get("status")
        if kind == "http" and status not in HTTP_STATUSES:
            raise FaultSpecError(f"http fault needs 'status' in {HTTP_STATUSES}, got {status!r}")
        path = spec.get("path")
        try:
            pattern = re.compile(path) if path else None
        except re.error as exc:
            raise FaultSpecError(f"'path' is not a valid regex: {exc}") from exc
        retry_after = spec.get("retry_after", 1 if status == 429 else None)
        method = spec.get("method")
        return HttpFault(
            id=fault_id,
            kind=kind,
            method=method.upper() if method else None,
            path=pattern,
            nth=max(1, int(spec.get("nth", 1))),
            following=max(0, int(spec.get("following", 0))),
            status=status if kind == "http" else None,
            retry_after=int(retry_after) if retry_after is not None else None,
        )

    @staticmethod
    def _task(fault_id: int, kind: str, spec: dict[str, Any]) -> TaskFault:
        action = spec.get("action_id")
        fault = TaskFault(
            id=fault_id,
            kind=kind,
            action_id=str(action) if action is not None else None,
            tasks=int(spec.get("tasks", 1)),
            polls=int(spec.get("polls", 0)),
            rows=int(spec.get("rows", 0)),
        )
        if "message" in spec:
            fault.message = str(spec["message"])
        if kind == "hold" and fault.polls < 1:
            raise FaultSpecError("hold fault needs 'polls' >= 1")
        if kind == "reject" and fault.rows < 1:
            raise FaultSpecError("reject fault needs 'rows' >= 1")
        return fault
