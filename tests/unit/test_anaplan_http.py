"""The client against a scripted HTTP stub on 127.0.0.1: exact requests, statuses, replays.

Each test scripts the responses per (method, path) and asserts what was sent. The
stateful behaviour (real imports) is covered against the simulator instead.
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import re
import socket
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from target_anaplan.anaplan import retry as retry_module
from target_anaplan.anaplan import upload as upload_module
from target_anaplan.anaplan.auth import Token, TokenAuth
from target_anaplan.anaplan.basic_auth import BasicAuth
from target_anaplan.anaplan.client import AnaplanClient
from target_anaplan.anaplan.dumps import download_dump, summarize_dump
from target_anaplan.anaplan.errors import (
    ActionFailedError,
    AnaplanError,
    ApiError,
    AuthenticationError,
    HostUnreachableError,
    ModelUnavailableError,
    NotFoundError,
    TransientError,
)
from target_anaplan.anaplan.models import ActionRef, ModelRef, TaskOutcome
from target_anaplan.anaplan.regions import Hosts, resolve_hosts
from target_anaplan.anaplan.retry import RetryPolicy
from target_anaplan.anaplan.tasks import cancel_running_tasks, run_actions
from target_anaplan.anaplan.upload import upload_file

MODEL = ModelRef("ws1", "WS", "M1", "Model")
BASE = "/2/0/workspaces/ws1/models/M1"
FAST = RetryPolicy(max_attempts=4, base_delay_s=0.001, max_delay_s=0.002, deadline_s=10)


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


Reply = tuple  # (status, body dict|bytes|None[, headers dict])


@dataclass
class Stub:
    """Scripted answers by (method, path regex); a route's last answer repeats."""

    routes: list[tuple[str, re.Pattern, list]] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    url: str = ""

    def on(self, method: str, path: str, *replies: Reply | Callable[[Seen], Reply]) -> None:
        self.routes.insert(0, (method, re.compile(path + "$"), list(replies)))

    def calls(self, method: str, path: str) -> list[Seen]:
        pattern = re.compile(path + "$")
        return [s for s in self.seen if s.method == method and pattern.match(s.path)]

    def answer(self, request: Seen) -> Reply:
        self.seen.append(request)
        for method, pattern, replies in self.routes:
            if method == request.method and pattern.match(request.path):
                reply = replies.pop(0) if len(replies) > 1 else replies[0]
                return reply(request) if callable(reply) else reply
        return (599, {"status": {"code": 599, "message": f"no route {request.path}"}})


