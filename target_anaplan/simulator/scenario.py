"""Scenario loading: turns the JSON a test or the CLI gives into checked, typed definitions.

Validating up front means a typo in a scenario fails at start-up with one message naming the
key, instead of as a confusing 500 in the middle of a test.
"""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509

from target_anaplan.simulator import certs

PROPERTY_TYPES = ("text", "number", "date", "boolean")
LIST_FIELDS = ("code", "name", "parent")
OAUTH_GRANTS = ("authorization_code", "device")
DEFAULT_DUMP_CHUNK_BYTES = 10_000_000
DEFAULT_LIST_READ_LIMIT = 1_000_000
FIRST_LIST_ID, FIRST_MODULE_ID = 101_000_000_000, 102_000_000_000
DELETE_BY_SELECTION = "DELETE_BY_SELECTION"
DEFAULT_TOKEN_LIFETIME_S = 2100.0  # 35 minutes, as observed live
DEFAULT_CREATION_DATE = "2024-01-15T09:30:00.000+0000"
DEFAULT_SERIAL_NUMBER = 2_000_000
EXAMPLE_SCENARIO = Path(__file__).with_name("example_scenario.json")


class ScenarioError(ValueError):
    """The scenario is malformed; the message names the offending key."""


def user_guid(email: str) -> str:
    """A user's stable 32-hex guid, the same wherever the simulator shows one."""
    return uuid.uuid5(uuid.NAMESPACE_URL, email.lower()).hex


MODEL_BUILDER_GUID = user_guid("model-builder@anaplan-simulator")


@dataclass(frozen=True)
class UserDef:
    """A user: basic credentials, registered CA certificates and an optional token lifetime."""

    email: str
    password: str | None
    certificates: tuple[x509.Certificate, ...]
    token_lifetime_s: float | None = None


@dataclass(frozen=True)
class OAuthClientDef:
    """An OAuth client as a tenant's security admin would register it."""

    client_id: str
    client_secret: str | None
    grant: str  # "authorization_code" or "device"
    rotating: bool
    user: str
    refresh_tokens: tuple[str, ...]
    redirect_uris: tuple[str, ...]
    refresh_token_lifespan_s: float | None = None
    access_token_lifetime_s: float | None = None


@dataclass(frozen=True)
class FileDef:
    """An import data source file as Anaplan lists it."""

    id: str
    name: str
    separator: str = ","
    delimiter: str = '"'
    encoding: str = "UTF-8"
    header_row: int = 1
    first_data_row: int = 2
    content: bytes | None = None

    def as_json(self, chunk_count: int) -> dict[str, Any]:
        """The `files[]` item of `GET .../files`."""
        return {
            "id": self.id,
            "name": self.name,
            "chunkCount": chunk_count,
            "delimiter": self.delimiter,
            "encoding": self.encoding,
            "firstDataRow": self.first_data_row,
            "format": "txt",
            "headerRow": self.header_row,
            "separator": self.separator,
        }


@dataclass(frozen=True)
class ListDef:
    """A list: typed properties, the items it starts with, and its parent list, if any."""

    name: str
    properties: dict[str, str]
    items: tuple[dict[str, Any], ...]
    id: str = ""
    index: int = 0  # position in the model, which numbers its items' ids
    parent: str | None = None
    numbered: bool = False


@dataclass(frozen=True)
class ModuleDef:
    """A module: its dimensions (list names, in order) and typed line items with their ids."""

    name: str
    dimensions: tuple[str, ...]
    line_items: dict[str, str]
    id: str = ""
    line_item_ids: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SourceDef:
    """`importMetadata.source`: how the import reads its file."""

    text_encoding: str
    column_separator: str
    text_delimiter: str
    header_row: int
    first_data_row: int
    decimal_separator: str
    header_names: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        """The `source` object of `importMetadata`."""
        return {
            "textEncoding": self.text_encoding,
            "columnSeparator": self.column_separator,
            "textDelimiter": self.text_delimiter,
            "headerRow": self.header_row,
            "firstDataRow": self.first_data_row,
            "decimalSeparator": self.decimal_separator,
            "headerNames": list(self.header_names),
            "columnCount": len(self.header_names),
        }


