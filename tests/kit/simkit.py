"""A tiny plain-`requests` Anaplan client and ids for driving the simulator in its own tests."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import requests

from target_anaplan.simulator import EXAMPLE_SCENARIO, Simulator

_EXAMPLE = json.loads(EXAMPLE_SCENARIO.read_text(encoding="utf-8"))
WORKSPACE_ID = _EXAMPLE["workspaces"][0]["id"]
MODEL_ID = _EXAMPLE["workspaces"][0]["models"][0]["id"]
USER = _EXAMPLE["users"][0]["email"]
PASSWORD = _EXAMPLE["users"][0]["password"]
OTHER_USER = "other@example.com"  # added to the example by tests/conftest.py
MODEL_PATH = f"/workspaces/{WORKSPACE_ID}/models/{MODEL_ID}"
PRODUCTS_IMPORT, SALES_IMPORT = "112000000000", "112000000001"
PRODUCTS_FILE, SALES_FILE = "113000000000", "113000000001"
PROCESS = "118000000000"
PRODUCTS_HEADER = "Code,Name,Category,Price,Launched,Active\n"
SALES_HEADER = "Product,Region,Units,Revenue,Note\n"
ARCHIVE_WORKSPACE_ID = "0c9d4e1f2a3b4c5d6e7f8091a2b3c4d5"
ARCHIVE_MODEL_ID = "0D1E2F3A4B5C4D6E8F9A0B1C2D3E4F5A"


def with_archive_workspace(scenario: dict[str, Any]) -> dict[str, Any]:
    """The scenario plus "Archive Workspace" with one ARCHIVED "Archive Model": names and
    states that sort before the example's, so a sorted listing differs from the stored order."""
    archive = {"id": ARCHIVE_MODEL_ID, "name": "Archive Model", "activeState": "ARCHIVED"}
    workspace = {"id": ARCHIVE_WORKSPACE_ID, "name": "Archive Workspace", "models": [archive]}
    return {**scenario, "workspaces": [*scenario["workspaces"], workspace]}


def login(sim: Simulator, email: str, password: str) -> str:
    """Basic login against the simulator's auth API; returns the token value."""
    basic = base64.b64encode(f"{email}:{password}".encode()).decode()
    response = requests.post(
        f"{sim.url}/token/authenticate", headers={"Authorization": f"Basic {basic}"}, timeout=10
    )
    assert response.status_code in (200, 201), response.text
    return response.json()["tokenInfo"]["tokenValue"]


class Client:
    """Plain requests against one simulator, logged in as one user; "@" paths are relative
    to `model_path` (the example model's workspace path by default)."""

    def __init__(self, sim: Simulator, email: str = USER, model_path: str = MODEL_PATH) -> None:
        self.sim = sim
        self.email = email
        self.model_path = model_path
        self.session = requests.Session()
        self.login()

    def login(self) -> None:
        """(Re)authenticate with basic auth, e.g. after moving the clock past token expiry."""
        users = self.sim.scenario.raw["users"]
        password = next(u["password"] for u in users if u["email"] == self.email)
        token = login(self.sim, self.email, password)
        self.session.headers["Authorization"] = f"AnaplanAuthToken {token}"

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """`path` is relative to /2/0; a leading "@" means relative to the model."""
        if path.startswith("@"):
            path = self.model_path + path[1:]
        return self.session.request(method, f"{self.sim.url}/2/0{path}", timeout=10, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.call("GET", path, **kwargs)

    def upload(self, file_id: str, text: str, *, chunks: int = 2, encoding: str = "utf-8") -> None:
        """Chunked gzip upload with chunkCount -1, then /complete."""
        data = text.encode(encoding)
        assert self.call("POST", f"@/files/{file_id}", json={"chunkCount": -1}).status_code == 200
        size = max(1, -(-len(data) // chunks))
        for index, start in enumerate(range(0, len(data), size)):
            response = self.call(
                "PUT",
                f"@/files/{file_id}/chunks/{index}",
                data=gzip.compress(data[start : start + size]),
                headers={"Content-Type": "application/x-gzip"},
            )
            assert response.status_code == 204, response.text
        done = self.call("POST", f"@/files/{file_id}/complete", json={"id": file_id})
        assert done.status_code == 200, done.text

    def start(self, action_id: str, kind: str = "imports") -> str:
        response = self.call("POST", f"@/{kind}/{action_id}/tasks", json={"localeName": "en_US"})
        assert response.status_code == 200, response.text
        return response.json()["task"]["taskId"]

    def poll(self, action_id: str, task_id: str, kind: str = "imports") -> dict[str, Any]:
        response = self.get(f"@/{kind}/{action_id}/tasks/{task_id}")
        assert response.status_code == 200, response.text
        return response.json()["task"]

    def run(self, action_id: str, kind: str = "imports", max_polls: int = 50) -> dict[str, Any]:
        """Start a task and poll until it is COMPLETE or CANCELLED."""
        task_id = self.start(action_id, kind)
        for _ in range(max_polls):
            task = self.poll(action_id, task_id, kind)
            if task["taskState"] in ("COMPLETE", "CANCELLED"):
                return task
        raise AssertionError(f"task {task_id} did not finish in {max_polls} polls")


def cancel_import(sim: Simulator, email: str, model_path: str, import_id: str, task: str) -> None:
    """Cancel a running import task as `email`, as a model builder does in Anaplan's UI."""
    client = Client(sim, email, model_path)
    client.call("DELETE", f"@/imports/{import_id}/tasks/{task}").raise_for_status()


def control(sim: Simulator, method: str, path: str, **kwargs: Any) -> requests.Response:
    """Call the control API over HTTP."""
    return requests.request(method, f"{sim.url}/__sim__{path}", timeout=10, **kwargs)


def ok(response: requests.Response, key: str) -> dict:
    """A 200 with Anaplan's success envelope; returns body[key]."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body["meta"]["schema"], str)
    assert body["status"] == {"code": 200, "message": "Success"}
    return body[key]


def page(response: requests.Response, key: str) -> list:
    """A paged list; the key may be absent when empty."""
    assert response.status_code == 200, response.text
    body = response.json()
    paging = body["meta"]["paging"]
    items = body.get(key, [])
    assert paging["currentPageSize"] == len(items)
    assert set(paging) >= {"currentPageSize", "offset", "totalSize"}
    assert body["status"] == {"code": 200, "message": "Success"}
    return items


def error(response: requests.Response, code: int) -> dict:
    """Anaplan's error body."""
    assert response.status_code == code, response.text
    body = response.json()
    assert body["status"]["code"] == code
    assert isinstance(body["status"]["message"], str)
    assert body["path"].startswith("/2/0/")
    assert body["timestamp"].endswith("Z")
    return body


def values(detail: dict[str, Any]) -> dict[str, str]:
    """details[].values as a dict (it is a flat key/value list)."""
    flat = detail["values"]
    return dict(zip(flat[::2], flat[1::2], strict=True))


def gz(text: str) -> bytes:
    return gzip.compress(text.encode())
