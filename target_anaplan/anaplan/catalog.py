"""Turn the names in config into Anaplan ids once, at start.

Users write names ("Demo Model", "orders", "Load orders"); Anaplan wants ids. Each
lookup that fails says what does exist, so a typo is fixed in one go.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any, TypeVar

from target_anaplan.anaplan.client import AnaplanClient
from target_anaplan.anaplan.encodings import decode_text
from target_anaplan.anaplan.errors import AnaplanError, ModelUnavailableError, NotFoundError
from target_anaplan.anaplan.models import (
    LIST_IMPORT,
    ActionKind,
    ActionRef,
    DataSourceLayout,
    DataSourceTarget,
    ModelRef,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
_LISTED_AT_MOST = 40
_FILE_SOURCE_PREFIX = "113"
DELETE_ACTION = "DELETE_BY_SELECTION"


def resolve_model(client: AnaplanClient, workspace: str, model: str) -> ModelRef:
    """The workspace and model named in config, each given by name or id."""
    if _HEX32.fullmatch(model.strip()):
        found = _model_by_id(client, model.strip())
        if found is not None:
            return _in_workspace(found, workspace)
    ws = resolve_workspace(client, workspace)
    models = client.list_all(f"/workspaces/{ws['id']}/models", "models")
    entry = _pick(models, model, kind="model", where=f"workspace {ws['name']!r}")
    return _model_ref(ws["id"], ws["name"], entry)


def _model_by_id(client: AnaplanClient, model_id: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] | None = client.request("GET", f"/models/{model_id}").get("model")
        return found
    except NotFoundError:
        return None


def _in_workspace(entry: dict[str, Any], workspace: str) -> ModelRef:
    """Check a model found by id lives in the configured workspace."""
    ws_id = str(entry.get("currentWorkspaceId") or "")
    ws_name = str(entry.get("currentWorkspaceName") or ws_id)
    wanted = workspace.strip()
    if wanted not in (ws_id, ws_name) and wanted.casefold() not in (
        ws_id.lower(),
        ws_name.casefold(),
    ):
        raise NotFoundError(
            f"Model {entry.get('name')!r} ({entry.get('id')}) is in workspace {ws_name!r} "
            f"({ws_id}), not in {workspace!r}. Set workspace to {ws_name!r} or {ws_id}."
        )
    return _model_ref(ws_id, ws_name, entry)


def resolve_workspace(client: AnaplanClient, workspace: str) -> dict[str, Any]:
    """The workspace named in config (name or id), as ``GET /workspaces`` lists it."""
    workspaces = client.list_all("/workspaces", "workspaces")
    try:
        return _pick(workspaces, workspace, kind="workspace", where="this Anaplan tenant")
    except NotFoundError:
        # Workspaces of other tenants are not listed but still usable by id.
        if _HEX32.fullmatch(workspace.strip()):
            return {"id": workspace.strip(), "name": workspace.strip()}
        raise


def _model_ref(ws_id: str, ws_name: str, entry: dict[str, Any]) -> ModelRef:
    ref = ModelRef(
        workspace_id=ws_id,
        workspace_name=ws_name,
        model_id=str(entry["id"]),
        model_name=str(entry.get("name") or entry["id"]),
    )
    if str(entry.get("activeState", "")).upper() == "ARCHIVED":
        raise ModelUnavailableError(
            f"Model {ref.model_name!r} is archived; unarchive it in Anaplan, then try again."
        )
    return ref


class Catalog:
    """The files, imports and processes of one model, listed once and cached."""

    def __init__(self, client: AnaplanClient, model: ModelRef) -> None:
        self._client = client
        self._model = model
        self._base = model.path
        self._where = f"model {model.model_name!r}"
        self._lock = threading.Lock()
        self._cache: dict[str, Any] = {}

    def files(self) -> list[dict[str, Any]]:
        """The model's import data sources and other files."""
        return self._cached("files", lambda: self._client.list_all(f"{self._base}/files", "files"))

    def imports(self) -> list[dict[str, Any]]:
        """The model's import actions."""
        return self._cached(
            "imports", lambda: self._client.list_all(f"{self._base}/imports", "imports")
        )

    def processes(self) -> list[dict[str, Any]]:
        """The model's processes."""
        return self._cached(
            "processes", lambda: self._client.list_all(f"{self._base}/processes", "processes")
        )

    def data_source(
        self,
        stream_name: str,
        *,
        file: str | None,
        imports: Sequence[str],
        processes: Sequence[str],
    ) -> DataSourceTarget:
        """The file a stream is uploaded to, its CSV layout, and the actions to run after."""
        import_entries = [self._pick_action(self.imports(), i, "import") for i in imports]
        process_entries = [self._pick_action(self.processes(), p, "process") for p in processes]
        process_steps = [s for p in process_entries for s in self._import_steps(p)]
        file_entry = self._file_for(stream_name, file, import_entries or process_steps)
        for entry in import_entries:
            self._check_reads(entry, file_entry)
        layout_sources = import_entries or [
            s for s in process_steps if str(s.get("importDataSourceId")) == str(file_entry["id"])
        ]
        layout = (
            self._layout_from_imports(layout_sources, file_entry)
            if layout_sources
            else self._layout_from_file(file_entry)
        )
        actions = [_action_ref("imports", e) for e in import_entries]
        actions += [_action_ref("processes", e) for e in process_entries]
        readers = [
            e
            for e in [*import_entries, *process_steps]
            if str(e.get("importDataSourceId")) == str(file_entry["id"])
        ]
        return DataSourceTarget(
            file_id=str(file_entry["id"]),
            file_name=str(file_entry.get("name") or file_entry["id"]),
            layout=layout,
            actions=tuple(actions),
            import_types=frozenset(str(e.get("importType") or "") for e in readers) - {""},
            lists=tuple(
                dict.fromkeys(
                    import_target(str(e.get("name") or ""))
                    for e in readers
                    if e.get("importType") == LIST_IMPORT
                )
            ),
        )

    def find_import(self, wanted: str) -> dict[str, Any]:
        """An import's entry (``id``, ``name``, ``importType``, ``importDataSourceId``)."""
        return self._pick_action(self.imports(), wanted, "import")

    def action(self, wanted: str) -> ActionRef:
        """A process, or else an import, by name or id (for run-level actions)."""
        try:
            return _action_ref("processes", self._pick_action(self.processes(), wanted, "process"))
        except NotFoundError:
            pass
        try:
            return _action_ref("imports", self._pick_action(self.imports(), wanted, "import"))
        except NotFoundError:
            raise NotFoundError(
                f"No process or import {wanted!r} in {self._where}. Processes: "
                f"{_listing(self.processes())}; imports: {_listing(self.imports())}."
            ) from None

    def lists(self) -> list[dict[str, Any]]:
        """The model's lists (ids and names)."""
        return self._cached("lists", lambda: self._client.list_all(f"{self._base}/lists", "lists"))

    def list_ref(self, wanted: str) -> tuple[str, str]:
        """The (id, name) of a list, by name or id."""
        entry = _pick(self.lists(), wanted, kind="list", where=self._where)
        return str(entry["id"]), str(entry.get("name") or entry["id"])

    def actions(self) -> list[dict[str, Any]]:
        """The model's other actions (deletes, sorts, ...), with their ``actionType``."""
        return self._cached(
            "actions", lambda: self._client.list_all(f"{self._base}/actions", "actions")
        )

    def file(self, wanted: str) -> dict[str, Any]:
        """A file by id or name (with or without its extension)."""
        return _pick(self.files(), wanted, kind="file", where=self._where, match=_file_names)

    def delete_action(self, wanted: str) -> ActionRef:
        """A "delete from list using selection" action, by name or id."""
        entry = _pick(self.actions(), wanted, kind="action", where=self._where)
        kind = entry.get("actionType")
        if kind != DELETE_ACTION:
            raise NotFoundError(
                f"Action {entry.get('name')!r} ({entry['id']}) is a {kind or 'non-delete'} "
                f"action, not a {DELETE_ACTION} one. Name a delete-from-list-using-selection "
                "action in `delete_action`."
            )
        return _action_ref("actions", entry)

    def list_parents(self, names: Iterable[str]) -> dict[str, str]:
        """List name -> its parent list's name, for those of ``names`` the model has.

        The lists listing gives only ids and names, so each list's metadata is read.
        """
        wanted = {name.casefold() for name in names}
        parents = {}
        for entry in self.lists():
            name = str(entry.get("name") or "")
            if name.casefold() not in wanted:
                continue
            lid = entry["id"]
            body = self._cached(f"list:{lid}", partial(self._list_metadata, lid))
            parent = (body.get("metadata") or {}).get("parent") or {}
            if parent.get("name"):
                parents[name] = str(parent["name"])
        return parents

    def _cached(self, key: str, load: Callable[[], T]) -> T:
        with self._lock:
            if key not in self._cache:
                self._cache[key] = load()
            cached: T = self._cache[key]
            return cached

    def _list_metadata(self, list_id: str) -> dict[str, Any]:
        body: dict[str, Any] = self._client.request("GET", f"{self._base}/lists/{list_id}")
        return body

    def _pick_action(self, entries: list[dict[str, Any]], wanted: str, kind: str) -> dict[str, Any]:
        return _pick(entries, wanted, kind=kind, where=self._where)

    def _import_steps(self, process: dict[str, Any]) -> list[dict[str, Any]]:
        """A process's import actions, each with the id of the file it reads."""
        pid = process["id"]
        body = self._cached(
            f"process:{pid}",
            lambda: self._client.request(
                "GET",
                f"/models/{self._model.model_id}/processes/{pid}",
                params={"showImportDataSource": "true"},
            ),
        )
        steps = (body.get("processMetadata") or {}).get("actions") or []
        return [s for s in steps if s.get("importDataSourceId")]

    def _file_for(
        self, stream_name: str, file: str | None, readers: list[dict[str, Any]]
    ) -> dict[str, Any]:
        if file:
            return self.file(file)
        files = self.files()
        sources = {str(r.get("importDataSourceId") or "") for r in readers} - {""}
        if len(sources) == 1 and next(iter(sources)).startswith(_FILE_SOURCE_PREFIX):
            source = sources.pop()
            for entry in files:
                if str(entry.get("id")) == source:
                    return entry
        try:
            return self.file(stream_name)
        except NotFoundError as error:
            raise NotFoundError(
                f"{error} Stream {stream_name!r} has no file of its own name; set its `file`."
            ) from None

    def _check_reads(self, entry: dict[str, Any], file_entry: dict[str, Any]) -> None:
        source = str(entry.get("importDataSourceId") or "")
        if source == str(file_entry["id"]):
            return
        reads = next((f for f in self.files() if str(f.get("id")) == source), None)
        reads_text = f"file {reads.get('name')!r} ({source})" if reads else f"source {source!r}"
        raise NotFoundError(
            f"Import {entry.get('name')!r} ({entry['id']}) reads {reads_text}, not file "
            f"{file_entry.get('name')!r} ({file_entry['id']}). Map the stream to the file the "
            "import reads, or choose an import that reads this file."
        )

    def _layout_from_imports(
        self, entries: list[dict[str, Any]], file_entry: dict[str, Any]
    ) -> DataSourceLayout:
        layouts = [(e, self._import_layout(e, file_entry)) for e in entries]
        first_entry, first = layouts[0]
        for entry, layout in layouts[1:]:
            if layout.header_names != first.header_names:
                raise AnaplanError(
                    f"Imports {first_entry.get('name')!r} and {entry.get('name')!r} both read "
                    f"file {file_entry.get('name')!r} but expect different columns "
                    f"({list(first.header_names)} vs {list(layout.header_names)}). "
                    "Map this stream to imports that agree on the file's columns."
                )
        return first

    def _import_layout(self, entry: dict[str, Any], file_entry: dict[str, Any]) -> DataSourceLayout:
        iid = entry["id"]
        body = self._cached(
            f"import:{iid}", lambda: self._client.request("GET", f"{self._base}/imports/{iid}")
        )
        source = (body.get("importMetadata") or {}).get("source") or {}
        names = tuple(str(n) for n in source.get("headerNames") or ())
        if not names:
            raise AnaplanError(
                f"Import {entry.get('name')!r} ({iid}) does not describe its source columns "
                "(importMetadata.source.headerNames); is it an import from a file?"
            )
        return DataSourceLayout(
            header_names=names,
            separator=_first(source.get("columnSeparator"), file_entry.get("separator"), ","),
            text_delimiter=_first(source.get("textDelimiter"), file_entry.get("delimiter"), '"'),
            encoding=_first(source.get("textEncoding"), file_entry.get("encoding"), "UTF-8"),
            header_row=int(_first(source.get("headerRow"), file_entry.get("headerRow"), 1)),
            first_data_row=int(
                _first(source.get("firstDataRow"), file_entry.get("firstDataRow"), 2)
            ),
        )

    def _layout_from_file(self, file_entry: dict[str, Any]) -> DataSourceLayout:
        """With no import to ask, read the column names from the file's current content."""
        separator = _first(file_entry.get("separator"), ",")
        delimiter = _first(file_entry.get("delimiter"), '"')
        encoding = _first(file_entry.get("encoding"), "UTF-8")
        header_row = max(int(_first(file_entry.get("headerRow"), 1)), 0)
        first_data_row = max(int(_first(file_entry.get("firstDataRow"), 2)), header_row + 1)
        names = self._header_from_content(file_entry, separator, delimiter, encoding, header_row)
        return DataSourceLayout(
            header_names=names,
            separator=separator,
            text_delimiter=delimiter,
            encoding=encoding,
            header_row=header_row,
            first_data_row=first_data_row,
        )

    def _header_from_content(
        self,
        file_entry: dict[str, Any],
        separator: str,
        delimiter: str,
        encoding: str,
        header_row: int,
    ) -> tuple[str, ...]:
        fid = file_entry["id"]
        content = self._first_content(fid) if header_row > 0 else b""
        names = _header_names(content, separator, delimiter, encoding, header_row)
        if not names:
            raise AnaplanError(
                f"Cannot tell the columns of file {file_entry.get('name')!r} ({fid}): no import "
                "reads it in this stream's config and the file has no header content. Add an "
                "import that reads this file to `imports`, or upload a template file with the "
                "header row once in Anaplan, so the columns are known."
            )
        return names

    def _first_content(self, fid: str) -> bytes:
        """The start of the file as this user sees it (private copy, else default file)."""
        for path in (f"{self._base}/files/{fid}/chunks/0", f"{self._base}/files/{fid}"):
            try:
                content: bytes = self._client.request("GET", path, expect_json=False)
            except NotFoundError:
                continue
            if content:
                return content
        return b""