class Handler(BaseHTTPRequestHandler):
    def _handle(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        request = Seen(
            self.command,
            parts.path,
            parse_qs(parts.query),
            dict(self.headers.items()),
            self.rfile.read(length),
        )
        status, body, *rest = self.server.stub.answer(request)
        headers = rest[0] if rest else {}
        payload = json.dumps(body).encode() if isinstance(body, (dict, list)) else (body or b"")
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = _handle  # noqa: N815

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def stub():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.stub = Stub(url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield server.stub
    server.shutdown()
    server.server_close()


class CountingAuth(TokenAuth):
    """Hands out token-1, token-2, ... so a test can see which token a call carried."""

    def __init__(self) -> None:
        super().__init__()
        self.issued = 0

    def _obtain(self) -> Token:
        self.issued += 1
        return Token(f"token-{self.issued}", time.time() + 3600)


def make_client(stub: Stub, auth: TokenAuth | None = None, policy: RetryPolicy = FAST):
    hosts = Hosts(stub.url + "/2/0", stub.url, stub.url)
    return AnaplanClient(hosts, auth or CountingAuth(), retry=policy, timeout_s=5)


@pytest.fixture
def client(stub):
    c = make_client(stub)
    yield c
    c.close()


def ok(body=None, status=200) -> Reply:
    return (status, body if body is not None else {"status": {"code": status}})


def error(status: int, message: str = "", headers=None) -> Reply:
    return (status, {"status": {"code": status, "message": message}}, headers or {})


# --- client: auth header, status mapping, retries -------------------------------------------


def test_request_sends_the_token_and_returns_json(stub, client):
    stub.on("GET", "/2/0/workspaces", ok({"workspaces": [{"id": "w"}]}))
    assert client.request("GET", "/workspaces") == {"workspaces": [{"id": "w"}]}
    (seen,) = stub.seen
    assert seen.headers["Authorization"] == "AnaplanAuthToken token-1"
    assert seen.headers["User-Agent"].startswith("target-anaplan")


def test_client_mounts_a_pool_large_enough_for_parallel_drains(client):
    adapter = client.session.get_adapter("https://api.anaplan.com/2/0")
    assert adapter._pool_maxsize >= 16


@pytest.mark.parametrize(
    ("status", "kind", "wording"),
    [
        (404, NotFoundError, "not found"),
        (422, ModelUnavailableError, "archived"),
        (423, ModelUnavailableError, "locked"),
        (424, ModelUnavailableError, "offline"),
        (403, ApiError, "permission denied"),
        (400, ApiError, "Identified an unrecognized 'x'"),
    ],
)
def test_terminal_statuses_map_to_errors_and_are_not_retried(stub, client, status, kind, wording):
    stub.on("GET", "/2/0/models/M1", error(status, "Identified an unrecognized 'x'"))
    with pytest.raises(kind, match=wording) as caught:
        client.request("GET", "/models/M1", params={"limit": 1})
    message = str(caught.value)
    assert "GET /models/M1" in message
    assert "token-" not in message
    assert "limit" not in message
    assert len(stub.seen) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504, 409])
def test_transient_statuses_are_retried(stub, client, status):
    stub.on("GET", "/2/0/models", error(status), error(status), ok({"models": []}))
    assert client.request("GET", "/models") == {"models": []}
    assert len(stub.seen) == 3


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [("3", 3.0), (format_datetime(datetime(2001, 1, 1, tzinfo=timezone.utc), usegmt=True), 0.0)],
)
def test_429_carries_retry_after_to_the_retry_policy(stub, client, retry_after, expected):
    stub.on("GET", "/2/0/models", error(429, "slow down", {"Retry-After": retry_after}))
    with pytest.raises(TransientError, match="rate limiting") as caught:
        client.request("GET", "/models", retry=False)
    assert caught.value.retry_after_s == expected


def test_429_is_retried(stub, client):
    stub.on("GET", "/2/0/models", error(429, "slow down", {"Retry-After": "0"}), ok({"x": 1}))
    assert client.request("GET", "/models") == {"x": 1}
    assert len(stub.seen) == 2


def test_retries_run_out_with_a_transient_error_naming_the_call(stub, client):
    stub.on("GET", "/2/0/models", error(503, "maintenance"))
    with pytest.raises(TransientError, match=r"Gave up on GET /models after 4 attempt") as caught:
        client.request("GET", "/models")
    assert "maintenance" in str(caught.value)
    assert len(stub.seen) == 4


def test_retry_false_makes_a_single_attempt(stub, client):
    stub.on("POST", "/2/0/x/tasks", error(503))
    with pytest.raises(TransientError):
        client.request("POST", "/x/tasks", json={}, retry=False)
    assert len(stub.seen) == 1


def test_connection_refused_is_transient():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    policy = RetryPolicy(max_attempts=2, base_delay_s=0.001, max_delay_s=0.001)
    client = AnaplanClient(Hosts(url + "/2/0", url, url), CountingAuth(), retry=policy)
    client.reached = True  # Anaplan answered earlier in the run: a dropped host is a blip
    with pytest.raises(TransientError, match=f"could not connect to 127.0.0.1:{port}"):
        client.request("GET", "/workspaces")


