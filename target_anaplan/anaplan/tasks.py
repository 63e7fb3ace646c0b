"""Run imports and processes and wait for their verdict.

Starting a task is not idempotent (a blind retry could load the data twice), so the
action's newest task ids are noted before the first POST, and after an ambiguous
failure a task that was not among them is adopted instead of posting again. Imports
lock the model: a task that stays ``NOT_STARTED`` is queued behind another action, so
we keep waiting (within the timeout) and say so. Tasks being waited for are kept in
their client's ``running_tasks``, so a signal handler can cancel them before the process
exits (``cancel_running_tasks``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from target_anaplan.anaplan.errors import ActionFailedError, AnaplanError
from target_anaplan.anaplan.models import ActionRef, ModelRef, TaskOutcome
from target_anaplan.anaplan.retry import call_with_retry

if TYPE_CHECKING:  # the client owns a RunningTasks: a runtime import would be circular
    from target_anaplan.anaplan.client import AnaplanClient

logger = logging.getLogger(__name__)

TERMINAL_STATES = frozenset({"COMPLETE", "CANCELLED"})
# Newest task ids noted before a start: a task not among them after a failed POST is ours
# (unless more than this many tasks of the action were started meanwhile).
ADOPT_WINDOW = 100
# By default, at most this often a line about a task queued behind the model lock or running.
PROGRESS_LOG_EVERY_S = 30.0


@dataclass
class _Running:
    """A started task being watched."""

    action: ActionRef
    path: str  # .../{imports|processes}/{id}/tasks/{taskId}
    started: float  # monotonic clock
    last_log: float
    model_id: str = ""
    log_every_s: float = PROGRESS_LOG_EVERY_S  # at most this often, a line about the task
    task: dict[str, Any] = field(default_factory=dict)


def run_actions(
    client: AnaplanClient,
    model: ModelRef,
    actions: Sequence[ActionRef],
    *,
    parallel: bool = True,
    poll_interval_s: float = 5.0,
    timeout_s: float = 3600.0,
    progress_every_s: float = PROGRESS_LOG_EVERY_S,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[TaskOutcome]:
    """Run ``actions`` and return their outcomes, or raise ``ActionFailedError``.

    ``parallel`` starts every task first and then waits for all (Anaplan queues them
    behind the model lock); otherwise each is started only after the previous one
    succeeded. ``timeout_s`` bounds each task from the moment it was started.
    """

    def run(batch: Sequence[ActionRef]) -> list[TaskOutcome]:
        running: list[_Running] = []
        try:
            for action in batch:
                running.append(_start(client, model, action, clock=clock))
                running[-1].log_every_s = progress_every_s
        except BaseException:
            # The commit fails: tasks already started must not load on unwatched.
            for item in running:
                _cancel(client, item)
            client.running_tasks.discard(running)
            raise
        _wait(client, running, poll_interval_s, timeout_s, sleep=sleep, clock=clock)
        return _verdict(running)

    if parallel:
        return run(actions)
    return [outcome for action in actions for outcome in run([action])]


def parse_task(action: ActionRef, task: dict[str, Any]) -> TaskOutcome:
    """A ``TaskOutcome`` from a task body (``{"task": {...}}`` or the task itself).

    A process's ``counts`` and ``messages`` include those of its nested results.
    """
    inner: dict[str, Any] = task["task"] if isinstance(task.get("task"), dict) else task
    result = inner.get("result") or {}
    nested = tuple(_nested_outcome(inner, n) for n in result.get("nestedResults") or ())
    counts = _counts(result.get("details"))
    messages = list(_messages(result.get("details")))
    for child in nested:
        for key, value in child.counts.items():
            counts[key] = counts.get(key, 0) + value
        messages.extend(m for m in child.messages if m not in messages)
    return TaskOutcome(
        action=action,
        task_id=str(inner.get("taskId") or task.get("taskId") or ""),
        task_state=str(inner.get("taskState") or ""),
        successful=bool(result.get("successful", False)),
        failure_dump_available=bool(result.get("failureDumpAvailable", False)),
        messages=tuple(messages),
        counts=counts,
        nested=nested,
    )


def _nested_outcome(task: dict[str, Any], result: dict[str, Any]) -> TaskOutcome:
    object_id = str(result.get("objectId") or "")
    step = ActionRef(kind="imports", id=object_id, name=str(result.get("objectName") or object_id))
    return parse_task(
        step,
        {"taskId": task.get("taskId"), "taskState": task.get("taskState"), "result": result},
    )


def _counts(details: object) -> dict[str, int]:
    """Sum the numeric pairs of each flat ``[key, value, key, value, ...]`` list."""
    counts: dict[str, int] = {}
    for detail in details if isinstance(details, list) else ():
        values = detail.get("values") or []
        for key, value in zip(values[0::2], values[1::2], strict=False):
            number = _as_int(value)
            if number is not None:
                counts[str(key)] = counts.get(str(key), 0) + number
    return counts


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(str(value))
    except ValueError:
        return None
    return int(number) if number.is_integer() else None


def _messages(details: object) -> list[str]:
    entries = details if isinstance(details, list) else ()
    texts = (str(d.get("localMessageText") or "").strip() for d in entries)
    return [t for t in texts if t]


def _tasks_path(model: ModelRef, action: ActionRef) -> str:
    return f"{model.path}/{action.kind}/{action.id}/tasks"


def _capitalized(action: ActionRef) -> str:
    return action.label[:1].upper() + action.label[1:]


def _start(
    client: AnaplanClient,
    model: ModelRef,
    action: ActionRef,
    *,
    clock: Callable[[], float],
) -> _Running:
    """Start one task, adopting instead of re-posting after an ambiguous failure."""
    path = _tasks_path(model, action)
    known: set[str] | None = None  # the action's newest task ids before our first POST
    posted = False

    def attempt() -> str:
        nonlocal known, posted
        if known is None:
            known = _newest_task_ids(client, path)
        if posted:
            adopted = _task_started_since(client, path, known)
            if adopted:
                logger.info(
                    "Adopting task %s of %s started before a failure", adopted, action.label
                )
                return adopted
        posted = True
        body = client.request("POST", path, json={"localeName": "en_US"}, retry=False)
        task = body["task"] if isinstance(body.get("task"), dict) else body
        task_id = task.get("taskId") or body.get("taskId")
        if not task_id:
            raise AnaplanError(f"Anaplan started {action.label} without returning a task id")
        return str(task_id)

    task_id = call_with_retry(attempt, client.retry_policy, describe=f"starting {action.label}")
    logger.info("Started %s as task %s", action.label, task_id)
    now = clock()
    item = _Running(
        action=action,
        path=f"{path}/{task_id}",
        started=now,
        last_log=now,
        model_id=model.model_id,
    )
    client.running_tasks.add(item)
    return item


def _newest_tasks(client: AnaplanClient, path: str) -> list[dict[str, Any]]:
    """The action's most recent tasks, newest first (one page of ``ADOPT_WINDOW``)."""
    params = {"sort": "-creationDate", "limit": ADOPT_WINDOW}
    body = client.request("GET", path, params=params, retry=False)
    return [t for t in body.get("tasks") or () if t.get("taskId")]


