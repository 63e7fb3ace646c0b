"""HTTP calls to the Integration API: auth header, status mapping, retries, paging.

Every response is turned into a value or into one error of the taxonomy in
``errors.py``; callers never see a raw ``requests`` response or exception.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib import metadata
from typing import IO, Any, TypeVar

import requests
from requests.adapters import HTTPAdapter

from target_anaplan.anaplan.auth import TokenAuth
from target_anaplan.anaplan.errors import (
    ApiError,
    AuthenticationError,
    HostUnreachableError,
    UnreachableError,
    host_and_port,
    network_error,
    response_error,
)
from target_anaplan.anaplan.regions import Hosts
from target_anaplan.anaplan.retry import RetryPolicy, call_with_retry
from target_anaplan.anaplan.tasks import RunningTasks

logger = logging.getLogger(__name__)

T = TypeVar("T")

PAGE_SIZE = 5000
POOL_SIZE = 16
# Until Anaplan has answered once in a run, a host that cannot be reached most likely comes
# from a wrong setting: a few quick tries, then a clear error (within about 15 s).
FIRST_CONTACT_TRIES = 3


def _user_agent() -> str:
    try:
        return f"target-anaplan/{metadata.version('target-anaplan')}"
    except metadata.PackageNotFoundError:
        return "target-anaplan"


_USER_AGENT = _user_agent()


def new_session() -> requests.Session:
    """A session whose connection pool fits the SDK's parallel sink drains."""
    session = requests.Session()
    _mount_pool(session)
    return session


def _mount_pool(session: requests.Session) -> None:
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=POOL_SIZE)
    session.mount("https://", adapter)
    session.mount("http://", adapter)


class AnaplanClient:
    """Thread-safe caller of the Integration API below ``hosts.api_base_url``."""

    def __init__(
        self,
        hosts: Hosts,
        auth: TokenAuth,
        *,
        retry: RetryPolicy | None = None,
        timeout_s: float = 300,
        connect_timeout_s: float = 5,
        session: requests.Session | None = None,
    ) -> None:
        self.hosts = hosts
        self.auth = auth
        self.retry_policy = retry or RetryPolicy()
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.reached = False  # whether any Anaplan host has answered in this run
        self.session = session if session is not None else requests.Session()
        _mount_pool(self.session)
        # Tasks started and not yet seen finished: a signal handler cancels them.
        self.running_tasks = RunningTasks()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        retry: bool = True,
        retry_until: float | None = None,
        expect_json: bool = True,
    ) -> Any:
        """Call ``path`` (relative to the API root); JSON body as a dict, else the raw bytes.

        ``retry=False`` makes exactly one attempt, for calls that must not be repeated
        blindly (starting a task). ``retry_until`` (a ``time.monotonic()`` instant) ends the
        retries then instead of a fresh deadline: the caller's effort began earlier.
        """
        describe = f"{method} {path}"

        def attempt() -> Any:
            response = self._send(
                method, path, params=params, json=json, data=data, headers=headers
            )
            return _read_body(response, describe, expect_json=expect_json)

        return self._attempts(attempt, describe, retry=retry, until=retry_until)

    def download(self, path: str, dest: IO[bytes]) -> int:
        """Stream a binary body into ``dest``; a retried attempt rewinds what it wrote."""
        describe = f"GET {path}"
        start = dest.tell()

        def attempt() -> int:
            dest.seek(start)
            dest.truncate()
            response = self._send("GET", path, stream=True)
            with response:
                _raise_for_status(response, describe)
                written = 0
                try:
                    for block in response.iter_content(chunk_size=1 << 20):
                        dest.write(block)
                        written += len(block)
                except requests.RequestException as error:
                    raise network_error(error, f"{describe} (during the download)") from error
                return written

        return self._attempts(attempt, describe, retry=True)

    def list_all(
        self, path: str, key: str, *, params: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Every item of a paged list; a missing ``key`` means an empty list."""
        items: list[dict[str, Any]] = []
        while True:
            page_params = {**(params or {}), "limit": PAGE_SIZE, "offset": len(items)}
            body = self.request("GET", path, params=page_params)
            page = body.get(key) or []
            items.extend(page)
            total = ((body.get("meta") or {}).get("paging") or {}).get("totalSize")
            if not page or not isinstance(total, int) or len(items) >= total:
                return items

    def close(self) -> None:
        """Release pooled connections."""
        self.session.close()

    def _attempts(
        self, attempt: Callable[[], T], describe: str, *, retry: bool, until: float | None = None
    ) -> T:
        if not retry:
            return attempt()
        unreachable = 0

        def guarded() -> T:
            nonlocal unreachable
            try:
                return attempt()
            except UnreachableError as error:
                unreachable += 1
                if not self.reached and unreachable >= FIRST_CONTACT_TRIES:
                    raise self._unreachable(error) from error
                raise

        return call_with_retry(guarded, self.retry_policy, describe=describe, until=until)

    def _unreachable(self, error: UnreachableError) -> HostUnreachableError:
        setting = self.hosts.origin(error.url)
        fix = (
            f"Check `{setting}`"
            if not setting.startswith("region")
            else f"Check `region` ({setting.removeprefix('region ')}), or set the base URL,"
        )
        return HostUnreachableError(
            f"Cannot reach Anaplan at {host_and_port(error.url)} ({error.reason}), the host "
            f"chosen by {setting}. {fix} and that this machine can reach the host (proxy, "
            "firewall)."
        )

    def timeout(self) -> tuple[float, float]:
        """Seconds to connect, and to wait for an answer (busy models answer slowly)."""
        return self.connect_timeout_s, self.timeout_s

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One call, replayed once with a fresh token if the token was refused."""
        header = self.auth.header()
        response = self._transport(method, path, header, **kwargs)
        if response.status_code != 401:
            return response
        response.close()
        logger.info("Anaplan refused the access token on %s %s; renewing it", method, path)
        self.auth.invalidate(header)
        response = self._transport(method, path, self.auth.header(), **kwargs)
        if response.status_code == 401:
            response.close()
            raise AuthenticationError(
                f"{method} {path}: Anaplan refused a freshly issued token (HTTP 401). Check the "
                "user's access to this workspace and model, and that auth and API hosts are "
                "in the same region."
            )
        return response

    def _transport(
        self,
        method: str,
        path: str,
        auth_header: str,
        *,
        headers: dict[str, str] | None = None,
        stream: bool = False,
        **kwargs: Any,
    ) -> requests.Response:
        url = f"{self.hosts.api_base_url}{path}"
        all_headers = {"User-Agent": _USER_AGENT, "Authorization": auth_header, **(headers or {})}
        try:
            response = self.session.request(
                method, url, headers=all_headers, timeout=self.timeout(), stream=stream, **kwargs
            )
        except requests.RequestException as error:
            raise network_error(
                error, f"{method} {path}", timeout_s=self.timeout_s, url=url
            ) from error
        self.reached = True
        return response


def _read_body(response: requests.Response, describe: str, *, expect_json: bool) -> Any:
    _raise_for_status(response, describe)
    if not expect_json:
        return response.content
    if not response.content:
        return {}
    try:
        return response.json()
    except ValueError as error:
        raise ApiError(
            f"{describe}: Anaplan answered {response.status_code} with a body that is not JSON",
            status=response.status_code,
        ) from error


def _raise_for_status(response: requests.Response, describe: str) -> None:
    error = response_error(response, describe)
    if error is not None:
        raise error