def test_a_host_never_reached_fails_after_a_few_tries_naming_its_setting():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    hosts = resolve_hosts(api_base_url=url + "/2/0", auth_base_url=url, oauth_base_url=url)
    policy = RetryPolicy(max_attempts=8, base_delay_s=0.001, max_delay_s=0.001)
    client = AnaplanClient(hosts, CountingAuth(), retry=policy)
    with pytest.raises(HostUnreachableError, match=f"127.0.0.1:{port}.*api_base_url"):
        client.request("GET", "/workspaces")


def test_a_refused_token_is_renewed_and_the_call_replayed_once(stub):
    auth = CountingAuth()
    client = make_client(stub, auth)
    stub.on("GET", "/2/0/models", error(401), ok({"models": [1]}))
    assert client.request("GET", "/models") == {"models": [1]}
    assert [s.headers["Authorization"] for s in stub.seen] == [
        "AnaplanAuthToken token-1",
        "AnaplanAuthToken token-2",
    ]


def test_a_second_401_is_an_authentication_error_without_the_token(stub):
    client = make_client(stub)
    stub.on("GET", "/2/0/models", error(401))
    with pytest.raises(AuthenticationError) as caught:
        client.request("GET", "/models")
    assert len(stub.seen) == 2
    assert "token-" not in str(caught.value)
    assert "GET /models" in str(caught.value)


def test_list_all_pages_by_total_size(stub, client):
    items = [{"id": str(i)} for i in range(5)]

    def page(seen: Seen) -> Reply:
        offset = int(seen.query["offset"][0])
        assert seen.query["limit"] == ["5000"]
        paging = {"totalSize": 5, "offset": offset, "currentPageSize": 2}
        return ok({"meta": {"paging": paging}, "files": items[offset : offset + 2]})

    stub.on("GET", f"{BASE}/files", page)
    assert client.list_all("/workspaces/ws1/models/M1/files", "files") == items
    assert [s.query["offset"] for s in stub.seen] == [["0"], ["2"], ["4"]]


def test_list_all_treats_a_missing_key_as_empty(stub, client):
    stub.on("GET", f"{BASE}/files/113/chunks", ok({"meta": {"paging": {"totalSize": 0}}}))
    assert client.list_all("/workspaces/ws1/models/M1/files/113/chunks", "chunks") == []


# --- basic auth --------------------------------------------------------------------------


def token_body(value: str, expires_ms: int) -> dict:
    return {
        "status": "SUCCESS",
        "statusMessage": "Login successful",
        "tokenInfo": {"tokenValue": value, "expiresAt": expires_ms, "tokenId": "t"},
    }


def test_basic_auth_logs_in_with_a_basic_header_and_accepts_201(stub):
    stub.on("POST", "/token/authenticate", ok(token_body("tok.+/=", 1_700_000_000_000), 201))
    auth = BasicAuth(
        requests.Session(), stub.url + "/", "ann@example.com", "s3cret", clock=lambda: 0
    )
    assert auth.header() == "AnaplanAuthToken tok.+/="
    expected = base64.b64encode(b"ann@example.com:s3cret").decode()
    assert stub.seen[0].headers["Authorization"] == f"Basic {expected}"
    assert auth._token.expires_at == 1_700_000_000.0


def test_basic_auth_refusal_names_the_user_not_the_password(stub):
    stub.on("POST", "/token/authenticate", (401, {"status": "FAILURE_BAD_CREDENTIAL"}))
    auth = BasicAuth(requests.Session(), stub.url, "ann@example.com", "s3cret")
    with pytest.raises(AuthenticationError, match=re.escape("ann@example.com")) as caught:
        auth.header()
    assert "s3cret" not in str(caught.value)