def _header_names(
    content: bytes, separator: str, delimiter: str, encoding: str, header_row: int
) -> tuple[str, ...]:
    """Column names on line ``header_row`` of the file's first chunk."""
    if not content or header_row <= 0:
        return ()
    text = decode_text(content, encoding).lstrip("\ufeff")
    lines = text.splitlines()
    if len(lines) < header_row:
        return ()
    line = lines[header_row - 1]
    if len(separator) != 1:
        return tuple(n for n in line.split(separator) if n) if separator else (line,)
    quoting = {"quotechar": delimiter} if len(delimiter) == 1 else {"quoting": csv.QUOTE_NONE}
    row = next(csv.reader(io.StringIO(line), delimiter=separator, **quoting), [])
    return tuple(n.strip() for n in row) if any(n.strip() for n in row) else ()


def _first(*values: Any) -> Any:
    """The first value that is set, else the last (the default).

    ``""`` counts as set (no separator or delimiter); ``-1`` is a fresh file's "unset".
    """
    for value in values[:-1]:
        if value is not None and value != -1:
            return value
    return values[-1]


def _action_ref(kind: ActionKind, entry: dict[str, Any]) -> ActionRef:
    return ActionRef(kind=kind, id=str(entry["id"]), name=str(entry.get("name") or entry["id"]))


