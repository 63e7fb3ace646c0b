"""The retry policy, driven by a fake clock and sleep (backoff's and the policy's)."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from email.utils import format_datetime

import pytest

from target_anaplan.anaplan import retry
from target_anaplan.anaplan.errors import ApiError, TransientError, parse_retry_after
from target_anaplan.anaplan.retry import RetryPolicy, call_with_retry


class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def failing(errors, result="ok"):
    """A callable raising each error in turn, then returning ``result``."""
    pending = list(errors)
    calls = []

    def fn():
        calls.append(1)
        if pending:
            raise pending.pop(0)
        return result

    fn.calls = calls
    return fn


@pytest.fixture
def fake_time(monkeypatch):
    """backoff sleeps with time.sleep and times with time.monotonic: both are faked."""
    fake = FakeTime()
    monkeypatch.setattr(time, "sleep", fake.sleep)
    monkeypatch.setattr(time, "monotonic", fake.clock)
    return fake


@pytest.fixture(autouse=True)
def no_jitter(monkeypatch):
    """Full jitter would pick a random wait; take the ceiling so waits are exact."""
    monkeypatch.setattr(retry, "jitter", lambda ceiling: ceiling)


def run(fn, fake_time, policy=None):
    return call_with_retry(fn, policy or RetryPolicy(), describe="GET /things")


def test_backoff_grows_exponentially_up_to_the_cap(fake_time):
    fn = failing([TransientError("503")] * 7)
    assert run(fn, fake_time, RetryPolicy(base_delay_s=1, max_delay_s=10, deadline_s=1000)) == "ok"
    assert fake_time.sleeps == [1, 2, 4, 8, 10, 10, 10]


def test_jitter_is_full_jitter_below_the_ceiling(monkeypatch):
    monkeypatch.undo()
    waits = [retry.jitter(4.0) for _ in range(200)]
    assert all(0 <= w <= 4.0 for w in waits)
    assert len(set(waits)) > 1


def test_retry_after_seconds_is_honoured(fake_time):
    fn = failing([TransientError("429", retry_after_s=7.0)])
    assert run(fn, fake_time) == "ok"
    assert fake_time.sleeps == [7.0]


def test_retry_after_http_date_is_parsed():
    when = datetime(2030, 1, 1, 12, 0, 30, tzinfo=timezone.utc)
    now = datetime(2030, 1, 1, 12, 0, 0, tzinfo=timezone.utc).timestamp()
    assert parse_retry_after(format_datetime(when, usegmt=True), now=lambda: now) == 30.0
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after("garbage") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT") == 0.0


def test_non_transient_errors_are_not_retried(fake_time):
    fn = failing([ApiError("bad request", status=400)])
    with pytest.raises(ApiError):
        run(fn, fake_time)
    assert len(fn.calls) == 1
    assert fake_time.sleeps == []


def test_attempts_run_out_with_a_message_naming_the_call(fake_time):
    fn = failing([TransientError("HTTP 503")] * 10)
    with pytest.raises(TransientError, match=r"Gave up on GET /things after 3 attempt\(s\)") as e:
        run(fn, fake_time, RetryPolicy(max_attempts=3))
    assert "HTTP 503" in str(e.value)
    assert len(fn.calls) == 3


def test_deadline_stops_retrying(fake_time):
    fn = failing([TransientError("503")] * 50)
    policy = RetryPolicy(max_attempts=50, base_delay_s=10, max_delay_s=10, deadline_s=35)
    with pytest.raises(TransientError, match="Gave up"):
        run(fn, fake_time, policy)
    assert sum(fake_time.sleeps) <= 35
    assert len(fn.calls) == 4


def test_until_replaces_the_policys_deadline(fake_time):
    """A caller whose effort began earlier (an upload's restart) keeps its own end."""
    fn = failing([TransientError("503")] * 50)
    policy = RetryPolicy(max_attempts=50, base_delay_s=10, max_delay_s=10, deadline_s=1000)
    with pytest.raises(TransientError, match="Gave up"):
        call_with_retry(fn, policy, describe="PUT /chunk", until=fake_time.now + 25)
    assert fake_time.sleeps == [10, 10]
    assert len(fn.calls) == 3


def test_retry_after_beyond_the_deadline_gives_up_at_once(fake_time):
    fn = failing([TransientError("429", retry_after_s=3600)])
    with pytest.raises(TransientError, match="after 1 attempt"):
        run(fn, fake_time)
    assert fake_time.sleeps == []
