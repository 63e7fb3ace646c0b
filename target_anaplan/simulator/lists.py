"""Lists over the transactional API (`.../lists...`): metadata with each list's parent, so a
client can load parent lists before child lists, and reading, adding, updating and deleting
items one call at a time. Shapes and rules follow anaplan-deletes-transactional.md §2 and §4;
where Anaplan's documentation contradicts itself, the scenario's `list_*` keys choose.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

from target_anaplan.simulator.engine import RowError, parse_value
from target_anaplan.simulator.scenario import ListDef, ModelDef
from target_anaplan.simulator.sorting import sort_lenient
from target_anaplan.simulator.state import (
    MISSING,
    ROW_CODE,
    ROW_ID,
    ROW_NAME,
    ROW_PARENT,
    ROW_PROPERTIES,
    ListData,
    SimState,
)
from target_anaplan.simulator.wire import ApiError, Request, Response, paged, success

MAX_ITEMS_PER_CALL = 100_000
ITEM_CAPACITY = 999_999_999  # a list's item index runs out there
PROPERTY_FORMATS = {"text": "TEXT", "number": "NUMBER", "date": "DATE", "boolean": "BOOLEAN"}
Row = tuple[Any, ...]


class ItemError(Exception):
    """One item of a request cannot be done; reported in `failures`, the others go on."""

    def __init__(self, failure_type: str, details: str) -> None:
        super().__init__(details)
        self.failure_type = failure_type

    def as_json(self, index: int) -> dict[str, Any]:
        """The `failures[]` entry for request item `index`."""
        return {
            "requestIndex": index,
            "failureType": self.failure_type,
            "failureMessageDetails": str(self),
        }


class ListsApi:
    """The `/lists` calls of one simulator; the caller holds the state lock."""

    def __init__(self, state: SimState) -> None:
        self.state = state

    def routes(self, prefix: str) -> list[tuple[str, dict[str, Callable[..., Response]]]]:
        """(path pattern, handler by method) under the model `prefix` (both path forms)."""
        items = rf"{prefix}/lists/(?P<lid>[^/]+)"
        return [
            (rf"{prefix}/lists/?$", {"GET": self.list_lists}),
            (rf"{items}$", {"GET": self.list_metadata}),
            (rf"{items}/items/?$", {
                "GET": self.read_items, "POST": self.add_or_delete, "PUT": self.update_items}),
            (rf"{items}/resetIndex$", {"POST": self.reset_index}),
        ]  # fmt: skip

    # -- reading ----------------------------------------------------------------------------

    def _list(self, model: ModelDef, p: dict[str, str]) -> ListData:
        definition = next((d for d in model.lists.values() if d.id == p["lid"]), None)
        if definition is None:
            raise ApiError(404, f"List {p['lid']} not found")
        return self.state.lists[(model.id, definition.name)]

    def _parent_list(self, model: ModelDef, data: ListData) -> ListData | None:
        parent = data.definition.parent
        return self.state.lists[(model.id, parent)] if parent is not None else None

    def list_lists(self, req: Request, model: ModelDef, p: dict[str, str]) -> Response:
        """GET .../lists: `{id, name}` of every list, paged (and sorted, as model lists are)."""
        items = [{"id": d.id, "name": d.name} for d in model.lists.values()]
        return paged(req, f"models/{model.id}/objects/list", "lists", sort_lenient(req, items))

    def list_metadata(self, req: Request, model: ModelDef, p: dict[str, str]) -> Response:
        """GET .../lists/{id}: `metadata`; keys that are not set (a parent) are left out."""
        data = self._list(model, p)
        definition = data.definition
        meta: dict[str, Any] = {"id": definition.id, "name": definition.name}
        if definition.parent is not None:
            parent = model.lists[definition.parent]
            meta["parent"] = {"id": parent.id, "name": parent.name}
        used = data.next_id - data.first_id
        meta.update(
            numberedList=definition.numbered,
            itemCount=len(data),
            permittedItems=ITEM_CAPACITY - used,
            properties=[
                {"name": name, "format": PROPERTY_FORMATS[kind]}
                for name, kind in definition.properties.items()
            ],
            subsets=[],
            hasSelectiveAccess=False,
            productionData=False,
            useTopLevelAsPageDefault=False,
            workflowEnabled=False,
            dataTags=[],
        )
        if definition.numbered:
            meta["nextItemIndex"] = used
        return success(req, f"models/{model.id}/objects/listMetadata", metadata=meta)

    def read_items(self, req: Request, model: ModelDef, p: dict[str, str]) -> Response:
        """GET .../lists/{id}/items[?includeAll=true]: JSON `listItems`, or CSV when the
        client accepts text/csv; 400 above the scenario's `list_read_limit`."""
        data = self._list(model, p)
        limit = self.state.scenario.list_api.read_limit
        if len(data) > limit:
            raise ApiError(
                400,
                f"List {data.definition.name} has {len(data)} items, more than the {limit} "
                "this call returns; read it with a read request (.../readRequests).",
            )
        include_all = req.param("includeAll") == "true"
        parents = self._parent_list(model, data)
        items = [
            _item_json(data, parents, row, include_all=include_all) for row in data.rows.values()
        ]
        if "text/csv" in (req.header("Accept") or ""):
            return _csv_response(data, parents, items, include_all=include_all)
        return success(req, f"models/{model.id}/objects/item", listItems=items)

    # -- writing ----------------------------------------------------------------------------

    def add_or_delete(self, req: Request, model: ModelDef, p: dict[str, str]) -> Response:
        """POST .../lists/{id}/items?action=add|delete."""
        action = req.param("action")
        if action == "add":
            return self.add_items(req, model, self._list(model, p))
        if action == "delete":
            return self.delete_items(req, model, self._list(model, p))
        raise ApiError(400, "The query parameter action must be 'add' or 'delete'")

    def add_items(self, req: Request, model: ModelDef, data: ListData) -> Response:
        """`{items: [{name, code, parent, properties}]}`: each new, or a failure."""
        items = _request_items(req)
        parents = self._parent_list(model, data)
        names = _names(data)
        failures = []
        for index, raw in enumerate(items):
            try:
                key, row = _new_item(data, parents, names, raw)
            except ItemError as failure:
                failures.append(failure.as_json(index))
                continue
            data.put(key, row)
            names[row[ROW_NAME]] = key
        counts = {"added": len(items) - len(failures), "ignored": len(failures)}
        return self._counted(req, model, counts, len(items), failures)

    def update_items(self, req: Request, model: ModelDef, p: dict[str, str]) -> Response:
        """PUT .../lists/{id}/items: change the given fields of items found by id, code or
        name; an item with a code must be named by its id or code."""
        data = self._list(model, p)
        items = _request_items(req)
        parents = self._parent_list(model, data)
        names, by_id = _names(data), data.by_id()
        failures = []
        for index, raw in enumerate(items):
            try:
                key, row = _updated_item(data, parents, names, by_id, raw)
            except ItemError as failure:
                failures.append(failure.as_json(index))
                continue
            old_name = data.rows[key][ROW_NAME]
            data.put(key, row)
            new_key = row[ROW_CODE] or row[ROW_NAME]
            if new_key != key:
                self.state.rename_item(model.id, data.definition.name, key, new_key)
                by_id[row[ROW_ID]] = new_key
            if names.get(old_name) == key:
                del names[old_name]
            names.setdefault(row[ROW_NAME], new_key)
        counts = {"updated": len(items) - len(failures), "ignored": len(failures)}
        return self._counted(req, model, counts, len(items), failures)

    def _counted(
        self,
        req: Request,
        model: ModelDef,
        counts: dict[str, int],
        total: int,
        failures: list[dict[str, Any]],
    ) -> Response:
        if total > len(failures):
            self.state.record_save(model.id, req.user)
        body: dict[str, Any] = {**counts, "total": total}
        if failures or self.state.scenario.list_api.empty_failures:
            body["failures"] = failures
        return success(req, f"models/{model.id}/objects/item", **body)

    def delete_items(self, req: Request, model: ModelDef, data: ListData) -> Response:
        """`{items: [{id} | {code}]}` (an id may be a number): each deleted, with its cells in
        every module dimensioned by the list, or a failure."""
        items = _request_items(req)
        by_id = data.by_id()
        doomed: dict[str, None] = {}
        failures = []
        for index, raw in enumerate(items):
            try:
                key = _item_to_delete(data, by_id, raw)
                if key in doomed:
                    raise ItemError("Not found", f"Item {key!r} is already deleted")
            except ItemError as failure:
                failures.append(failure.as_json(index))
                continue
            doomed[key] = None
        self.state.delete_items(model.id, data.definition.name, list(doomed))
        if doomed:
            self.state.record_save(model.id, req.user)
        schema = f"models/{model.id}/objects/item"
        if not failures:
            return success(req, schema, deleted=len(doomed))
        if self.state.scenario.list_api.nested_delete_result:
            result = {"numberOfItemsDeleted": len(doomed), "failures": failures}
            return success(req, schema, result=result)
        return success(req, schema, deleted=len(doomed), failures=failures)

    def reset_index(self, req: Request, model: ModelDef, p: dict[str, str]) -> Response:
        """POST .../lists/{id}/resetIndex: new items count from the first index again."""
        data = self._list(model, p)
        if len(data):
            raise ApiError(400, "You can't reset the list item index of a list that contains data.")
        data.next_id = data.first_id
        return Response(200)