def test_basic_auth_refreshes_near_expiry_and_logs_in_again_when_refused(stub):
    now = [1000.0]
    stub.on("POST", "/token/authenticate", ok(token_body("first", 1_100_000), 201))
    stub.on("POST", "/token/refresh", ok(token_body("first", 5_000_000)))
    auth = BasicAuth(requests.Session(), stub.url, "ann", "pw", clock=lambda: now[0])
    auth.header()
    now[0] = 1050.0  # 50 s before expiry: inside the renewal margin
    assert auth.header() == "AnaplanAuthToken first"
    refresh = stub.calls("POST", "/token/refresh")
    assert refresh[0].headers["Authorization"] == "AnaplanAuthToken first"
    assert auth._token.expires_at == 5000.0

    stub.on("POST", "/token/refresh", (401, {"status": "FAILURE"}))
    stub.on("POST", "/token/authenticate", ok(token_body("second", 9_000_000), 201))
    now[0] = 4990.0
    assert auth.header() == "AnaplanAuthToken second"
    assert len(stub.calls("POST", "/token/authenticate")) == 2


def test_basic_auth_keeps_a_valid_token_when_the_refresh_service_is_down(stub):
    stub.on("POST", "/token/authenticate", ok(token_body("first", 1_200_000), 201))
    stub.on("POST", "/token/refresh", error(503))
    auth = BasicAuth(requests.Session(), stub.url, "ann", "pw", clock=lambda: 1000.0)
    auth.header()
    assert auth.header() == "AnaplanAuthToken first"  # 200 s left: due for renewal, still valid
    assert len(stub.calls("POST", "/token/refresh")) == 1


# --- upload -------------------------------------------------------------------------------


def chunk_file_route(stub: Stub, file_id: str = "113000000000") -> None:
    stub.on("POST", f"{BASE}/files/{file_id}", ok({"file": {"id": file_id, "name": "d.csv"}}))
    stub.on("PUT", f"{BASE}/files/{file_id}/chunks/\\d+", (204, None))

    def complete(seen: Seen) -> Reply:
        count = json.loads(seen.body)["chunkCount"]
        return ok({"file": {"id": file_id, "name": "d.csv", "chunkCount": count}})

    stub.on("POST", f"{BASE}/files/{file_id}/complete", complete)


def test_upload_puts_gzipped_chunks_in_order_then_completes(stub, client):
    chunk_file_route(stub)
    stats = upload_file(client, MODEL, "113000000000", [b"a,b\n", b"1,2\n", b"3,4\n"])
    assert stats.chunks == 3
    assert stats.raw_bytes == 12
    puts = stub.calls("PUT", f"{BASE}/files/113000000000/chunks/\\d+")
    assert [p.path.rsplit("/", 1)[1] for p in puts] == ["0", "1", "2"]
    assert [gzip.decompress(p.body) for p in puts] == [b"a,b\n", b"1,2\n", b"3,4\n"]
    assert {p.headers["Content-Type"] for p in puts} == {"application/x-gzip"}
    assert stats.sent_bytes == sum(len(p.body) for p in puts)
    (announce,) = stub.calls("POST", f"{BASE}/files/113000000000")
    assert json.loads(announce.body) == {"chunkCount": -1}
    (done,) = stub.calls("POST", f"{BASE}/files/113000000000/complete")
    assert json.loads(done.body) == {"id": "113000000000", "name": "d.csv", "chunkCount": 3}


def test_upload_refuses_when_anaplan_would_create_a_new_file(stub, client):
    stub.on("POST", f"{BASE}/files/orders", ok({"file": {"id": "113000000099", "name": "orders"}}))
    with pytest.raises(AnaplanError, match="refusing to create a new file"):
        upload_file(client, MODEL, "orders", [b"x"])
    assert not stub.calls("PUT", f"{BASE}/files/.*")


def test_upload_of_nothing_sends_one_empty_chunk(stub, client):
    chunk_file_route(stub)
    assert upload_file(client, MODEL, "113000000000", []).chunks == 1


def test_upload_stops_at_anaplans_chunk_limit(stub, client, monkeypatch):
    monkeypatch.setattr(upload_module, "MAX_CHUNKS", 2)
    chunk_file_route(stub)
    with pytest.raises(AnaplanError, match="more than Anaplan's 2 chunks"):
        upload_file(client, MODEL, "113000000000", [b"a", b"b", b"c"])
    assert len(stub.calls("PUT", f"{BASE}/.*")) == 2


