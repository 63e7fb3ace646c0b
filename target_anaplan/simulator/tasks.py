"""Task lifecycle: queueing behind the model lock, per-poll progress, cancel, completion.

Progress is driven by polls, never by wall time: every poll of a task in a model is one
"tick" of that model. A tick moves the running task one step (or starts the next queued one),
so tests get the same sequence of states on every run.
"""

from __future__ import annotations

import uuid
from typing import Any

from target_anaplan.simulator.actions import run_action
from target_anaplan.simulator.engine import ImportOutcome, failed_outcome, run_import
from target_anaplan.simulator.scenario import DELETE_BY_SELECTION, ActionDef, ImportDef, ModelDef
from target_anaplan.simulator.state import SimState, Task
from target_anaplan.simulator.tweaks import ProcessTweaks

Step = ImportDef | ActionDef

ACTIVE = ("IN_PROGRESS", "CANCELLING")
TERMINAL = ("COMPLETE", "CANCELLED")


class TaskRunner:
    """Creates, advances and cancels tasks; the caller holds the state lock."""

    def __init__(self, state: SimState, tweaks: ProcessTweaks) -> None:
        self.state = state
        self.tweaks = tweaks

    def create(self, model: ModelDef, action_id: str, kind: str, user: str) -> Task:
        """Queue a new task in NOT_STARTED."""
        task = Task(
            id=uuid.uuid4().hex.upper(),
            model_id=model.id,
            action_id=action_id,
            kind=kind,
            user=user,
            created_ms=self.state.clock.millis(),
        )
        self.state.tasks[task.id] = task
        return task

    def for_action(self, model_id: str, action_id: str) -> list[Task]:
        """The action's tasks, oldest first."""
        return [
            t for t in self.state.tasks.values()
            if t.model_id == model_id and t.action_id == action_id
        ]  # fmt: skip

    def poll(self, task: Task) -> None:
        """A client looked at the task: one tick of its model."""
        task.polls += 1
        self.tick(task.model_id)

    def cancel(self, task: Task) -> None:
        """DELETE on a task: a queued or running task goes CANCELLING, then CANCELLED."""
        if task.state in ("NOT_STARTED", "IN_PROGRESS"):
            task.state = "CANCELLING"

    def running(self, model_id: str) -> Task | None:
        """The task holding the model lock, if any."""
        return next(
            (t for t in self.state.tasks.values() if t.model_id == model_id and t.state in ACTIVE),
            None,
        )

    def tick(self, model_id: str) -> None:
        """Advance the model's task queue by one step."""
        active = self.running(model_id)
        if active is not None and active.state == "CANCELLING":
            active.state = "CANCELLED"
            return
        if active is not None:
            if active.hold > 0:
                active.hold -= 1
            else:
                self._complete(active)
            return
        queued = next(
            (t for t in self.state.tasks.values()
             if t.model_id == model_id and t.state == "NOT_STARTED"),
            None,
        )  # fmt: skip
        if queued is not None:
            self._start(queued)

    def _steps(self, task: Task) -> list[Step]:
        """What the task runs: its import or action, or a process's steps in order."""
        model = self.state.scenario.models[task.model_id]
        if task.kind != "process":
            return [_step(model, task.action_id)]
        return [_step(model, a) for a in model.processes[task.action_id].actions]

    def _start(self, task: Task) -> None:
        model = self.state.scenario.models[task.model_id]
        action = model.processes.get(task.action_id) or _step(model, task.action_id)
        fault = self.state.faults.take_task("hold", task.action_id)
        task.hold = action.hold_polls + (fault.polls if fault else 0)
        files = self.state.files[model.id]
        task.snapshot = {
            step.file_id: files[step.file_id].chunks_for(task.user, self.state.clock())
            for step in self._steps(task)
            if isinstance(step, ImportDef)
        }
        task.state = "IN_PROGRESS"

    def _complete(self, task: Task) -> None:
        model = self.state.scenario.models[task.model_id]
        outcomes = []
        with self.tweaks.collector_paused():
            for step in self._steps(task):
                outcome = self._run_one(model, step, task)
                outcomes.append(outcome)
                if outcome.dump is not None:
                    task.dumps[step.id] = outcome.dump
                if not outcome.result["successful"]:
                    break
        if any(o.result["successful"] for o in outcomes):
            self.state.record_save(model.id, task.user)
        if task.kind != "process":
            task.result = outcomes[0].result
        else:
            task.result = {
                "successful": all(o.result["successful"] for o in outcomes),
                "failureDumpAvailable": any(o.dump is not None for o in outcomes),
                "objectId": task.action_id,
                "nestedResults": [o.result for o in outcomes],
            }
        task.dumps_touched = self.state.clock()
        task.state = "COMPLETE"

    def _run_one(self, model: ModelDef, step: Step, task: Task) -> ImportOutcome:
        fail = self.state.faults.take_task("fail", step.id)
        if isinstance(step, ActionDef):
            if fail is None:
                return run_action(self.state, model, step)
            deletes = step.action_type == DELETE_BY_SELECTION
            kind = "deleteFromSelectionFailed" if deletes else "actionFailed"
            return failed_outcome(step.id, kind, fail.message)
        if fail is not None:
            return failed_outcome(step.id, "importFailedGeneralError", fail.message)
        reject = self.state.faults.take_task("reject", step.id)
        rows = reject.rows if reject else 0
        return run_import(self.state, model, step, task.snapshot.get(step.file_id), rows)


def _step(model: ModelDef, action_id: str) -> Step:
    return model.imports.get(action_id) or model.actions[action_id]


def task_json(task: Task) -> dict[str, Any]:
    """The `task` object of `GET .../tasks/{taskId}`."""
    body: dict[str, Any] = {"type": "taskInformation", **task.summary()}
    if task.state == "NOT_STARTED":
        body["progress"] = 0.0
    elif task.state == "IN_PROGRESS":
        body.update(progress=0.5, currentStep="Processing ...")
    elif task.state == "CANCELLING":
        body.update(progress=0.5, currentStep="Cancelling ...")
    elif task.state == "CANCELLED":
        body.update(progress=1.0, currentStep="Cancelled.")
    else:
        ok = bool(task.result and task.result["successful"])
        body.update(progress=1.0, currentStep="Complete." if ok else "Failed.", result=task.result)
    return body