def _newest_task_ids(client: AnaplanClient, path: str) -> set[str]:
    return {str(t["taskId"]) for t in _newest_tasks(client, path)}


def _task_started_since(client: AnaplanClient, path: str, known: set[str]) -> str | None:
    """The oldest task of the action that was not there before our first POST, if any."""
    fresh = [t for t in _newest_tasks(client, path) if str(t["taskId"]) not in known]
    if not fresh:
        return None
    return str(min(fresh, key=_creation_ms)["taskId"])


def _creation_ms(task: dict[str, Any]) -> float:
    try:
        return float(task.get("creationTime") or 0)
    except (TypeError, ValueError):
        return 0.0


def _wait(
    client: AnaplanClient,
    running: list[_Running],
    poll_interval_s: float,
    timeout_s: float,
    *,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> None:
    """Poll until every task is terminal; cancel and fail those that outlive ``timeout_s``.

    A timeout or an interrupt (Ctrl-C, or a signal handler's ``SystemExit``) cancels
    every task still running, so an abandoned run does not keep loading into the model.
    """
    pending = list(running)
    try:
        _poll_until_done(client, pending, poll_interval_s, timeout_s, sleep=sleep, clock=clock)
    except (ActionFailedError, KeyboardInterrupt, SystemExit):
        for item in pending:
            _cancel(client, item)
        raise
    finally:
        client.running_tasks.discard(running)


def _poll_until_done(
    client: AnaplanClient,
    pending: list[_Running],
    poll_interval_s: float,
    timeout_s: float,
    *,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> None:
    """Poll ``pending`` tasks, removing each once it is terminal."""
    while pending:
        for item in list(pending):
            body = client.request("GET", item.path)
            item.task = body["task"] if isinstance(body.get("task"), dict) else body
            state = str(item.task.get("taskState") or "")
            if state in TERMINAL_STATES:
                pending.remove(item)
            elif clock() - item.started >= timeout_s:
                raise ActionFailedError(
                    f"{_capitalized(item.action)} did not finish within "
                    f"{timeout_s:.0f} s (last state {state or 'unknown'}); asked Anaplan to "
                    f"cancel task {item.path.rsplit('/', 1)[-1]}. Raise the task timeout or "
                    "check what keeps the model busy."
                )
            elif state == "NOT_STARTED":
                _log_lock_wait(client, item, clock())
            else:
                _log_progress(item, clock())
        if pending:
            sleep(poll_interval_s)


def _log_progress(item: _Running, now: float) -> None:
    """A running task's state, progress and step, as its last poll gave them."""
    if now - item.last_log < item.log_every_s:
        return
    item.last_log = now
    task = item.task
    progress = task.get("progress")
    shown = (
        f" {float(progress):.0%}" if isinstance(progress, (int, float)) and progress >= 0 else ""
    )
    step = f" ({task['currentStep']})" if task.get("currentStep") else ""
    logger.info(
        "%s: %s%s%s, %.0f s since it started",
        _capitalized(item.action),
        task.get("taskState") or "running",
        shown,
        step,
        now - item.started,
    )


def _log_lock_wait(client: AnaplanClient, item: _Running, now: float) -> None:
    if now - item.last_log >= item.log_every_s:
        item.last_log = now
        logger.info(
            "%s is waiting for the model lock (another action is running%s); waited %.0f s",
            _capitalized(item.action),
            _model_activity(client, item.model_id),
            now - item.started,
        )


def _model_activity(client: AnaplanClient, model_id: str) -> str:
    """What the model status endpoint says holds the model, as ", model status: ..."."""
    try:
        body = client.request("GET", f"/models/{model_id}/status", retry=False)
    except AnaplanError:
        return ""  # only for the log line: a failed status call changes nothing
    status = body.get("requestStatus") or {}
    parts = [str(status[key]) for key in ("currentStep", "tooltip") if status.get(key)]
    if status.get("taskId"):
        parts.append(f"task {status['taskId']}")
    return f", model status: {' '.join(parts)}" if parts else ""


class RunningTasks:
    """Tasks a client started and has not yet seen finish, across drain threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[int, _Running] = {}

    def add(self, item: _Running) -> None:
        with self._lock:
            self._items[id(item)] = item

    def discard(self, items: Sequence[_Running]) -> None:
        with self._lock:
            for item in items:
                self._items.pop(id(item), None)

    def take_all(self) -> list[_Running]:
        with self._lock:
            items = list(self._items.values())
            self._items.clear()
            return items


def cancel_running_tasks(client: AnaplanClient, timeout_s: float = 10.0) -> int:
    """Ask Anaplan to cancel every task ``client`` still waits for; returns how many.

    For signal handlers: an abandoned task would otherwise keep loading rows whose state
    is never emitted, or run later on the file the next run uploads. The requests go out
    on a helper thread bounded by ``timeout_s``, because the signal may have interrupted
    the main thread while it held a lock the HTTP client needs.
    """
    items: list[_Running] = []

    def cancel_all() -> None:
        items.extend(client.running_tasks.take_all())
        for item in items:
            _cancel(client, item)

    worker = threading.Thread(target=cancel_all, name="cancel-tasks", daemon=True)
    worker.start()
    worker.join(timeout_s)
    return len(items)


def _cancel(client: AnaplanClient, item: _Running) -> None:
    logger.warning("Asking Anaplan to cancel %s", item.action.label)
    try:
        client.request("DELETE", item.path, retry=False)
    except AnaplanError as error:
        logger.warning("Could not cancel %s: %s", item.action.label, error)


def _verdict(running: list[_Running]) -> list[TaskOutcome]:
    """The outcomes, or one error describing every task that failed or was cancelled."""
    outcomes = [parse_task(item.action, item.task) for item in running]
    failed = [o for o in outcomes if not _succeeded(o)]
    if failed:
        raise ActionFailedError("; ".join(_failure_text(o) for o in failed), outcomes=tuple(failed))
    return outcomes


def _succeeded(outcome: TaskOutcome) -> bool:
    return (
        outcome.task_state == "COMPLETE"
        and outcome.successful
        and all(n.successful for n in outcome.nested)
    )


def _failure_text(outcome: TaskOutcome) -> str:
    what = _capitalized(outcome.action)
    if outcome.task_state == "CANCELLED":
        return f"{what} was cancelled in Anaplan (task {outcome.task_id})"
    detail = " | ".join(outcome.messages) or "Anaplan gave no reason"
    dump = "; a failure dump is available" if outcome.failure_dump_available else ""
    return f"{what} failed in Anaplan (task {outcome.task_id}): {detail}{dump}"
