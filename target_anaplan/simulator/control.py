"""The control API: what tests use to reset, inspect and sabotage the simulator.

Each call is a Python method (in-process tests call it on the Simulator) and is also served
over HTTP under `/__sim__/` (tests that run the simulator in another process).
"""

from __future__ import annotations

import base64
import re
from typing import Any

from target_anaplan.simulator import certs, page
from target_anaplan.simulator.auth import AuthService
from target_anaplan.simulator.faults import FaultSpecError
from target_anaplan.simulator.scenario import ModelDef
from target_anaplan.simulator.state import SimState
from target_anaplan.simulator.wire import ApiError, Request, Response, json_response

ACTIVE_STATES = ("UNLOCKED", "LOCKED", "ARCHIVED", "PRODUCTION", "MAINTENANCE",
                 "PRODUCTION_MAINTENANCE")  # fmt: skip


class ControlError(Exception):
    """A control call that cannot be done; carries the HTTP status for /__sim__."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Control:
    """Control calls over a SimState; the Simulator inherits these as its own methods."""

    def __init__(self, state: SimState, auth: AuthService) -> None:
        self.state = state
        self.auth = auth

    def reset(self) -> None:
        """Back to the scenario: data, files, tasks, faults, request log, clock, tokens."""
        with self.state.lock:
            self.state.reset()
            self.state.clock.offset_s = 0.0
            self.auth.reset()

    def models(self) -> list[dict[str, Any]]:
        """What the scenario holds, model by model, with the live counts."""
        with self.state.lock:
            return [self._model_summary(model) for model in self.state.scenario.models.values()]

    def list_items(self, model: str, name: str) -> list[dict[str, Any]]:
        """A list's items: [{"code","name","parent","properties"}]; `model` is an id or a name."""
        with self.state.lock:
            found = self._model(model)
            if name not in found.lists:
                raise ControlError(404, f"no list {name!r} in model {found.name} ({found.id})")
            return [item.as_json() for item in self.state.list_items(found.id, name)]

    def module_rows(self, model: str, name: str) -> list[dict[str, Any]]:
        """A module's rows: [{"dimensions": {list: item code}, "values": {line item: v}}]."""
        with self.state.lock:
            found = self._model(model)
            if name not in found.modules:
                raise ControlError(404, f"no module {name!r} in model {found.name} ({found.id})")
            return self.state.module_rows(found.id, name)

    def files(self) -> list[dict[str, Any]]:
        """Every file with per-user content (text and base64) and completed upload counts."""
        with self.state.lock:
            out = []
            for model_files in self.state.files.values():
                for file in model_files.values():
                    data = {u: b"".join(c) for u, c in file.content.items()}
                    encoding = file.definition.encoding
                    out.append({
                        "id": file.definition.id,
                        "name": file.definition.name,
                        "model": file.model_id,
                        "chunkCount": file.chunk_count,
                        "uploads": sum(file.uploads.values()),
                        "uploads_by_user": dict(file.uploads),
                        "content": {u: d.decode(encoding, "replace") for u, d in data.items()},
                        "content_b64": {u: base64.b64encode(d).decode() for u, d in data.items()},
                    })  # fmt: skip
            return out

    def tasks(self) -> list[dict[str, Any]]:
        """Every task, oldest first, with its state, poll count and result."""
        with self.state.lock:
            return [
                {
                    "taskId": t.id,
                    "model": t.model_id,
                    "actionId": t.action_id,
                    "kind": t.kind,
                    "user": t.user,
                    "taskState": t.state,
                    "creationTime": t.created_ms,
                    "polls": t.polls,
                    "result": t.result,
                    "dumps": sorted(t.dumps),
                }
                for t in self.state.tasks.values()
            ]

    def requests(self) -> list[dict[str, Any]]:
        """The request log: [{"time","method","path","query","status"}] (control calls excluded)."""
        with self.state.lock:
            return [dict(r) for r in self.state.requests]

    def add_fault(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Inject a fault (body format in docs/simulator.md); returns it with its id."""
        with self.state.lock:
            try:
                return self.state.faults.add(spec)
            except (FaultSpecError, TypeError, ValueError) as exc:
                raise ControlError(400, str(exc)) from exc

    def faults(self) -> list[dict[str, Any]]:
        """Every injected fault with its counters."""
        with self.state.lock:
            return self.state.faults.describe()

    def clear_faults(self) -> None:
        """Remove every injected fault."""
        with self.state.lock:
            self.state.faults.clear()

    def advance_clock(self, seconds: float) -> float:
        """Move the simulator clock forward (token expiry); returns the new epoch seconds."""
        with self.state.lock:
            return self.state.clock.advance(float(seconds))

    def approve_device(self, user_code: str) -> bool:
        """Approve a pending device-code login, as the user would in a browser."""
        with self.state.lock:
            return self.auth.approve_device(user_code)

    def set_model_state(self, model: str, active_state: str) -> None:
        """Change a model's activeState (LOCKED, ARCHIVED, MAINTENANCE, ...) at run time."""
        with self.state.lock:
            found = self._model(model)
            if active_state not in ACTIVE_STATES:
                raise ControlError(400, f"activeState must be one of {ACTIVE_STATES}")
            self.state.model_states[found.id] = active_state

    def register_certificate(self, email: str, pem: object) -> dict[str, str]:
        """Let a scenario user log in with this certificate (PEM), as an admin would register it.

        Lasts until reset(); returns {"user", "fingerprint"} (SHA-256 of the DER bytes).
        """
        try:
            certificate = certs.certificate_from_pem(pem)
        except certs.CertificateError as exc:
            raise ControlError(400, f"the body's 'certificate' is {exc.message}") from exc
        user = self.state.scenario.user(email)
        if user is None:
            raise ControlError(404, f"no user {email!r} in the scenario")
        return {
            "user": user.email,
            "fingerprint": self.auth.register_certificate(user, certificate),
        }

    def page(self) -> str:
        """The HTML page that shows a person what landed (GET /__sim__/)."""
        with self.state.lock:
            return page.render(self.state)

    def _model(self, ref: str) -> ModelDef:
        """A model by id, else by name (the caller holds the lock)."""
        models = self.state.scenario.models
        if ref in models:
            return models[ref]
        named = [m for m in models.values() if m.name == ref]
        if len(named) > 1:
            ids = ", ".join(m.id for m in named)
            raise ControlError(400, f"model name {ref!r} is ambiguous; use one of the ids {ids}")
        if not named:
            raise ControlError(404, f"no model {ref!r}: neither a model id nor a model name")
        return named[0]

    def _model_summary(self, model: ModelDef) -> dict[str, Any]:
        return {
            "id": model.id,
            "name": model.name,
            "workspace": {"id": model.workspace_id, "name": model.workspace_name},
            "activeState": self.state.model_states[model.id],
            "lists": [
                {"name": lst.name, "properties": dict(lst.properties),
                 "items": len(self.state.lists[(model.id, lst.name)])}
                for lst in model.lists.values()
            ],
            "modules": [
                {"name": mod.name, "dimensions": list(mod.dimensions),
                 "line_items": dict(mod.line_items),
                 "rows": len(self.state.modules[(model.id, mod.name)])}
                for mod in model.modules.values()
            ],
            "files": [{"id": f.id, "name": f.name} for f in model.files.values()],
            "imports": [
                {"id": i.id, "name": i.name, "file": i.file_id, i.target_kind: i.target}
                for i in model.imports.values()
            ],
            "processes": [
                {"id": p.id, "name": p.name, "actions": list(p.actions)}
                for p in model.processes.values()
            ],
        }  # fmt: skip

    def handle_control(self, req: Request) -> Response:
        """Serve one /__sim__ call (path given without the prefix)."""
        if req.method == "GET" and req.path in ("", "/"):
            html = self.page().encode("utf-8")
            return Response(200, html, {"Content-Type": "text/html; charset=utf-8"})
        try:
            return json_response(200, self._dispatch(req))
        except ControlError as exc:
            return json_response(exc.status, {"error": str(exc)})
        except (TypeError, ValueError) as exc:
            return json_response(400, {"error": f"bad value in the request body: {exc}"})

    def _dispatch(self, req: Request) -> dict[str, Any] | list[dict[str, Any]]:
        method, path = req.method, req.path.rstrip("/")
        if (method, path) == ("POST", "/reset"):
            self.reset()
            return {"ok": True}
        if match := re.fullmatch(r"/models/([^/]+)/(lists|modules)/(.+)", path):
            model_id, kind, name = match.groups()
            if kind == "lists":
                return {"items": self.list_items(model_id, name)}
            return {"rows": self.module_rows(model_id, name)}
        if (match := re.fullmatch(r"/models/([^/]+)", path)) and method == "POST":
            self.set_model_state(match.group(1), str(_body(req).get("activeState")))
            return {"ok": True}
        if match := re.fullmatch(r"/users/([^/]+)/certificates", path):
            if method != "POST":
                raise ControlError(405, "register a certificate with POST")
            return self.register_certificate(match.group(1), _body(req).get("certificate"))
        getters = {"/files": self.files, "/tasks": self.tasks, "/requests": self.requests,
                   "/faults": self.faults, "/models": self.models}  # fmt: skip
        if method == "GET" and path in getters:
            return getters[path]()
        if (method, path) == ("POST", "/faults"):
            return {"fault": self.add_fault(_body(req))}
        if (method, path) == ("DELETE", "/faults"):
            self.clear_faults()
            return {"ok": True}
        if (method, path) == ("POST", "/clock"):
            return {"now": self.advance_clock(_body(req).get("advance_s", 0))}
        if (method, path) == ("POST", "/device/approve"):
            if not self.approve_device(str(_body(req).get("user_code", ""))):
                raise ControlError(404, "no pending device login with that user_code")
            return {"approved": True}
        raise ControlError(404, f"no control call {method} /__sim__{req.path}")


def _body(req: Request) -> dict[str, Any]:
    try:
        body = req.json()
    except ApiError as exc:
        raise ControlError(400, str(exc)) from exc
    if not isinstance(body, dict):
        raise ControlError(400, "the body must be a JSON object")
    return body
