"""``list`` and ``describe``: what the tenant and the configured model hold, by name and id,
so a config can be written without guessing (and without triggering the target's errors
to learn a header)."""

from __future__ import annotations

from typing import Any

from target_anaplan.anaplan.catalog import Catalog, import_target, resolve_model, resolve_workspace
from target_anaplan.anaplan.client import AnaplanClient
from target_anaplan.anaplan.errors import NotFoundError
from target_anaplan.anaplan.models import LIST_IMPORT, DataSourceLayout, DataSourceTarget
from target_anaplan.settings import Settings

# The columns of each listing, in table order (the JSON objects have the same keys).
COLUMNS: dict[str, tuple[str, ...]] = {
    "workspaces": ("name", "id", "active"),
    "models": ("name", "id", "activeState", "workspace"),
    "files": ("name", "id", "imports"),
    "imports": ("name", "id", "importType", "file", "fileId"),
    "processes": ("name", "id"),
    "actions": ("name", "id", "actionType"),
    "lists": ("name", "id"),
}
KINDS = tuple(COLUMNS)
# What an import of each type loads into.
_TARGET_KINDS = {LIST_IMPORT: "list", "MODULE_DATA": "module"}


def model_catalog(client: AnaplanClient, settings: Settings) -> Catalog:
    """The catalog of the configured workspace and model."""
    return Catalog(client, resolve_model(client, settings.workspace, settings.model))


def list_objects(client: AnaplanClient, settings: Settings, kind: str) -> list[dict[str, Any]]:
    """The rows of ``list <kind>``: the tenant's workspaces, the workspace's models, or the
    configured model's files, imports, processes, actions or lists."""
    if kind == "workspaces":
        return [_row(e, "active") for e in client.list_all("/workspaces", "workspaces")]
    if kind == "models":
        workspace = resolve_workspace(client, settings.workspace)
        entries = client.list_all(f"/workspaces/{workspace['id']}/models", "models")
        return [{**_row(e, "activeState"), "workspace": workspace["name"]} for e in entries]
    catalog = model_catalog(client, settings)
    if kind == "files":
        readers = _readers(catalog)
        return [
            {**_row(e), "imports": [r["name"] for r in readers.get(str(e["id"]), [])]}
            for e in catalog.files()
        ]
    if kind == "imports":
        names = {str(f["id"]): f.get("name") for f in catalog.files()}
        return [
            {
                **_row(e, "importType"),
                "file": names.get(str(e.get("importDataSourceId"))),
                "fileId": e.get("importDataSourceId"),
            }
            for e in catalog.imports()
        ]
    if kind == "processes":
        return [_row(e) for e in catalog.processes()]
    if kind == "actions":
        return [_row(e, "actionType") for e in catalog.actions()]
    return [_row(e) for e in catalog.lists()]


def _row(entry: dict[str, Any], *extra: str) -> dict[str, Any]:
    return {"name": entry.get("name"), "id": entry.get("id"), **{k: entry.get(k) for k in extra}}


def _readers(catalog: Catalog) -> dict[str, list[dict[str, Any]]]:
    """File id -> the imports that read it."""
    readers: dict[str, list[dict[str, Any]]] = {}
    for entry in catalog.imports():
        readers.setdefault(str(entry.get("importDataSourceId")), []).append(entry)
    return readers


def file_import(catalog: Catalog, name: str) -> DataSourceTarget:
    """An import that reads a file, with that file and the layout the import expects."""
    entry = catalog.find_import(name)
    source = str(entry.get("importDataSourceId") or "")
    if not any(str(f.get("id")) == source for f in catalog.files()):
        raise NotFoundError(
            f"Import {entry.get('name')!r} ({entry['id']}) reads no file of this model (its "
            f"source is {source or 'not given'}: a list, module or another model). Only "
            "imports from files load what the target uploads."
        )
    return catalog.data_source(
        str(entry["name"]), file=source, imports=[str(entry["id"])], processes=[]
    )


def describe_import(catalog: Catalog, name: str) -> dict[str, Any]:
    """What ``describe import`` shows: the import, what it loads, the file's layout."""
    source = file_import(catalog, name)
    action = source.actions[0]
    import_type = next(iter(source.import_types), None)
    kind = _TARGET_KINDS.get(import_type or "")
    target = source.lists[0] if source.lists else import_target(action.name)
    return {
        "import": action.name,
        "id": action.id,
        "importType": import_type,
        "loads": f"{kind} {target}" if kind else None,
        "file": source.file_name,
        "fileId": source.file_id,
        **_layout(source.layout),
    }


def describe_file(catalog: Catalog, name: str) -> dict[str, Any]:
    """What ``describe file`` shows: the file, the imports that read it, and its layout
    (as the first of those imports expects it, else as the file's own header row says)."""
    entry = catalog.file(name)
    file_id = str(entry["id"])
    readers = _readers(catalog).get(file_id, [])
    first = [str(readers[0]["id"])] if readers else []
    source = catalog.data_source(str(entry["name"]), file=file_id, imports=first, processes=[])
    return {
        "file": source.file_name,
        "id": file_id,
        "imports": [r["name"] for r in readers],
        "layoutFrom": source.actions[0].label if readers else "the file's header row",
        **_layout(source.layout),
    }


def _layout(layout: DataSourceLayout) -> dict[str, Any]:
    return {
        "separator": layout.separator,
        "textDelimiter": layout.text_delimiter,
        "encoding": layout.encoding,
        "headerRow": layout.header_row,
        "firstDataRow": layout.first_data_row,
        "header": list(layout.header_names),
    }