def test_failed_upload_restarts_once_from_chunk_zero(stub, client):
    chunk_file_route(stub)
    # Chunk 1 fails every retry of the first pass, then works.
    stub.on("PUT", f"{BASE}/files/113000000000/chunks/1", *[error(503)] * 4, (204, None))
    stats = upload_file(client, MODEL, "113000000000", lambda: iter([b"a\n", b"b\n", b"c\n"]))
    assert stats.chunks == 3
    assert len(stub.calls("POST", f"{BASE}/files/113000000000")) == 2
    puts = [p.path.rsplit("/", 1)[1] for p in stub.calls("PUT", f"{BASE}/.*")]
    assert puts == ["0", "1", "1", "1", "1", "0", "1", "2"]


def test_a_refused_chunk_is_neither_retried_nor_restarted(stub, client):
    chunk_file_route(stub)
    stub.on("PUT", f"{BASE}/files/113000000000/chunks/1", error(403, "No write access"))
    with pytest.raises(ApiError, match=r"permission denied.*No write access"):
        upload_file(client, MODEL, "113000000000", lambda: iter([b"a\n", b"b\n", b"c\n"]))
    puts = [p.path.rsplit("/", 1)[1] for p in stub.calls("PUT", f"{BASE}/.*")]
    assert puts == ["0", "1"]
    assert len(stub.calls("POST", f"{BASE}/files/113000000000")) == 1
    assert not stub.calls("POST", f"{BASE}/files/113000000000/complete")


def test_an_upload_anaplan_no_longer_holds_starts_again(stub, client):
    chunk_file_route(stub)
    stub.on("PUT", f"{BASE}/files/113000000000/chunks/1", error(404), (204, None))
    stats = upload_file(client, MODEL, "113000000000", lambda: iter([b"a\n", b"b\n"]))
    assert stats.chunks == 2
    assert len(stub.calls("POST", f"{BASE}/files/113000000000")) == 2


def test_upload_from_a_generator_cannot_restart(stub, client):
    chunk_file_route(stub)
    stub.on("PUT", f"{BASE}/files/113000000000/chunks/0", error(503))
    with pytest.raises(TransientError, match="Gave up on PUT"):
        upload_file(client, MODEL, "113000000000", (c for c in [b"a\n"]))
    assert len(stub.calls("POST", f"{BASE}/files/113000000000")) == 1


