"""The Integration API v2 (`/2/0/...`): discovery, file upload, import/process tasks, dumps.

Shapes, status codes and quirks follow anaplan-api.md (endpoint table #7-#29); each handler
is small and named after the call it answers.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Callable
from typing import Any

from target_anaplan.simulator.actions import ActionsApi
from target_anaplan.simulator.lists import ListsApi
from target_anaplan.simulator.scenario import FileDef, ModelDef
from target_anaplan.simulator.sorting import sort_checked, sort_lenient
from target_anaplan.simulator.state import FileState, SimState, Task, Upload
from target_anaplan.simulator.tasks import TaskRunner, task_json
from target_anaplan.simulator.wire import (
    ApiError,
    Request,
    Response,
    bytes_response,
    json_response,
    paged,
    success,
)

Handler = Callable[[Request, ModelDef, dict[str, str]], Response]
MODEL_PREFIX = r"^(?:/workspaces/(?P<ws>[^/]+))?/models/(?P<m>[^/]+)"
STATE_ERRORS = {
    "ARCHIVED": (422, "The model is archived."),
    "MAINTENANCE": (424, "The model is offline."),
    "PRODUCTION_MAINTENANCE": (424, "The model is offline."),
}
SIZE_ALLOWANCE = 1_073_741_824
TASK_KINDS = {"imports": "import", "processes": "process", "actions": "action"}
# The only fields these lists sort by (OAS probed every other property: 400).
WORKSPACE_SORT_FIELDS = ("name", "sizeAllowance")
MODEL_SORT_FIELDS = ("name", "activeState")
TASK_SORT_ALIASES = {"creationDate": lambda task: task["creationTime"]}


class Api:
    """Answers `/2/0` requests (path given without the `/2/0` prefix) for an authenticated user."""

    def __init__(self, state: SimState, runner: TaskRunner) -> None:
        self.state = state
        self.runner = runner
        table: list[tuple[str, dict[str, Handler]]] = [
            (rf"{MODEL_PREFIX}/files/?$", {"GET": self.list_files}),
            (rf"{MODEL_PREFIX}/files/(?P<fid>[^/]+)$", {
                "POST": self.set_chunk_count, "PUT": self.put_file,
                "GET": self.get_file, "DELETE": self.delete_file}),
            (rf"{MODEL_PREFIX}/files/(?P<fid>[^/]+)/complete$", {"POST": self.complete}),
            (rf"{MODEL_PREFIX}/files/(?P<fid>[^/]+)/chunks/?$", {"GET": self.list_chunks}),
            (rf"{MODEL_PREFIX}/files/(?P<fid>[^/]+)/chunks/(?P<n>[^/]+)$", {
                "PUT": self.put_chunk, "GET": self.get_chunk}),
            (rf"{MODEL_PREFIX}/imports/?$", {"GET": self.list_imports}),
            (rf"{MODEL_PREFIX}/imports/(?P<aid>[^/]+)$", {"GET": self.import_metadata}),
            (rf"{MODEL_PREFIX}/processes/?$", {"GET": self.list_processes}),
            (rf"{MODEL_PREFIX}/processes/(?P<aid>[^/]+)$", {"GET": self.process_metadata}),
            (rf"{MODEL_PREFIX}/(?P<kind>exports)/?$", {"GET": self.list_none}),
            (rf"{MODEL_PREFIX}/(?P<kind>imports|processes|actions)/(?P<aid>[^/]+)/tasks/?$", {
                "POST": self.start_task, "GET": self.list_tasks}),
            (rf"{MODEL_PREFIX}/(?P<kind>imports|processes|actions)/(?P<aid>[^/]+)/tasks"
             r"/(?P<tid>[^/]+)$", {"GET": self.get_task, "DELETE": self.cancel_task}),
            (rf"{MODEL_PREFIX}/(?P<kind>imports)/(?P<aid>[^/]+)/tasks/(?P<tid>[^/]+)"
             r"/dump(?P<chunks>/chunks)?(?:/(?P<n>[^/]+))?$", {"GET": self.get_dump}),
            (rf"{MODEL_PREFIX}/(?P<kind>processes)/(?P<aid>[^/]+)/tasks/(?P<tid>[^/]+)"
             r"/dumps/(?P<oid>[^/]+)(?P<chunks>/chunks)?(?:/(?P<n>[^/]+))?$",
             {"GET": self.get_dump}),
        ]  # fmt: skip
        table += ListsApi(state).routes(MODEL_PREFIX) + ActionsApi(state).routes(MODEL_PREFIX)
        self.routes = [(re.compile(pattern), handlers) for pattern, handlers in table]

    # -- dispatch ---------------------------------------------------------------------------

    def handle(self, req: Request) -> Response:
        """Route one request; raises ApiError for Anaplan-style error answers."""
        path = req.path
        if path in ("/workspaces", "/workspaces/"):
            return self._only_get(req, self.list_workspaces)
        if match := re.fullmatch(r"/workspaces/([^/]+)", path):
            ws_id = match.group(1)
            return self._only_get(req, lambda r: self.get_workspace(r, ws_id))
        if path in ("/models", "/models/"):
            return self._only_get(req, lambda r: self.list_models(r, None))
        if match := re.fullmatch(r"/workspaces/([^/]+)/models/?", path):
            ws_id = match.group(1)
            return self._only_get(req, lambda r: self.list_models(r, ws_id))
        if re.fullmatch(r"/workspaces/[^/]+/models/[^/]+", path):
            raise ApiError(405)
        if match := re.fullmatch(r"/models/([^/]+)", path):
            model_id = match.group(1)
            return self._only_get(req, lambda r: self.get_model(r, model_id))
        if match := re.fullmatch(rf"{MODEL_PREFIX}/status", path):
            model = self._model(req, match.groupdict())
            if req.method not in ("GET", "POST"):
                raise ApiError(405)
            return self.model_status(req, model, match.group("ws") is not None)
        for pattern, handlers in self.routes:
            match = pattern.match(path)
            if match:
                params = match.groupdict()
                model = self._model(req, params)
                handler = handlers.get(req.method)
                if handler is None:
                    raise ApiError(405)
                self._check_active_state(req, model)
                return handler(req, model, params)
        raise ApiError(404)

    @staticmethod
    def _only_get(req: Request, handler: Callable[[Request], Response]) -> Response:
        if req.method != "GET":
            raise ApiError(405)
        return handler(req)

    def _visible(self, model: ModelDef, user: str) -> bool:
        return model.users is None or user in model.users

    def _model(self, req: Request, params: dict[str, str | None]) -> ModelDef:
        model = self.state.model(params["m"] or "")
        if model is None or not self._visible(model, req.user):
            raise ApiError(404, f"Model {params['m']} not found")
        if params.get("ws") and params["ws"] != model.workspace_id:
            raise ApiError(404, f"Model {model.id} is not in workspace {params['ws']}")
        return model

    def _check_active_state(self, req: Request, model: ModelDef) -> None:
        active_state = self.state.model_states[model.id]
        if active_state in STATE_ERRORS:
            raise ApiError(*STATE_ERRORS[active_state])
        if active_state == "LOCKED" and req.method != "GET":
            raise ApiError(423, "The model is locked.")

    # -- workspaces and models --------------------------------------------------------------

    def _workspace_json(self, req: Request, ws_id: str) -> dict[str, Any]:
        ws = self.state.scenario.workspaces[ws_id]
        body = {"id": ws.id, "name": ws.name, "active": True, "sizeAllowance": SIZE_ALLOWANCE}
        if req.param("tenantDetails") == "true":
            body["currentSize"] = 0
        return body

    def list_workspaces(self, req: Request) -> Response:
        """#7 GET /workspaces."""
        items = [self._workspace_json(req, ws) for ws in self.state.scenario.workspaces]
        items = sort_checked(req, items, WORKSPACE_SORT_FIELDS)
        return paged(req, "objects/workspace", "workspaces", items)

    def get_workspace(self, req: Request, ws_id: str) -> Response:
        """GET /workspaces/{ws}."""
        if ws_id not in self.state.scenario.workspaces:
            raise ApiError(404, f"Workspace {ws_id} not found")
        return success(req, "objects/workspace", workspace=self._workspace_json(req, ws_id))

    def _model_json(self, req: Request, model: ModelDef) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": model.id,
            "name": model.name,
            "activeState": self.state.model_states[model.id],
            "currentWorkspaceId": model.workspace_id,
            "currentWorkspaceName": model.workspace_name,
            "modelUrl": f"{req.base_url}/models/{model.id}",
            "categoryValues": [],
        }
        if req.param("modelDetails") == "true":
            save = self.state.saves[model.id]
            body.update(
                lastSavedSerialNumber=save.serial_number,
                lastModifiedByUserGuid=save.modified_by_guid,
                memoryUsage=self.state.memory_usage(model.id),
                isoCreationDate=model.iso_creation_date,
                lastModified=save.modified_at,
                modelTransactionRunning=self.runner.running(model.id) is not None,
            )
        return body

    def list_models(self, req: Request, ws_id: str | None) -> Response:
        """#8 GET /models and /workspaces/{ws}/models (sorted like /models, §3.3 "same as")."""
        if ws_id is not None and ws_id not in self.state.scenario.workspaces:
            raise ApiError(404, f"Workspace {ws_id} not found")
        models = [
            self._model_json(req, m)
            for m in self.state.scenario.models.values()
            if self._visible(m, req.user) and ws_id in (None, m.workspace_id)
        ]
        models = sort_checked(req, models, MODEL_SORT_FIELDS)
        return paged(req, "objects/model", "models", models)

    def get_model(self, req: Request, model_id: str) -> Response:
        """#9 GET /models/{m}."""
        model = self._model(req, {"m": model_id})
        return success(req, "objects/model", model=self._model_json(req, model))

    def model_status(self, req: Request, model: ModelDef, enveloped: bool) -> Response:
        """#29 model status: bare under /models/{m}, enveloped under /workspaces/{ws}/..."""
        running = self.runner.running(model.id)
        status: dict[str, Any] = {
            "currentStep": "Processing ..." if running else "Open",
            "progress": -1.0,
            "creationTime": self.state.clock.millis(),
        }
        if running:
            status["taskId"] = running.id
        if enveloped:
            return success(req, f"models/{model.id}/objects/requestStatus", requestStatus=status)
        return json_response(200, {"requestStatus": status})

    # -- files ------------------------------------------------------------------------------

    def _file(self, model: ModelDef, fid: str) -> FileState:
        file = self.state.files[model.id].get(fid)
        if file is None:
            raise ApiError(404, f"File {fid} not found")
        return file

    @staticmethod
    def _file_body(req: Request, model: ModelDef, file: FileState) -> Response:
        body = file.definition.as_json(file.chunk_count)
        return success(req, f"models/{model.id}/objects/file", file=body)

    def list_files(self, req: Request, model: ModelDef, p: dict[str, str]) -> Response:
        """#10 GET .../files."""
        files = [f.definition.as_json(f.chunk_count) for f in self.state.files[model.id].values()]
        return paged(req, f"models/{model.id}/objects/file", "files", sort_lenient(req, files))

    def set_chunk_count(self, req: Request, model: ModelDef, p: dict[str, str]) -> Response:
        """#13 POST .../files/{fid} {"chunkCount": N|-1}; an unknown id creates a file."""
        body = req.json()
        count = body.get("chunkCount") if isinstance(body, dict) else None
        if not isinstance(count, int) or isinstance(count, bool) or count < -1:
            raise ApiError(400, "chunkCount must be an integer >= -1")
        files = self.state.files[model.id]
        file = files.get(p["fid"]) or self._create_file(model, p["fid"])
        if count == 0:
            file.finish_upload(req.user, [], self.state.clock())
        else:
            file.pending[req.user] = Upload(expected=count)
        return self._file_body(req, model, file)

    def _create_file(self, model: ModelDef, name: str) -> FileState:
        files = self.state.files[model.id]
        existing = next((f for f in files.values() if f.definition.name == name), None)
        if existing is not None:
            return existing
        taken = [int(fid) for fid in files if fid.isdigit() and fid.startswith("113")]
        new_id = str(max(taken, default=112999999999) + 1)
        definition = FileDef(id=new_id, name=name, encoding="ISO-8859-1", header_row=-1,
                             first_data_row=-1)  # fmt: skip
        files[new_id] = FileState(definition=definition, model_id=model.id)
        return files[new_id]

    def put_file(self, req: Request, model: ModelDef, p: dict[str, str]) -> Response:
        """#14 PUT .../files/{fid}: the whole content as one chunk."""
        file = self._file(model, p["fid"])
        file.finish_upload(req.user, [_chunk_bytes(req)], self.state.clock())
        return Response(204)

    def put_chunk(self, req: Request, model: ModelDef, p: dict[str, str]) -> Response:
        """#15 PUT .../files/{fid}/chunks/{n}; gzip is unpacked, a repeated index replaces."""
        file = self._file(model, p["fid"])
        index = _index(p["n"])
        upload = file.pending.setdefault(req.user, Upload(expected=-1))
        upload.chunks[index] = _chunk_bytes(req)
        if upload.expected > 0 and set(range(upload.expected)) <= set(upload.chunks):
            file.finish_upload(req.user, _joined(upload), self.state.clock())
        return Response(204)

    def complete(self, req: Request, model: ModelDef, p: dict[str, str]) -> Response:
        """#16 POST .../files/{fid}/complete; without a body Anaplan answers a bare 500."""
        file = self._file(model, p["fid"])
        if not req.body.strip():
            return Response(500)
        req.json()
        upload = file.pending.get(req.user)
        if upload is not None:
            file.finish_upload(req.user, _joined(upload), self.state.clock())
        return self._file_body(req, model, file)

    def list_chunks(self, req: Request, model: ModelDef, p: dict[str, str]) -> Response:
        """#17 GET .../files/{fid}/chunks: uploaded so far, or the completed content's."""
        file = self._file(model, p["fid"])
        upload = file.pending.get(req.user)
        if upload is not None:
            ids = sorted(upload.chunks)
        else:
            ids = list(range(len(file.chunks_for(req.user, self.state.clock()) or [])))
        items = [{"id": str(i), "name": f"Chunk {i}"} for i in ids]
        return paged(req, f"models/{model.id}/objects/chunk", "chunks", items)

    def get_chunk(self, req: Request, model: ModelDef, p: dict[str, str]) -> Response:
        """#18 GET .../files/{fid}/chunks/{n}."""
        chunks = self._file(model, p["fid"]).chunks_for(req.user, self.state.clock()) or []
        index = _index(p["n"])
        if index >= len(chunks):
            raise ApiError(404, f"Chunk {index} not found")
        return bytes_response(chunks[index])

    def get_file(self, req: Request, model: ModelDef, p: dict[str, str]) -> Response:
        """#18 GET .../files/{fid}: the caller's content, else the default; 404 when none."""
        chunks = self._file(model, p["fid"]).chunks_for(req.user, self.state.clock())
        if not chunks:
            raise ApiError(404, f"File {p['fid']} has no content")
        return bytes_response(b"".join(chunks))

    def delete_file(self, req: Request, model: ModelDef, p: dict[str, str]) -> Response:
        """#19 DELETE .../files/{fid}: removes only the caller's private content."""
        file = self._file(model, p["fid"])
        file.content.pop(req.user, None)
        file.pending.pop(req.user, None)
        return Response(204)

    # -- imports and processes --------------------------------------------------------------

    def list_imports(self, req: Request, model: ModelDef, p: dict[str, str]) -> Response:
        """#11 GET .../imports (trailing slash too)."""
        items = [
            {"id": i.id, "name": i.name, "importDataSourceId": i.file_id,
             "importType": i.import_type}
            for i in model.imports.values()
        ]  # fmt: skip
        return paged(req, f"models/{model.id}/objects/import", "imports", sort_lenient(req, items))

    def import_metadata(self, req: Request, model: ModelDef, p: dict[str, str]) -> Response:
        """#12 GET .../imports/{iid}; unknown id 404."""
        imp = model.imports.get(p["aid"])
        if imp is None:
            raise ApiError(404, f"Import {p['aid']} not found")
        meta = {"name": imp.name, "type": "FILE", "source": imp.source.as_json()}
        return success(req, f"models/{model.id}/objects/importMetadata", importMetadata=meta)

    def list_processes(self, req: Request, model: ModelDef, p: dict[str, str]) -> Response:
        """#26 GET .../processes."""
        items = [{"id": pr.id, "name": pr.name} for pr in model.processes.values()]
        items = sort_lenient(req, items)
        return paged(req, f"models/{model.id}/objects/process", "processes", items)

    def process_metadata(self, req: Request, model: ModelDef, p: dict[str, str]) -> Response:
        """#26 GET .../processes/{pid}: the import steps in run order."""
        process = model.processes.get(p["aid"])
        if process is None:
            raise ApiError(404, f"Process {p['aid']} not found")
        actions = []
        for action_id in process.actions:
            if action_id in model.actions:
                actions.append(_action_step(model, action_id))
                continue
            imp = model.imports[action_id]
            action: dict[str, Any] = {"id": imp.id, "name": imp.name, "actionType": "IMPORT",
                      "importDataSourceId": imp.file_id, "importType": imp.import_type}  # fmt: skip
            if req.param("showImportDataSource") == "true":
                action["importDataSource"] = {"importDataSourceId": imp.file_id, "type": "FILE"}
            actions.append(action)
        meta = {"name": process.name, "actions": actions}
        return success(req, f"models/{model.id}/objects/processMetadata", processMetadata=meta)

    def list_none(self, req: Request, model: ModelDef, p: dict[str, str]) -> Response:
        """GET .../exports: the simulator has none."""
        return paged(req, f"models/{model.id}/objects/{p['kind'][:-1]}", p["kind"], [])

    # -- tasks and dumps --------------------------------------------------------------------

    def start_task(self, req: Request, model: ModelDef, p: dict[str, str]) -> Response:
        """#20/#27 POST .../tasks {"localeName": ...} (imports, processes, other actions)."""
        actions: dict[str, dict[str, Any]] = {
            "imports": model.imports,
            "processes": model.processes,
            "actions": model.actions,
        }
        if p["aid"] not in actions[p["kind"]]:
            raise ApiError(404, f"Action {p['aid']} not found")
        body = req.json() if req.body.strip() else None
        if not isinstance(body, dict) or not body.get("localeName"):
            raise ApiError(400, "localeName is required")
        task = self.runner.create(model, p["aid"], TASK_KINDS[p["kind"]], req.user)
        return success(req, f"models/{model.id}/objects/task", task=task.summary())

    def list_tasks(self, req: Request, model: ModelDef, p: dict[str, str]) -> Response:
        """#21 GET .../tasks; an unknown action has simply no tasks."""
        tasks = [t.summary() for t in self.runner.for_action(model.id, p["aid"])]
        tasks = sort_lenient(req, tasks, TASK_SORT_ALIASES)
        return paged(req, f"models/{model.id}/objects/task", "tasks", tasks)

    def _task(self, model: ModelDef, p: dict[str, str]) -> Task:
        task = self.state.tasks.get(p["tid"])
        if task is None or task.model_id != model.id or task.action_id != p["aid"]:
            raise ApiError(404, f"Task {p['tid']} not found")
        return task

    def get_task(self, req: Request, model: ModelDef, p: dict[str, str]) -> Response:
        """#22/#27 GET .../tasks/{tid}: every poll advances the model's queue by one step."""
        task = self._task(model, p)
        self.runner.poll(task)
        return success(req, f"models/{model.id}/objects/task", task=task_json(task))

    def cancel_task(self, req: Request, model: ModelDef, p: dict[str, str]) -> Response:
        """#23 DELETE .../tasks/{tid}: CANCELLING now, CANCELLED on a later poll."""
        task = self._task(model, p)
        self.runner.cancel(task)
        return success(req, f"models/{model.id}/objects/task", task=task_json(task))

    def get_dump(self, req: Request, model: ModelDef, p: dict[str, str]) -> Response:
        """#24/#25/#28 failure dumps: whole, chunk list, or one chunk (per user)."""
        task = self._task(model, p)
        dump = task.dumps.get(p.get("oid") or task.action_id)
        if dump is None or task.user != req.user:
            raise ApiError(404, "No failure dump for this task")
        task.dumps_touched = self.state.clock()
        size = self.state.scenario.dump_chunk_bytes
        chunks = [dump[i : i + size] for i in range(0, len(dump), size)]
        if not p["chunks"]:
            return bytes_response(dump, "text/plain")
        if not p["n"]:  # .../chunks: the list (the group is None without an index)
            items = [{"id": str(i), "name": f"Chunk {i}"} for i in range(len(chunks))]
            return paged(req, f"models/{model.id}/objects/chunk", "chunks", items)
        index = _index(p["n"])
        if index >= len(chunks):
            raise ApiError(404, f"Chunk {index} not found")
        return bytes_response(chunks[index], "text/plain")


def _action_step(model: ModelDef, action_id: str) -> dict[str, Any]:
    """A process step that runs an other action: its id, name and type."""
    action = model.actions[action_id]
    step = {"id": action.id, "name": action.name}
    return step | ({"actionType": action.action_type} if action.action_type else {})


def _index(raw: str) -> int:
    if not raw.isdigit():
        raise ApiError(400, f"Chunk id must be a non-negative integer, got {raw!r}")
    return int(raw)


def _joined(upload: Upload) -> list[bytes]:
    return [upload.chunks[i] for i in sorted(upload.chunks)]


def _chunk_bytes(req: Request) -> bytes:
    """The body, gunzipped when sent as application/x-gzip."""
    content_type = (req.header("Content-Type") or "").split(";")[0].strip().lower()
    if content_type not in ("application/x-gzip", "application/gzip"):
        return req.body
    try:
        return gzip.decompress(req.body)
    except (OSError, EOFError, zlib.error) as exc:
        raise ApiError(400, f"Chunk is not valid gzip: {exc}") from exc