@dataclass(frozen=True)
class ImportDef:
    """An import action: its file, its source layout and where each column lands."""

    id: str
    name: str
    file_id: str
    import_type: str
    source: SourceDef
    target_kind: str  # "list" or "module"
    target: str
    mapping: dict[str, str]
    hold_polls: int = 0


@dataclass(frozen=True)
class ActionDef:
    """An "other" action; a DELETE_BY_SELECTION one deletes the items of `list` whose Boolean
    line item `filter_line_item` of module `filter_module` is TRUE."""

    id: str
    name: str
    action_type: str | None = None
    list: str | None = None
    filter_module: str | None = None
    filter_line_item: str | None = None
    hold_polls: int = 0
    report_details: bool = False  # add a deleteFromSelectionSucceeded detail (unverified)


@dataclass(frozen=True)
class ProcessDef:
    """A process: import and action ids run in order."""

    id: str
    name: str
    actions: tuple[str, ...]
    hold_polls: int = 0


@dataclass(frozen=True)
class ModelDef:
    """A model and everything in it."""

    id: str
    name: str
    active_state: str
    workspace_id: str
    workspace_name: str
    lists: dict[str, ListDef]
    modules: dict[str, ModuleDef]
    files: dict[str, FileDef]
    imports: dict[str, ImportDef]
    processes: dict[str, ProcessDef]
    users: frozenset[str] | None
    actions: dict[str, ActionDef] = field(default_factory=dict)
    iso_creation_date: str = DEFAULT_CREATION_DATE
    last_saved_serial_number: int = DEFAULT_SERIAL_NUMBER


@dataclass(frozen=True)
class WorkspaceDef:
    """A workspace and the ids of its models."""

    id: str
    name: str
    model_ids: tuple[str, ...]


@dataclass(frozen=True)
class ListApiDef:
    """How the transactional list calls answer where Anaplan's documentation is unsure."""

    read_limit: int = DEFAULT_LIST_READ_LIMIT  # GET .../items answers 400 above it
    empty_failures: bool = True  # add and update answer "failures": [] when none failed
    nested_delete_result: bool = False  # a partial delete answers result{...} (else flat)


@dataclass(frozen=True)
class Scenario:
    """The whole checked scenario; `raw` is the dict it was read from (for tests to look up)."""

    raw: dict[str, Any]
    workspaces: dict[str, WorkspaceDef]
    models: dict[str, ModelDef]
    dump_chunk_bytes: int
    users: dict[str, UserDef]  # by lower-case email
    oauth_clients: dict[str, OAuthClientDef]
    token_lifetime_s: float = DEFAULT_TOKEN_LIFETIME_S

    def user(self, email: str) -> UserDef | None:
        """The user with this email (case-insensitive), or None."""
        return self.users.get(email.lower())

    list_api: ListApiDef = field(default_factory=ListApiDef)