def import_target(import_name: str) -> str:
    """The object an import loads, by Anaplan's naming convention "<Target> from <source>"."""
    return import_name.split(" from ", 1)[0].strip()


def _file_names(entry: dict[str, Any]) -> Iterable[str]:
    """A file matches its name with or without the extension ("orders" for "orders.csv")."""
    name = str(entry.get("name") or "")
    yield name
    if "." in name:
        yield name.rsplit(".", 1)[0]


def _plain_name(entry: dict[str, Any]) -> Iterable[str]:
    yield str(entry.get("name") or "")


def _pick(
    entries: list[dict[str, Any]],
    wanted: str,
    *,
    kind: str,
    where: str,
    match: Callable[[dict[str, Any]], Iterable[str]] = _plain_name,
) -> dict[str, Any]:
    """The one entry whose id or name is ``wanted``; otherwise an error listing them all.

    Tried in turn: the id, the exact name, an alias (e.g. a file name without its
    extension), then any of those ignoring case. The first tier with a match decides.
    """
    key = wanted.strip()
    tiers: tuple[Callable[[dict[str, Any]], bool], ...] = (
        lambda e: str(e.get("id", "")).lower() == key.lower(),
        lambda e: str(e.get("name", "")) == key,
        lambda e: key in match(e),
        lambda e: key.casefold() in {n.casefold() for n in match(e)},
    )
    for tier in tiers:
        found = [e for e in entries if tier(e)]
        if len(found) == 1:
            return found[0]
        if found:
            raise NotFoundError(
                f"{kind.capitalize()} name {wanted!r} is ambiguous in {where}: "
                f"{_listing(found)}. Use the id instead."
            )
    raise NotFoundError(
        f"{kind.capitalize()} {wanted!r} not found in {where}. "
        f"Available {kind}{'es' if kind.endswith('s') else 's'}: {_listing(entries)}."
    )


def _listing(entries: list[dict[str, Any]]) -> str:
    if not entries:
        return "none"
    shown = [f"{e.get('name')!r} ({e.get('id')})" for e in entries[:_LISTED_AT_MOST]]
    more = len(entries) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more else "")