def _request_items(req: Request) -> list[dict[str, Any]]:
    body = req.json()
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ApiError(400, 'The body must be {"items": [objects]}')
    if len(items) > MAX_ITEMS_PER_CALL:
        raise ApiError(
            400, f"At most {MAX_ITEMS_PER_CALL} items per call; this request has {len(items)}"
        )
    return items


# -- items as the API shows them ------------------------------------------------------------


def _text(value: Any) -> str:
    """A property value as the API writes it: always a string ("" when blank)."""
    if value is None or value is MISSING:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _item_json(
    data: ListData, parents: ListData | None, row: Row, *, include_all: bool
) -> dict[str, Any]:
    item: dict[str, Any] = {"id": str(row[ROW_ID]), "name": row[ROW_NAME]}
    if row[ROW_CODE]:
        item["code"] = row[ROW_CODE]
    if row[ROW_PARENT]:
        item["parent"] = row[ROW_PARENT]
        parent_key = parents.lookup().get(row[ROW_PARENT]) if parents is not None else None
        if parents is not None and parent_key is not None:
            parent = parents.rows[parent_key]
            item.update(
                parent=parent[ROW_NAME],
                parentId=str(parent[ROW_ID]),
                listId=parents.definition.id,
                listName=parents.definition.name,
            )
    if include_all:
        item["subsets"] = {}
        values = zip(data.properties, row[ROW_PROPERTIES:], strict=True)
        item["properties"] = {name: _text(value) for name, value in values}
    return item


