"""HTTP plumbing shared by the route modules: request/response values, Anaplan's envelopes,
error bodies and paging. Kept apart so routes read as API behaviour, not byte handling.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_LIMIT = 5000
REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    422: "Unprocessable Entity",
    423: "Locked",
    424: "Failed Dependency",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@dataclass
class Request:
    """A parsed request; `path` has no query string, `headers` is case-insensitive."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes
    base_url: str = ""
    raw_query: str = ""
    user: str = ""

    def header(self, name: str) -> str | None:
        """A header, matched case-insensitively even when `headers` is a plain dict."""
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)

    def param(self, name: str, default: str | None = None) -> str | None:
        """The first value of a query parameter."""
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        """The body as JSON; ApiError 400 if it is not."""
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ApiError(400, f"Request body is not valid JSON: {exc}") from exc


@dataclass
class Response:
    """What the handler writes back."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class ApiError(Exception):
    """An Integration API error; rendered as Anaplan's error body."""

    def __init__(self, status: int, message: str | None = None) -> None:
        super().__init__(message or REASONS.get(status, "Error"))
        self.status = status


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    """A JSON response."""
    return Response(
        status,
        json.dumps(body).encode("utf-8"),
        {"Content-Type": "application/json", **(headers or {})},
    )


def bytes_response(data: bytes, content_type: str = "application/octet-stream") -> Response:
    """A 200 with raw bytes (file content, dumps)."""
    return Response(200, data, {"Content-Type": content_type})


def error_response(status: int, message: str, path: str, now: float) -> Response:
    """Anaplan's error body: {"status":{"code","message"},"path","timestamp"}."""
    stamp = dt.datetime.fromtimestamp(now, tz=dt.timezone.utc).isoformat().replace("+00:00", "Z")
    body = {"status": {"code": status, "message": message}, "path": path, "timestamp": stamp}
    return json_response(status, body)


def success(req: Request, schema: str, **payload: Any) -> Response:
    """A 200 with Anaplan's success envelope around `payload`."""
    body = {
        "meta": {"schema": f"{req.base_url}/2/0/{schema}"},
        "status": {"code": 200, "message": "Success"},
        **payload,
    }
    return json_response(200, body)


def paged(req: Request, schema: str, key: str, items: list[Any]) -> Response:
    """A list response paged with limit/offset; an empty page leaves out its key."""
    limit = _int_param(req, "limit", DEFAULT_LIMIT)
    offset = _int_param(req, "offset", 0)
    if limit < 1 or offset < 0:
        raise ApiError(400, "limit must be >= 1 and offset >= 0")
    page = items[offset : offset + limit]
    meta = {
        "paging": {"currentPageSize": len(page), "offset": offset, "totalSize": len(items)},
        "schema": f"{req.base_url}/2/0/{schema}",
    }
    body: dict[str, Any] = {"meta": meta, "status": {"code": 200, "message": "Success"}}
    if page:
        body[key] = page
    return json_response(200, body)


def _int_param(req: Request, name: str, default: int) -> int:
    raw = req.param(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ApiError(400, f"Query parameter {name} must be an integer, got {raw!r}") from None