class Clock:
    """time.monotonic and time.sleep for the code under test: time moves only when it sleeps
    (or when a scripted reply says the call took long), so deadlines are exact."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(time, "monotonic", fake.monotonic)
    monkeypatch.setattr(time, "sleep", fake.sleep)
    monkeypatch.setattr(retry_module, "jitter", lambda ceiling: ceiling)  # waits exactly 2 s
    return fake


# Every retry waits 2 s; one call gets 4 attempts; an upload's deadline is 10 s.
TWO_SECONDS = RetryPolicy(max_attempts=4, base_delay_s=2, max_delay_s=2, deadline_s=10)


def test_a_restart_retries_only_within_what_is_left_of_the_uploads_deadline(stub, clock):
    client = make_client(stub, policy=TWO_SECONDS)
    chunk_file_route(stub)
    # First pass: chunk 1 fails 4 times (6 s of waits, 4 s left). The second pass's chunk 1
    # would succeed on its 4th attempt, 6 s after the restart: past the upload's deadline.
    stub.on("PUT", f"{BASE}/files/113000000000/chunks/1", *[error(503)] * 7, (204, None))
    with pytest.raises(TransientError, match=r"Gave up on PUT .*chunks/1 after 3 attempt\(s\)"):
        upload_file(client, MODEL, "113000000000", lambda: iter([b"a\n", b"b\n", b"c\n"]))
    assert len(stub.calls("POST", f"{BASE}/files/113000000000")) == 2  # it did restart
    puts = [p.path.rsplit("/", 1)[1] for p in stub.calls("PUT", f"{BASE}/.*")]
    assert puts == ["0", "1", "1", "1", "1", "0", "1", "1", "1"]
    assert not stub.calls("POST", f"{BASE}/files/113000000000/complete")
    assert clock.now == 1010  # no wait went past the deadline


def test_no_restart_once_the_uploads_deadline_has_passed(stub, clock):
    client = make_client(stub, policy=TWO_SECONDS)
    chunk_file_route(stub)

    def slow(seen: Seen) -> Reply:
        clock.now += 9  # a slow chunk: the upload's deadline passes during chunk 1's retries
        return (204, None)

    stub.on("PUT", f"{BASE}/files/113000000000/chunks/0", slow)
    stub.on("PUT", f"{BASE}/files/113000000000/chunks/1", error(503))
    with pytest.raises(TransientError, match=r"Gave up on PUT .*chunks/1 after 4 attempt\(s\)"):
        upload_file(client, MODEL, "113000000000", lambda: iter([b"a\n", b"b\n", b"c\n"]))
    assert len(stub.calls("POST", f"{BASE}/files/113000000000")) == 1
    puts = [p.path.rsplit("/", 1)[1] for p in stub.calls("PUT", f"{BASE}/.*")]
    assert puts == ["0", "1", "1", "1", "1"]
    assert not stub.calls("POST", f"{BASE}/files/113000000000/complete")


# --- tasks --------------------------------------------------------------------------------

IMPORT = ActionRef("imports", "112000000000", "Load data")
TASKS = f"{BASE}/imports/112000000000/tasks"


def task(state: str, successful: bool = True, tid: str = "T1", **result) -> dict:
    body = {"taskId": tid, "taskState": state, "creationTime": int(time.time() * 1000)}
    if state in ("COMPLETE", "CANCELLED"):
        body["result"] = {"successful": successful, "details": [], **result}
    return {"task": body}


def no_sleep(seconds: float) -> None:
    pass


def no_earlier_tasks(stub) -> None:
    """The action's task list, read before each start to recognise a task of ours later."""
    stub.on("GET", TASKS, ok({}))


def test_run_actions_starts_polls_and_returns_the_outcome(stub, client):
    no_earlier_tasks(stub)
    stub.on("POST", TASKS, ok(task("NOT_STARTED")))
    stub.on("GET", f"{TASKS}/T1", ok(task("IN_PROGRESS")), ok(task("COMPLETE")))
    (outcome,) = run_actions(client, MODEL, [IMPORT], poll_interval_s=0.01, sleep=no_sleep)
    assert outcome.successful
    assert outcome.task_id == "T1"
    assert json.loads(stub.calls("POST", TASKS)[0].body) == {"localeName": "en_US"}


def test_an_ambiguous_start_failure_adopts_the_task_instead_of_posting_again(stub, client):
    stub.on("POST", TASKS, error(503))
    stub.on("GET", TASKS, ok({}), ok({"tasks": [task("IN_PROGRESS", tid="ADOPTED")["task"]]}))
    stub.on("GET", f"{TASKS}/ADOPTED", ok(task("COMPLETE", tid="ADOPTED")))
    (outcome,) = run_actions(client, MODEL, [IMPORT], sleep=no_sleep)
    assert outcome.task_id == "ADOPTED"
    assert len(stub.calls("POST", TASKS)) == 1


def test_earlier_tasks_are_not_adopted_however_recent(stub, client):
    # The previous commit's task, created a moment ago, is not the one this start made.
    old = task("COMPLETE", tid="OLD")["task"]
    stub.on("POST", TASKS, error(502), ok(task("NOT_STARTED", tid="NEW")))
    stub.on("GET", TASKS, ok({"tasks": [old]}))
    stub.on("GET", f"{TASKS}/NEW", ok(task("COMPLETE", tid="NEW")))
    (outcome,) = run_actions(client, MODEL, [IMPORT], sleep=no_sleep)
    assert outcome.task_id == "NEW"
    assert len(stub.calls("POST", TASKS)) == 2