def _csv_response(
    data: ListData, parents: ListData | None, items: list[dict[str, Any]], *, include_all: bool
) -> Response:
    """The items as CSV: the JSON fields as columns, then (includeAll) one per property."""
    columns = ["id", "name", "code", "parent", "parentId"]
    if parents is not None:
        columns += ["listId", "listName"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns + (list(data.properties) if include_all else []))
    for item in items:
        properties = list(item["properties"].values()) if include_all else []
        writer.writerow([item.get(c, "") for c in columns] + properties)
    body = out.getvalue().encode("utf-8")
    return Response(200, body, {"Content-Type": "text/csv; charset=UTF-8"})


# -- item rules -----------------------------------------------------------------------------


def _given(raw: dict[str, Any], field: str) -> str | None:
    """A name, code or parent as text (clients send numbers too); None when not sent."""
    value = raw.get(field)
    return None if value is None else str(value).strip()


def _check_parent(parents: ListData | None, parent: str) -> None:
    if parent and parents is not None and parent not in parents.lookup():
        raise ItemError(
            "INCORRECT_FORMAT",
            f"invalid parent -- parent:{parent} is not an item of list {parents.definition.name}",
        )


def _properties(definition: ListDef, raw: dict[str, Any]) -> dict[str, Any]:
    given = raw.get("properties") or {}
    if not isinstance(given, dict):
        raise ItemError("INCORRECT_FORMAT", "properties must be an object")
    values = {}
    for name, value in given.items():
        kind = definition.properties.get(name)
        if kind is None:
            raise ItemError("INCORRECT_FORMAT", f"unknown property -- column name:{name}")
        text = _text(value)
        try:
            values[name] = parse_value(kind, text, ".")
        except RowError:
            raise ItemError(
                "INCORRECT_FORMAT",
                f"incorrect format -- column name:{name}, value:wrong value for {kind}",
            ) from None
    return values


def _names(data: ListData) -> dict[str, str]:
    """Item key by name (the first item of a name), kept up to date by the caller while one
    request changes the list."""
    names: dict[str, str] = {}
    for key, row in data.rows.items():
        names.setdefault(row[ROW_NAME], key)
    return names


