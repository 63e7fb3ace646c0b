"""The Simulator: one loopback HTTP server for the auth, OAuth, Integration and control APIs.

Requests are handled one at a time under the state lock (ThreadingHTTPServer only keeps slow
clients from blocking each other's sockets), which keeps every test run deterministic.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Iterator, Mapping
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from target_anaplan.simulator.auth import AuthService
from target_anaplan.simulator.control import Control
from target_anaplan.simulator.faults import HttpFault
from target_anaplan.simulator.routes import Api
from target_anaplan.simulator.scenario import load_scenario
from target_anaplan.simulator.state import Clock, SimState
from target_anaplan.simulator.tasks import TaskRunner
from target_anaplan.simulator.tweaks import ProcessTweaks
from target_anaplan.simulator.wire import (
    REASONS,
    ApiError,
    Request,
    Response,
    error_response,
)

logger = logging.getLogger("target_anaplan.simulator")
HOST = "127.0.0.1"
API_PREFIX = "/2/0"
CONTROL_PREFIX = "/__sim__"


class Simulator(Control):
    """A fake Anaplan on 127.0.0.1; the control methods are inherited from Control."""

    def __init__(
        self,
        scenario: dict[str, Any] | str | Path | None = None,
        *,
        port: int = 0,
    ) -> None:
        self.scenario = load_scenario(scenario)
        clock = Clock()
        state = SimState(self.scenario, clock)
        super().__init__(state, AuthService(self.scenario, clock))
        self.tweaks = ProcessTweaks()
        self.runner = TaskRunner(state, self.tweaks)
        self.api = Api(state, self.runner)
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (after start())."""
        if self._server is None:
            raise RuntimeError("the simulator is not started")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """Base URL of every API served, e.g. http://127.0.0.1:PORT."""
        return f"http://{HOST}:{self.port}"

    @property
    def page_url(self) -> str:
        """The page that shows people what the simulator holds."""
        return f"{self.url}{CONTROL_PREFIX}/"

    def start(self) -> Simulator:
        """Bind the port and serve in a daemon thread."""
        if self._server is not None:
            return self
        self._server = _Server((HOST, self._port), _Handler)
        self.tweaks.hold()
        self._server.sim = self
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"anaplan-simulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None
        self.tweaks.release()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def dispatch(self, req: Request) -> Response | None:
        """Answer one request; None means: drop the connection without answering."""
        if req.path == CONTROL_PREFIX or req.path.startswith(CONTROL_PREFIX + "/"):
            req.path = req.path[len(CONTROL_PREFIX) :]
            return self.handle_control(req)
        with self.state.lock:
            fault = self.state.faults.match_http(req.method, req.path)
            if fault is None:
                response = self._serve(req)
            elif fault.kind == "drop":
                response = None
            else:
                response = self._fault_response(fault, req)
            status = response.status if response else None
            self.state.log_request(req.method, req.path, req.raw_query, status)
            return response

    def _serve(self, req: Request) -> Response:
        now = self.state.clock()
        try:
            if req.path.startswith(API_PREFIX + "/"):
                return self._serve_api(req)
            answer = self.auth.handle(req)
        except ApiError as exc:
            return error_response(exc.status, str(exc), req.path, now)
        except Exception:
            logger.exception("simulator error on %s %s", req.method, req.path)
            return error_response(500, "Internal simulator error", req.path, now)
        return answer or error_response(404, "Not Found", req.path, now)

    def _serve_api(self, req: Request) -> Response:
        user = self.auth.authenticate_api(req.header("Authorization"))
        if user is None:
            raise ApiError(401, "Unauthorized: missing, invalid or expired token")
        api_req = Request(
            method=req.method,
            path=req.path[len(API_PREFIX) :],
            query=req.query,
            headers=req.headers,
            body=req.body,
            base_url=req.base_url,
            user=user,
        )
        self.state.expire()
        try:
            return self.api.handle(api_req)
        except ApiError as exc:
            return error_response(exc.status, str(exc), req.path, self.state.clock())

    def _fault_response(self, fault: HttpFault, req: Request) -> Response:
        status = fault.status or 500
        message = f"{REASONS.get(status, 'Error')} (simulated fault {fault.id})"
        response = error_response(status, message, req.path, self.state.clock())
        if fault.retry_after is not None:
            response.headers["Retry-After"] = str(fault.retry_after)
        return response


class _Headers(Mapping[str, str]):
    """http.server's header message as the case-insensitive, read-only mapping it acts as."""

    def __init__(self, message: Message) -> None:
        self._message = message

    def __getitem__(self, name: str) -> str:
        value = self._message.get(name)
        if value is None:
            raise KeyError(name)
        return str(value)

    def __iter__(self) -> Iterator[str]:
        return iter(self._message.keys())

    def __len__(self) -> int:
        return len(self._message)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    sim: Simulator

    def server_activate(self) -> None:
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().server_activate()

    def track(self, conn: socket.socket, open_: bool) -> None:
        """Remember keep-alive connections so stop() can end them."""
        with self.connections_lock:
            if open_:
                self.connections.add(conn)
            else:
                self.connections.discard(conn)

    def close_connections(self) -> None:
        """A stopped simulator must not keep answering on pooled client connections."""
        with self.connections_lock:
            for conn in self.connections:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            self.connections.clear()

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("connection error from %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    wbufsize = 1 << 16  # headers and body leave in one send; handle_one_request flushes
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        self.server.track(self.connection, False)
        with contextlib.suppress(OSError):
            super().finish()

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        body = self._read_body()
        target = urlsplit(self.path)
        req = Request(
            method=self.command,
            path=unquote(target.path),
            query=parse_qs(target.query, keep_blank_values=True),
            headers=_Headers(self.headers),
            body=body,
            base_url=self.server.sim.url,
            raw_query=target.query,
        )
        response = self.server.sim.dispatch(req)
        if response is None:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.status != 204:
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if response.body:
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.info("%s %s", self.address_string(), format % args)