def test_a_failed_import_raises_with_anaplan_messages(stub, client):
    no_earlier_tasks(stub)
    failed = task(
        "COMPLETE",
        successful=False,
        failureDumpAvailable=True,
        details=[{"localMessageText": "Products: 0 (0/2) rows successful, 2 failed", "values": []}],
    )
    stub.on("POST", TASKS, ok(task("NOT_STARTED")))
    stub.on("GET", f"{TASKS}/T1", ok(failed))
    with pytest.raises(ActionFailedError, match=r"Import 'Load data'.*2 failed") as caught:
        run_actions(client, MODEL, [IMPORT], sleep=no_sleep)
    assert caught.value.outcomes[0].failure_dump_available


def test_a_cancelled_task_is_a_failure(stub, client):
    no_earlier_tasks(stub)
    stub.on("POST", TASKS, ok(task("NOT_STARTED")))
    stub.on("GET", f"{TASKS}/T1", ok(task("CANCELLING")), ok(task("CANCELLED")))
    with pytest.raises(ActionFailedError, match="cancelled"):
        run_actions(client, MODEL, [IMPORT], sleep=no_sleep)
    assert len(stub.calls("GET", f"{TASKS}/T1")) == 2


def test_a_queued_task_waits_for_the_model_lock_then_times_out_and_is_cancelled(
    stub, client, caplog
):
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    no_earlier_tasks(stub)
    stub.on("POST", TASKS, ok(task("NOT_STARTED")))
    stub.on("GET", f"{TASKS}/T1", ok(task("NOT_STARTED")))
    stub.on("DELETE", f"{TASKS}/T1", ok(task("CANCELLING")))
    caplog.set_level(logging.INFO, logger="target_anaplan.anaplan.tasks")
    with pytest.raises(ActionFailedError, match="did not finish within 300 s"):
        run_actions(
            client,
            MODEL,
            [IMPORT],
            poll_interval_s=5,
            timeout_s=300,
            sleep=sleep,
            clock=lambda: now[0],
        )
    assert len(stub.calls("DELETE", f"{TASKS}/T1")) == 1
    waits = [r for r in caplog.records if "waiting for the model lock" in r.getMessage()]
    assert 9 <= len(waits) <= 10  # one line every 30 s over 300 s


def test_the_lock_wait_log_says_what_the_model_status_reports(stub, client, caplog):
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    no_earlier_tasks(stub)
    busy = {"requestStatus": {"currentStep": "Processing ...", "taskId": "OTHER"}}
    stub.on("GET", "/2/0/models/M1/status", ok(busy))
    stub.on("POST", TASKS, ok(task("NOT_STARTED")))
    stub.on("GET", f"{TASKS}/T1", *[ok(task("NOT_STARTED"))] * 3, ok(task("COMPLETE")))
    caplog.set_level(logging.INFO, logger="target_anaplan.anaplan.tasks")
    run_actions(client, MODEL, [IMPORT], poll_interval_s=60, sleep=sleep, clock=lambda: now[0])
    assert "model status: Processing ... task OTHER" in caplog.text


def test_an_interrupt_while_waiting_cancels_the_running_task(stub, client):
    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    no_earlier_tasks(stub)
    stub.on("POST", TASKS, ok(task("NOT_STARTED")))
    stub.on("GET", f"{TASKS}/T1", ok(task("IN_PROGRESS")))
    stub.on("DELETE", f"{TASKS}/T1", ok(task("CANCELLING")))
    with pytest.raises(KeyboardInterrupt):
        run_actions(client, MODEL, [IMPORT], sleep=interrupt)
    assert len(stub.calls("DELETE", f"{TASKS}/T1")) == 1


def test_a_failed_start_cancels_the_tasks_already_started_for_the_commit(stub, client):
    process = ActionRef("processes", "118000000000", "Proc")
    no_earlier_tasks(stub)
    stub.on("GET", f"{BASE}/processes/118000000000/tasks", ok({}))
    stub.on("POST", TASKS, ok(task("NOT_STARTED")))
    stub.on("POST", f"{BASE}/processes/118000000000/tasks", error(400))
    stub.on("DELETE", f"{TASKS}/T1", ok(task("CANCELLING")))
    with pytest.raises(ApiError):
        run_actions(client, MODEL, [IMPORT, process], sleep=no_sleep)
    assert len(stub.calls("DELETE", f"{TASKS}/T1")) == 1


