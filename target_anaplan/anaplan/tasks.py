"""Run imports and processes and wait for their verdict.

Starting a task is not idempotent (a blind retry could load the data twice), so after
an ambiguous failure the action's task list is checked for a task we already started
before posting again. Imports lock the model: a task that stays ``NOT_STARTED`` is
queued behind another action, so we keep waiting (within the timeout) and say so.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from target_anaplan.anaplan.client import PAGE_SIZE, AnaplanClient
from target_anaplan.anaplan.errors import ActionFailedError, AnaplanError
from target_anaplan.anaplan.models import ActionRef, ModelRef, TaskOutcome
from target_anaplan.anaplan.retry import call_with_retry

logger = logging.getLogger(__name__)

TERMINAL_STATES = frozenset({"COMPLETE", "CANCELLED"})
ADOPT_SKEW_S = 10.0  # tolerated clock difference between us and Anaplan
LOCK_LOG_EVERY_S = 60.0
_KIND_LABEL = {"imports": "import", "processes": "process"}


@dataclass
class _Running:
    """A started task being watched."""

    action: ActionRef
    path: str  # .../{imports|processes}/{id}/tasks/{taskId}
    started: float  # monotonic clock
    last_lock_log: float
    task: dict = field(default_factory=dict)


def run_actions(
    client: AnaplanClient,
    model: ModelRef,
    actions: Sequence[ActionRef],
    *,
    parallel: bool = True,
    poll_interval_s: float = 5.0,
    timeout_s: float = 3600.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[TaskOutcome]:
    """Run ``actions`` and return their outcomes, or raise ``ActionFailedError``.

    ``parallel`` starts every task first and then waits for all (Anaplan queues them
    behind the model lock); otherwise each is started only after the previous one
    succeeded. ``timeout_s`` bounds each task from the moment it was started.
    """

    def run(batch: Sequence[ActionRef]) -> list[TaskOutcome]:
        running = [_start(client, model, a, sleep=sleep, clock=clock) for a in batch]
        _wait(client, running, poll_interval_s, timeout_s, sleep=sleep, clock=clock)
        return _verdict(running)

    if parallel:
        return run(actions)
    return [outcome for action in actions for outcome in run([action])]


def parse_task(action: ActionRef, task: dict) -> TaskOutcome:
    """A ``TaskOutcome`` from a task body (``{"task": {...}}`` or the task itself).

    A process's ``counts`` and ``messages`` include those of its nested results.
    """
    inner = task.get("task") if isinstance(task.get("task"), dict) else task
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


def _nested_outcome(task: dict, result: dict) -> TaskOutcome:
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
    return (
        f"/workspaces/{model.workspace_id}/models/{model.model_id}/{action.kind}/{action.id}/tasks"
    )


def _describe(action: ActionRef, *, upper: bool = False) -> str:
    kind = _KIND_LABEL.get(action.kind, action.kind)
    return f"{kind.title() if upper else kind} {action.name!r} ({action.id})"


def _start(
    client: AnaplanClient,
    model: ModelRef,
    action: ActionRef,
    *,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> _Running:
    """Start one task, adopting instead of re-posting after an ambiguous failure."""
    path = _tasks_path(model, action)
    since_ms = (time.time() - ADOPT_SKEW_S) * 1000
    posted = False

    def attempt() -> str:
        nonlocal posted
        if posted:
            adopted = _task_started_since(client, path, since_ms)
            if adopted:
                logger.info(
                    "Adopting task %s of %s started before a failure", adopted, _describe(action)
                )
                return adopted
        posted = True
        body = client.request("POST", path, json={"localeName": "en_US"}, retry=False)
        task = body.get("task") if isinstance(body.get("task"), dict) else body
        task_id = task.get("taskId") or body.get("taskId")
        if not task_id:
            raise AnaplanError(f"Anaplan started {_describe(action)} without returning a task id")
        return str(task_id)

    task_id = call_with_retry(
        attempt,
        client.retry_policy,
        describe=f"starting {_describe(action)}",
        sleep=sleep,
        clock=clock,
    )
    logger.info("Started %s as task %s", _describe(action), task_id)
    now = clock()
    return _Running(action=action, path=f"{path}/{task_id}", started=now, last_lock_log=now)


def _task_started_since(client: AnaplanClient, path: str, since_ms: float) -> str | None:
    """The newest task of the action created at or after ``since_ms``, if any."""
    params = {"sort": "-creationDate", "limit": PAGE_SIZE}
    body = client.request("GET", path, params=params, retry=False)
    tasks = [t for t in body.get("tasks") or () if _creation_ms(t) >= since_ms]
    if not tasks:
        return None
    return str(max(tasks, key=_creation_ms).get("taskId"))


def _creation_ms(task: dict) -> float:
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
            item.task = body.get("task") if isinstance(body.get("task"), dict) else body
            state = str(item.task.get("taskState") or "")
            if state in TERMINAL_STATES:
                pending.remove(item)
            elif clock() - item.started >= timeout_s:
                raise ActionFailedError(
                    f"{_describe(item.action, upper=True)} did not finish within "
                    f"{timeout_s:.0f} s (last state {state or 'unknown'}); asked Anaplan to "
                    f"cancel task {item.path.rsplit('/', 1)[-1]}. Raise the task timeout or "
                    "check what keeps the model busy."
                )
            elif state == "NOT_STARTED":
                _log_lock_wait(item, clock())
        if pending:
            sleep(poll_interval_s)


def _log_lock_wait(item: _Running, now: float) -> None:
    if now - item.last_lock_log >= LOCK_LOG_EVERY_S:
        item.last_lock_log = now
        logger.info(
            "%s is waiting for the model lock (another action is running); waited %.0f s",
            _describe(item.action, upper=True),
            now - item.started,
        )


def _cancel(client: AnaplanClient, item: _Running) -> None:
    logger.warning("Asking Anaplan to cancel %s", _describe(item.action))
    try:
        client.request("DELETE", item.path, retry=False)
    except AnaplanError as error:
        logger.warning("Could not cancel %s: %s", _describe(item.action), error)


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
    what = _describe(outcome.action, upper=True)
    if outcome.task_state == "CANCELLED":
        return f"{what} was cancelled in Anaplan (task {outcome.task_id})"
    detail = " | ".join(outcome.messages) or "Anaplan gave no reason"
    dump = "; a failure dump is available" if outcome.failure_dump_available else ""
    return f"{what} failed in Anaplan (task {outcome.task_id}): {detail}{dump}"
