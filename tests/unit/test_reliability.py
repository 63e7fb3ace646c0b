"""Transport failures (untrusted TLS, Retry-After on auth, no secrets in errors); file locks."""

from __future__ import annotations

import stat

import pytest
import requests

from target_anaplan.anaplan.auth import Token, TokenAuth, post_token_service
from target_anaplan.anaplan.client import AnaplanClient
from target_anaplan.anaplan.errors import AnaplanError, TransientError
from target_anaplan.anaplan.regions import Hosts
from target_anaplan.anaplan.retry import RetryPolicy
from target_anaplan.file_lock import FileLockTimeoutError, machine_lock

SECRET = "tok-3f9a-secret"
HOST = "https://api.example.invalid/2/0"
UNTRUSTED = (
    "HTTPSConnectionPool(host='api.example.invalid', port=443): Max retries exceeded with url: "
    "/2/0/workspaces (Caused by SSLError(SSLCertVerificationError(1, '[SSL: "
    "CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate')))"
)


class FixedAuth(TokenAuth):
    def _obtain(self) -> Token:
        return Token(SECRET, 4_000_000_000)


class FailingSession(requests.Session):
    """Raises ``error`` from every request, after counting it."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error
        self.calls = 0

    def request(self, *args, **kwargs):  # type: ignore[override]
        self.calls += 1
        raise self.error


def client_with(session: requests.Session) -> AnaplanClient:
    policy = RetryPolicy(max_attempts=3, base_delay_s=0, deadline_s=5)
    return AnaplanClient(Hosts(HOST, HOST, HOST), FixedAuth(), retry=policy, session=session)


def test_an_untrusted_certificate_fails_at_once_and_names_ca_bundle():
    session = FailingSession(requests.exceptions.SSLError(UNTRUSTED))
    with pytest.raises(AnaplanError) as caught:
        client_with(session).request("GET", "/workspaces")
    assert not isinstance(caught.value, TransientError)
    assert "ca_bundle" in str(caught.value)
    assert session.calls == 1


def test_an_untrusted_certificate_on_the_auth_host_fails_at_once():
    session = FailingSession(requests.exceptions.SSLError(UNTRUSTED))
    with pytest.raises(AnaplanError, match="ca_bundle") as caught:
        post_token_service(session, f"{HOST}/token/authenticate", headers={}, timeout_s=1)
    assert not isinstance(caught.value, TransientError)


def test_other_tls_failures_stay_transient():
    session = FailingSession(requests.exceptions.SSLError("EOF occurred in violation of protocol"))
    with pytest.raises(TransientError, match="Gave up"):
        client_with(session).request("GET", "/workspaces")
    assert session.calls == 3


def test_errors_from_requests_carry_neither_the_token_nor_the_url():
    request = requests.Request("GET", f"{HOST}/workspaces?secret=1", headers={"X": SECRET})
    error = requests.ConnectionError(f"{request.url} {SECRET}", request=request.prepare())
    with pytest.raises(TransientError) as caught:
        client_with(FailingSession(error)).request("GET", "/workspaces")
    message = str(caught.value)
    assert SECRET not in message
    assert "example.invalid" not in message
    assert "GET /workspaces" in message


class RateLimitedSession(requests.Session):
    def post(self, url, **kwargs):  # type: ignore[override]
        response = requests.Response()
        response.status_code = 429
        response.headers["Retry-After"] = "7"
        response._content = b"{}"
        return response


def test_the_auth_host_retry_after_is_honoured():
    with pytest.raises(TransientError) as caught:
        post_token_service(
            RateLimitedSession(), f"{HOST}/token/authenticate", headers={}, timeout_s=1
        )
    assert caught.value.retry_after_s == 7


def test_a_file_held_by_another_run_times_out_with_a_clear_message(tmp_path):
    with machine_lock(tmp_path, "M1", "113", what="file 'a.csv'", timeout_s=5):
        # A second open file description conflicts like another process would.
        with (
            pytest.raises(FileLockTimeoutError, match=r"file 'a\.csv'"),
            machine_lock(tmp_path, "M1", "113", what="file 'a.csv'", timeout_s=0),
        ):
            pass
        with machine_lock(tmp_path, "M1", "114", what="another file", timeout_s=0):
            pass
    lock = tmp_path / "M1-113.lock"
    assert stat.S_IMODE(lock.stat().st_mode) == 0o600


def test_an_unusable_lock_directory_only_warns(tmp_path, caplog):
    blocked = tmp_path / "file"
    blocked.write_text("")
    with machine_lock(blocked / "locks", "M1", "113", what="f", timeout_s=0):
        pass
    assert "Cannot use lock directory" in caplog.text
