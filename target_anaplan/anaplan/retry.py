"""The one retry decision for every Anaplan call.

Only ``TransientError`` is retried (429, 409 model busy, 5xx, dropped connections);
everything else is terminal. Waits grow exponentially with full jitter, a server's
``Retry-After`` wins, and a deadline bounds the whole effort.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TypeVar

from target_anaplan.anaplan.errors import TransientError

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: attempts, backoff bounds, and a deadline for all attempts together."""

    max_attempts: int = 8
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0
    deadline_s: float = 600.0

    def backoff_s(self, failures: int) -> float:
        """The backoff ceiling after ``failures`` failed attempts (1, 2, 4, ... capped)."""
        return min(self.max_delay_s, self.base_delay_s * 2 ** (failures - 1))


def jitter(ceiling_s: float) -> float:
    """Full jitter: a uniform wait in [0, ceiling]. Separate so tests can make it exact."""
    return random.uniform(0, ceiling_s)


def parse_retry_after(value: str | None, *, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now())


def call_with_retry(
    fn: Callable[[], T],
    policy: RetryPolicy,
    *,
    describe: str,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Call ``fn`` until it succeeds, retrying ``TransientError`` within the policy.

    When attempts or the deadline run out, raises a ``TransientError`` naming
    ``describe``, the attempts made and the last failure.
    """
    started = clock()
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except TransientError as error:
            delay = _delay_s(policy, attempt, error)
            elapsed = clock() - started
            if attempt >= policy.max_attempts or elapsed + delay > policy.deadline_s:
                raise TransientError(
                    f"Gave up on {describe} after {attempt} attempt(s) in {elapsed:.0f} s: {error}",
                    retry_after_s=error.retry_after_s,
                ) from error
            logger.warning(
                "%s failed (%s); retrying in %.1f s (attempt %d of %d)",
                describe,
                error,
                delay,
                attempt + 1,
                policy.max_attempts,
            )
            sleep(delay)


def _delay_s(policy: RetryPolicy, failures: int, error: TransientError) -> float:
    if error.retry_after_s is not None:
        return max(0.0, error.retry_after_s)
    return jitter(policy.backoff_s(failures))
