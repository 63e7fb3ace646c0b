"""Parsing task results: flat key/value lists, nested process results, task id fallback."""

from __future__ import annotations

from target_anaplan.anaplan.models import ActionRef
from target_anaplan.anaplan.tasks import parse_task

IMPORT = ActionRef(kind="imports", id="112000000009", name="Employees")
PROCESS = ActionRef(kind="processes", id="118000000002", name="Nightly")


def detail(values, text=""):
    return {"type": "hierarchyRowsProcessed", "localMessageText": text, "values": values}


def test_flat_value_pairs_become_counts_in_any_order():
    task = {
        "task": {
            "taskId": "1B1D",
            "taskState": "COMPLETE",
            "result": {
                "successful": True,
                "failureDumpAvailable": True,
                "details": [
                    detail(
                        ["hierarchyName", "Employees", "successRowCount", "90", "failedCount", "2"],
                        "Employees: 90 (0/90) rows successful, 5 ignored",
                    ),
                    detail(["failedCount", "3", "ignoredCount", "5", "successRowCount", "10"]),
                ],
            },
        }
    }
    outcome = parse_task(IMPORT, task)
    assert outcome.task_id == "1B1D"
    assert outcome.task_state == "COMPLETE"
    assert outcome.successful is True
    assert outcome.failure_dump_available is True
    assert outcome.counts == {"successRowCount": 100, "failedCount": 5, "ignoredCount": 5}
    assert outcome.messages == ("Employees: 90 (0/90) rows successful, 5 ignored",)


def test_odd_length_and_non_numeric_values_are_tolerated():
    task = {"taskId": "T", "result": {"details": [detail(["a", "x", "b", 2, "dangling"])]}}
    assert parse_task(IMPORT, task).counts == {"b": 2}


def test_task_id_falls_back_to_the_top_level():
    body = {"taskId": "OLD-STYLE", "task": {"taskState": "NOT_STARTED"}}
    outcome = parse_task(IMPORT, body)
    assert outcome.task_id == "OLD-STYLE"
    assert outcome.task_state == "NOT_STARTED"
    assert outcome.successful is False


def test_process_nested_results_are_parsed_and_summed():
    task = {
        "task": {
            "taskId": "P1",
            "taskState": "COMPLETE",
            "result": {
                "successful": False,
                "failureDumpAvailable": True,
                "objectId": "118000000002",
                "nestedResults": [
                    {
                        "objectId": "112000000000",
                        "successful": True,
                        "failureDumpAvailable": False,
                        "details": [detail(["successRowCount", "4", "failedCount", "0"])],
                    },
                    {
                        "objectId": "112000000001",
                        "successful": False,
                        "failureDumpAvailable": True,
                        "details": [detail(["failedCount", "2"], "Sales: 2 failed")],
                    },
                ],
            },
        }
    }
    outcome = parse_task(PROCESS, task)
    assert outcome.successful is False
    assert [n.action.id for n in outcome.nested] == ["112000000000", "112000000001"]
    assert [n.successful for n in outcome.nested] == [True, False]
    assert outcome.nested[1].failure_dump_available is True
    assert outcome.nested[1].task_id == "P1"
    assert outcome.counts == {"successRowCount": 4, "failedCount": 2}
    assert outcome.messages == ("Sales: 2 failed",)