def _with_code(data: ListData, code: str) -> str | None:
    row = data.rows.get(code)
    return code if row is not None and row[ROW_CODE] == code else None


def _new_item(
    data: ListData, parents: ListData | None, names: dict[str, str], raw: dict[str, Any]
) -> tuple[str, Row]:
    """Add rules: general lists need a unique name; numbered lists make the name."""
    definition = data.definition
    name, code = _given(raw, "name"), _given(raw, "code") or ""
    if definition.numbered:
        if name:
            raise ItemError(
                "INCORRECT_FORMAT", "name is not a valid input for an item of a numbered list"
            )
        name = f"#{data.next_id - data.first_id + 1}"
    elif not name:
        raise ItemError("INCOMPLETE_DATA", "name is required for a new item")
    if code and code in data.rows:
        raise ItemError("DUPLICATE", f"duplicate code -- code:{code}")
    if name in names or (not code and name in data.rows):
        raise ItemError("DUPLICATE", f"duplicate name -- name:{name}")
    parent = _given(raw, "parent") or ""
    _check_parent(parents, parent)
    row = data.new_row(code, name, parent, _properties(definition, raw))
    return code or name, row


def _item_to_update(
    data: ListData, names: dict[str, str], by_id: dict[int, str], raw: dict[str, Any]
) -> str:
    """The key of the item a PUT names: by id, else by code, else by name (an item with a
    code must be named by its code or id; an item without a code may get one by name)."""
    name, code = _given(raw, "name"), _given(raw, "code")
    if "id" in raw:
        return _with_id(by_id, raw["id"])
    key = _with_code(data, code) if code else None
    if key is None and name and not data.definition.numbered:
        key = names.get(name)
        if key is not None and data.rows[key][ROW_CODE]:
            raise ItemError(
                "INCOMPLETE_DATA", f"the item {name!r} has a code: name it by its code or id"
            )
    if key is None:
        if not (code or name):
            raise ItemError("INCOMPLETE_DATA", "name the item by its id, code or name")
        raise ItemError("Not found", f"Item {code or name!r} not found")
    return key


def _updated_item(
    data: ListData,
    parents: ListData | None,
    names: dict[str, str],
    by_id: dict[int, str],
    raw: dict[str, Any],
) -> tuple[str, Row]:
    """The item a PUT names and its new row (fields not sent keep their values)."""
    key = _item_to_update(data, names, by_id, raw)
    row = list(data.rows[key])
    code, name, parent = (_given(raw, f) for f in ("code", "name", "parent"))
    if code is not None and code != row[ROW_CODE]:
        if row[ROW_CODE] and not code:
            raise ItemError("INCOMPLETE_DATA", "an item's code cannot be removed")
        if code in data.rows:
            raise ItemError("DUPLICATE", f"duplicate code -- code:{code}")
        row[ROW_CODE] = code
    if name and name != row[ROW_NAME] and not data.definition.numbered:
        if name in names or (not row[ROW_CODE] and name in data.rows):
            raise ItemError("DUPLICATE", f"duplicate name -- name:{name}")
        row[ROW_NAME] = name
    if parent is not None:
        _check_parent(parents, parent)
        row[ROW_PARENT] = parent
    values = _properties(data.definition, raw)
    for at, prop in enumerate(data.properties, ROW_PROPERTIES):
        if prop in values:
            row[at] = values[prop]
    return key, tuple(row)


def _with_id(by_id: dict[int, str], value: Any) -> str:
    """The key of the item whose id is ``value`` (sent as a number or digits)."""
    text = str(value).strip()
    key = by_id.get(int(text)) if text.isdigit() else None
    if key is None:
        raise ItemError("Not found", f"ID '{value}' not found")
    return key


def _item_to_delete(data: ListData, by_id: dict[int, str], raw: dict[str, Any]) -> str:
    """The key of the item a delete names by `id` or by `code`, never both."""
    if "id" in raw and "code" in raw:
        raise ItemError(
            "Ambiguous criteria",
            f"Specifying both ID and code not supported (ID '{raw['id']}', code '{raw['code']}')",
        )
    if "id" in raw:
        return _with_id(by_id, raw["id"])
    if "code" in raw:
        key = _with_code(data, str(raw["code"]))
        if key is None:
            raise ItemError("Not found", f"Code '{raw['code']}' not found")
        return key
    raise ItemError("Not found", "Name the item to delete by its id or code")