def load_scenario(source: dict[str, Any] | str | Path | None) -> Scenario:
    """Read a scenario from a dict or a JSON file (None: the packaged example)."""
    if source is None:
        source = EXAMPLE_SCENARIO
    if isinstance(source, dict):
        raw = copy.deepcopy(source)
    else:
        path = Path(source)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ScenarioError(f"cannot read scenario file {path}: {exc.strerror}") from exc
        except json.JSONDecodeError as exc:
            raise ScenarioError(f"scenario file {path} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise ScenarioError("a scenario must be a JSON object")
    try:
        return _scenario(raw)
    except ScenarioError:
        raise
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ScenarioError(f"malformed scenario ({type(exc).__name__}: {exc})") from exc


def _scenario(raw: dict[str, Any]) -> Scenario:
    workspaces: dict[str, WorkspaceDef] = {}
    models: dict[str, ModelDef] = {}
    for ws in _objects(raw, "workspaces", "scenario"):
        ws_id, ws_name = _req(ws, "id", "workspace"), _req(ws, "name", "workspace")
        ws_models = [_model(m, ws_id, ws_name) for m in _objects(ws, "models", ws_name)]
        for model in ws_models:
            if model.id in models:
                raise ScenarioError(f"model id {model.id} appears twice")
            models[model.id] = model
        workspaces[ws_id] = WorkspaceDef(ws_id, ws_name, tuple(m.id for m in ws_models))
    dump_chunk = int(raw.get("dump_chunk_bytes", DEFAULT_DUMP_CHUNK_BYTES))
    shape = raw.get("list_delete_response", "flat")
    if shape not in ("flat", "nested"):
        raise ScenarioError("list_delete_response must be 'flat' or 'nested'")
    list_api = ListApiDef(
        read_limit=int(raw.get("list_read_limit", DEFAULT_LIST_READ_LIMIT)),
        empty_failures=bool(raw.get("list_empty_failures", True)),
        nested_delete_result=shape == "nested",
    )
    users = {u.email.lower(): u for u in map(_user, _objects(raw, "users", "scenario"))}
    clients = {}
    for client in (_oauth_client(c, users) for c in _objects(raw, "oauth_clients", "scenario")):
        clients[client.client_id] = client
    return Scenario(
        raw=raw,
        workspaces=workspaces,
        models=models,
        dump_chunk_bytes=max(1, dump_chunk),
        users=users,
        oauth_clients=clients,
        token_lifetime_s=_seconds(raw, "token_lifetime_s", "scenario") or DEFAULT_TOKEN_LIFETIME_S,
        list_api=list_api,
    )


def _user(raw: dict[str, Any]) -> UserDef:
    email = str(_req(raw, "email", "user"))
    certificates = []
    for index, pem in enumerate(raw.get("certificates", [])):
        try:
            certificates.append(certs.certificate_from_pem(pem))
        except certs.CertificateError:
            raise ScenarioError(
                f"scenario users[{email}].certificates[{index}] is not a PEM certificate"
            ) from None
    return UserDef(
        email=email,
        password=raw.get("password"),
        certificates=tuple(certificates),
        token_lifetime_s=_seconds(raw, "token_lifetime_s", f"user {email}"),
    )


def _oauth_client(raw: dict[str, Any], users: dict[str, UserDef]) -> OAuthClientDef:
    client_id = str(_req(raw, "client_id", "oauth client"))
    where = f"oauth client {client_id}"
    grant = raw.get("grant", "authorization_code")
    if grant not in OAUTH_GRANTS:
        raise ScenarioError(f"{where}: grant {grant!r}; use one of {OAUTH_GRANTS}")
    user = str(_req(raw, "user", where))
    if user.lower() not in users:
        raise ScenarioError(f"{where}: user {user!r} is not one of the scenario's users")
    return OAuthClientDef(
        client_id=client_id,
        client_secret=raw.get("client_secret"),
        grant=grant,
        rotating=bool(raw.get("rotating", False)),
        user=users[user.lower()].email,
        refresh_tokens=tuple(str(t) for t in raw.get("refresh_tokens", [])),
        redirect_uris=tuple(str(u) for u in raw.get("redirect_uris", [])),
        refresh_token_lifespan_s=_seconds(raw, "refresh_token_lifespan_s", where),
        access_token_lifetime_s=_seconds(raw, "access_token_lifetime_s", where),
    )


def _seconds(raw: dict[str, Any], key: str, where: str) -> float | None:
    """An optional positive number of seconds."""
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ScenarioError(f"{where}: '{key}' must be a positive number of seconds")
    return float(value)


def _objects(parent: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    value = parent.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ScenarioError(f"{where}: '{key}' must be a list of objects")
    return value


def _req(obj: dict[str, Any], key: str, where: str) -> Any:
    if key not in obj:
        raise ScenarioError(f"{where} {json.dumps(obj)[:80]}: missing required key '{key}'")
    return obj[key]


def _types(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ScenarioError(f"{where}: must be an object of name -> type")
    for name, kind in value.items():
        if kind not in PROPERTY_TYPES:
            raise ScenarioError(f"{where}: '{name}' has type {kind!r}; use one of {PROPERTY_TYPES}")
    return dict(value)


def _model(raw: dict[str, Any], ws_id: str, ws_name: str) -> ModelDef:
    model_id, name = _req(raw, "id", "model"), _req(raw, "name", "model")
    where = f"model {name}"
    lists = _lists(_objects(raw, "lists", where), where)
    modules = {}
    for index, mod in enumerate(_objects(raw, "modules", where)):
        module = _module(mod, index, lists, where)
        modules[module.name] = module
    files = {f.id: f for f in (_file(f, where) for f in _objects(raw, "files", where))}
    imports = {}
    for imp in _objects(raw, "imports", where):
        definition = _import(imp, files, lists, modules, where)
        imports[definition.id] = definition
    actions = {}
    for act in _objects(raw, "actions", where):
        action = _action(act, lists, modules, where)
        actions[action.id] = action
    processes = {}
    for proc in _objects(raw, "processes", where):
        proc_id = str(_req(proc, "id", where))
        steps = tuple(str(a) for a in proc.get("actions", []))
        for step in steps:
            if step not in imports and step not in actions:
                raise ScenarioError(
                    f"{where} process {proc_id}: action {step} is not an import or an action"
                )
        hold = int(proc.get("hold_polls", 0))
        processes[proc_id] = ProcessDef(proc_id, _req(proc, "name", where), steps, hold)
    users = raw.get("users")
    return ModelDef(
        id=model_id,
        name=name,
        active_state=raw.get("activeState", "UNLOCKED"),
        workspace_id=ws_id,
        workspace_name=ws_name,
        lists=lists,
        modules=modules,
        files=files,
        imports=imports,
        processes=processes,
        users=frozenset(users) if users is not None else None,
        actions=actions,
        iso_creation_date=str(raw.get("isoCreationDate", DEFAULT_CREATION_DATE)),
        last_saved_serial_number=int(raw.get("lastSavedSerialNumber", DEFAULT_SERIAL_NUMBER)),
    )


def _lists(raws: list[dict[str, Any]], where: str) -> dict[str, ListDef]:
    lists: dict[str, ListDef] = {}
    for index, raw in enumerate(raws):
        list_name = _req(raw, "name", where)
        props = _types(raw.get("properties", {}), f"{where} list {list_name} properties")
        lists[list_name] = ListDef(
            name=list_name,
            properties=props,
            items=tuple(raw.get("items", [])),
            id=str(raw.get("id", FIRST_LIST_ID + index)),
            index=index,
            parent=raw.get("parent"),
            numbered=bool(raw.get("numbered", False)),
        )
    for lst in lists.values():
        _check_list(lst, lists, f"{where} list {lst.name}")
    if len({lst.id for lst in lists.values()}) != len(lists):
        raise ScenarioError(f"{where}: two lists have the same id")
    return lists


def _check_list(lst: ListDef, lists: dict[str, ListDef], where: str) -> None:
    """Parent list known and not circular; item properties declared; item parents known."""
    seen, parent = {lst.name}, lst.parent
    while parent is not None:
        if parent not in lists:
            raise ScenarioError(f"{where}: parent list {parent!r} is not defined")
        if parent in seen:
            raise ScenarioError(f"{where}: parent lists form a cycle through {parent!r}")
        seen.add(parent)
        parent = lists[parent].parent
    parents: set[str] = set()
    if lst.parent is not None:
        for item in lists[lst.parent].items:
            parents.update(str(item[k]) for k in ("code", "name") if item.get(k))
    for item in lst.items:
        unknown = set(item.get("properties", {})) - set(lst.properties)
        if unknown:
            raise ScenarioError(f"{where}: item properties {sorted(unknown)} are not declared")
        parent_ref = str(item.get("parent", ""))
        if parent_ref and lst.parent is not None and parent_ref not in parents:
            raise ScenarioError(
                f"{where}: item parent {parent_ref!r} is not an item of list {lst.parent!r}"
            )


def _module(raw: dict[str, Any], index: int, lists: dict[str, ListDef], where: str) -> ModuleDef:
    mod_name = _req(raw, "name", where)
    dims = tuple(raw.get("dimensions", []))
    for dim in dims:
        if dim not in lists:
            raise ScenarioError(f"{where} module {mod_name}: dimension {dim!r} is not a list")
    line_items = _types(raw.get("line_items", {}), f"{where} module {mod_name} line_items")
    first_line_item = (301 + index) * 1_000_000_000
    ids = {li: str(first_line_item + n) for n, li in enumerate(line_items)}
    module_id = str(raw.get("id", FIRST_MODULE_ID + index))
    return ModuleDef(mod_name, dims, line_items, module_id, ids)


def _action(
    raw: dict[str, Any], lists: dict[str, ListDef], modules: dict[str, ModuleDef], where: str
) -> ActionDef:
    action_id = str(_req(raw, "id", f"{where} action"))
    where = f"{where} action {action_id}"
    action = ActionDef(
        id=action_id,
        name=_req(raw, "name", where),
        action_type=raw.get("actionType"),
        list=raw.get("list"),
        filter_module=(raw.get("filter") or {}).get("module"),
        filter_line_item=(raw.get("filter") or {}).get("line_item"),
        hold_polls=int(raw.get("hold_polls", 0)),
        report_details=bool(raw.get("details", False)),
    )
    if action.list is not None and action.list not in lists:
        raise ScenarioError(f"{where}: list {action.list!r} is not defined")
    if action.action_type != DELETE_BY_SELECTION:
        return action
    if action.list is None:
        raise ScenarioError(f"{where}: a {DELETE_BY_SELECTION} action needs a 'list'")
    module = modules.get(action.filter_module or "")
    if module is None or action.list not in module.dimensions:
        raise ScenarioError(
            f"{where}: 'filter.module' must name a module dimensioned by list {action.list!r}"
        )
    if module.line_items.get(action.filter_line_item or "") != "boolean":
        raise ScenarioError(
            f"{where}: 'filter.line_item' must name a boolean line item of {module.name!r}"
        )
    return action


def _file(raw: dict[str, Any], where: str) -> FileDef:
    content = raw.get("content")
    return FileDef(
        id=str(_req(raw, "id", f"{where} file")),
        name=_req(raw, "name", f"{where} file"),
        separator=raw.get("separator", ","),
        delimiter=raw.get("delimiter", '"'),
        encoding=raw.get("encoding", "UTF-8"),
        header_row=int(raw.get("headerRow", 1)),
        first_data_row=int(raw.get("firstDataRow", 2)),
        content=content.encode(raw.get("encoding", "UTF-8")) if content is not None else None,
    )


def _import(
    raw: dict[str, Any],
    files: dict[str, FileDef],
    lists: dict[str, ListDef],
    modules: dict[str, ModuleDef],
    where: str,
) -> ImportDef:
    import_id = str(_req(raw, "id", f"{where} import"))
    where = f"{where} import {import_id}"
    file_id = str(_req(raw, "importDataSourceId", where))
    if file_id not in files:
        raise ScenarioError(f"{where}: importDataSourceId {file_id} is not a file of the model")
    file = files[file_id]
    src = raw.get("importMetadata", {}).get("source") or raw.get("source") or {}
    headers = tuple(_req(src, "headerNames", f"{where} source"))
    source = SourceDef(
        text_encoding=src.get("textEncoding", file.encoding),
        column_separator=src.get("columnSeparator", file.separator),
        text_delimiter=src.get("textDelimiter", file.delimiter),
        header_row=int(src.get("headerRow", file.header_row)),
        first_data_row=int(src.get("firstDataRow", file.first_data_row)),
        decimal_separator=src.get("decimalSeparator", "."),
        header_names=headers,
    )
    mapping = dict(raw.get("mapping", {}))
    for column in mapping:
        if column not in headers:
            raise ScenarioError(f"{where}: mapping column {column!r} is not in headerNames")
    if "list" in raw:
        kind, target = "list", raw["list"]
        if target not in lists:
            raise ScenarioError(f"{where}: list {target!r} is not defined")
        allowed = set(LIST_FIELDS) | set(lists[target].properties)
    elif "module" in raw:
        kind, target = "module", raw["module"]
        if target not in modules:
            raise ScenarioError(f"{where}: module {target!r} is not defined")
        module = modules[target]
        allowed = set(module.dimensions) | set(module.line_items)
        missing = set(module.dimensions) - set(mapping.values())
        if missing:
            raise ScenarioError(f"{where}: dimensions {sorted(missing)} are not mapped")
    else:
        raise ScenarioError(f"{where}: needs a 'list' or a 'module' to load")
    for column, target_field in mapping.items():
        if target_field not in allowed:
            raise ScenarioError(
                f"{where}: column {column!r} maps to unknown field {target_field!r}"
            )
    default_type = "HIERARCHY_DATA" if kind == "list" else "MODULE_DATA"
    return ImportDef(
        id=import_id,
        name=_req(raw, "name", where),
        file_id=file_id,
        import_type=raw.get("importType", default_type),
        source=source,
        target_kind=kind,
        target=target,
        mapping=mapping,
        hold_polls=int(raw.get("hold_polls", 0)),
    )
