"""Other actions (`.../actions`): listed with their optional `actionType`, described, and run
as tasks. A DELETE_BY_SELECTION action deletes the items of its list whose Boolean line item
(in a module dimensioned by the list) is TRUE: the flag-then-delete pattern of
anaplan-deletes-transactional.md §1. Other action types run and change nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from target_anaplan.simulator.engine import ImportOutcome
from target_anaplan.simulator.scenario import DELETE_BY_SELECTION, ActionDef, ModelDef
from target_anaplan.simulator.sorting import sort_lenient
from target_anaplan.simulator.state import SimState
from target_anaplan.simulator.wire import ApiError, Request, Response, paged, success


class ActionsApi:
    """The `/actions` listing and metadata calls (their tasks go through the task routes)."""

    def __init__(self, state: SimState) -> None:
        self.state = state

    def routes(self, prefix: str) -> list[tuple[str, dict[str, Callable[..., Response]]]]:
        """(path pattern, handler by method) under the model `prefix` (both path forms)."""
        return [
            (rf"{prefix}/actions/?$", {"GET": self.list_actions}),
            (rf"{prefix}/actions/(?P<aid>[^/]+)$", {"GET": self.action_metadata}),
        ]

    def list_actions(self, req: Request, model: ModelDef, p: dict[str, str]) -> Response:
        """GET .../actions: `{id, name, actionType}`, without `actionType` when it has none."""
        items = sort_lenient(req, [_summary(a) for a in model.actions.values()])
        return paged(req, f"models/{model.id}/objects/action", "actions", items)

    def action_metadata(self, req: Request, model: ModelDef, p: dict[str, str]) -> Response:
        """GET .../actions/{id}: a delete adds `listId` and `filterLineItemId`; unknown 404."""
        action = model.actions.get(p["aid"])
        if action is None:
            raise ApiError(404, f"Action {p['aid']} not found")
        body = _summary(action)
        if action.list is not None:
            body["listId"] = model.lists[action.list].id
        if action.filter_module is not None and action.filter_line_item is not None:
            module = model.modules[action.filter_module]
            body["filterLineItemId"] = module.line_item_ids[action.filter_line_item]
        return success(req, f"models/{model.id}/objects/action", action=body)


def _summary(action: ActionDef) -> dict[str, Any]:
    body: dict[str, Any] = {"id": action.id, "name": action.name}
    if action.action_type is not None:
        body["actionType"] = action.action_type
    return body


def run_action(state: SimState, model: ModelDef, action: ActionDef) -> ImportOutcome:
    """Run an action as its task completes; a delete removes the flagged items and their
    cells (Anaplan offers no failure dump for actions)."""
    result: dict[str, Any] = {
        "successful": True,
        "failureDumpAvailable": False,
        "objectId": action.id,
    }
    if action.action_type != DELETE_BY_SELECTION:
        return ImportOutcome(result)
    doomed = flagged_items(state, model, action)
    state.delete_items(model.id, str(action.list), doomed)
    if action.report_details:
        message = f"{len(doomed)} items deleted from list {action.list} using filter"
        values = ["listName", str(action.list), "deletedCount", str(len(doomed))]
        detail = {"type": "deleteFromSelectionSucceeded", "localMessageText": message,
                  "occurrences": len(doomed), "values": values}  # fmt: skip
        result["details"] = [detail]
    return ImportOutcome(result)


def flagged_items(state: SimState, model: ModelDef, action: ActionDef) -> list[str]:
    """Keys of the list items with a TRUE filter cell (any, when the module has more
    dimensions), in list order."""
    module = model.modules[str(action.filter_module)]
    position = module.dimensions.index(str(action.list))
    cells = state.modules[(model.id, module.name)]
    line_item = str(action.filter_line_item)
    flagged = {key[position] for key, values in cells.items() if values.get(line_item) is True}
    return [key for key in state.lists[(model.id, str(action.list))].rows if key in flagged]