def test_a_signal_handler_can_cancel_the_tasks_being_waited_for(stub, client):
    def handler(seconds: float) -> None:
        assert cancel_running_tasks(client) == 1
        raise SystemExit(1)

    no_earlier_tasks(stub)
    stub.on("POST", TASKS, ok(task("NOT_STARTED")))
    stub.on("GET", f"{TASKS}/T1", ok(task("IN_PROGRESS")))
    stub.on("DELETE", f"{TASKS}/T1", ok(task("CANCELLING")))
    with pytest.raises(SystemExit):
        run_actions(client, MODEL, [IMPORT], sleep=handler)
    assert cancel_running_tasks(client) == 0


def test_sequential_runs_stop_at_the_first_failure(stub, client):
    no_earlier_tasks(stub)
    second = ActionRef("processes", "118000000000", "Proc")
    stub.on("POST", TASKS, ok(task("NOT_STARTED")))
    stub.on("GET", f"{TASKS}/T1", ok(task("COMPLETE", successful=False)))
    with pytest.raises(ActionFailedError):
        run_actions(client, MODEL, [IMPORT, second], parallel=False, sleep=no_sleep)
    assert not stub.calls("POST", f"{BASE}/processes/.*")


# --- dumps --------------------------------------------------------------------------------

DUMP = (
    b'"_Status_","Code","_Line_","_Error_1_"\n'
    b'"E","A","2","Invalid name: Code"\n'
    b'"E","B","3","Invalid name: Code"\n'
    b'"W","C","4","Invalid parent"\n'
)


def test_download_dump_streams_chunks_to_a_private_file(stub, client, tmp_path):
    dump = f"{TASKS}/T1/dump"
    stub.on("GET", f"{dump}/chunks", ok({"chunks": [{"id": "0"}, {"id": "1"}]}))
    stub.on("GET", f"{dump}/chunks/0", (200, DUMP[:40]))
    stub.on("GET", f"{dump}/chunks/1", error(503), (200, DUMP[40:]))
    outcome = TaskOutcome(IMPORT, "T1", "COMPLETE", True, failure_dump_available=True)
    (path,) = download_dump(client, MODEL, outcome, tmp_path / "dumps")
    assert path.read_bytes() == DUMP
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert summarize_dump(path) == [("Invalid name: Code", 2), ("Invalid parent", 1)]
    assert summarize_dump(path, top=1) == [("Invalid name: Code", 2)]


def test_process_dumps_are_fetched_per_nested_import(stub, client, tmp_path):
    process = ActionRef("processes", "118000000000", "Proc")
    step = TaskOutcome(ActionRef("imports", "112000000001", "s"), "P1", "COMPLETE", False, True)
    outcome = TaskOutcome(process, "P1", "COMPLETE", False, True, nested=(step,))
    dumps = f"{BASE}/processes/118000000000/tasks/P1/dumps/112000000001"
    stub.on("GET", f"{dumps}/chunks", ok({"chunks": [{"id": "0"}]}))
    stub.on("GET", f"{dumps}/chunks/0", (200, DUMP))
    (path,) = download_dump(client, MODEL, outcome, tmp_path)
    assert path.read_bytes() == DUMP


def test_a_dump_that_is_gone_gives_no_files_and_a_warning(stub, client, tmp_path, caplog):
    stub.on("GET", f"{TASKS}/T1/dump/chunks", error(404))
    outcome = TaskOutcome(IMPORT, "T1", "COMPLETE", True, failure_dump_available=True)
    assert download_dump(client, MODEL, outcome, tmp_path) == []
    assert list(tmp_path.iterdir()) == []
    assert "No failure dump" in caplog.text
