"""The one retry policy for every Anaplan call, on the ``backoff`` module.

Only ``TransientError`` is retried (``errors.py`` decides what is transient); everything
else is terminal. Waits grow exponentially with full jitter, a server's ``Retry-After``
wins, and a deadline bounds the whole effort: a wait that would end past it is not
started, the call gives up at once instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar

import backoff

from target_anaplan.anaplan.errors import TransientError

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Full jitter: a uniform wait in [0, ceiling]. A module attribute so tests can make it exact.
jitter: Callable[[float], float] = backoff.full_jitter


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: attempts, backoff bounds, and a deadline for all attempts together."""

    max_attempts: int = 8
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0
    deadline_s: float = 600.0

    def backoff_s(self, failures: int) -> float:
        """The backoff ceiling after ``failures`` failed attempts (1, 2, 4, ... capped)."""
        return min(self.max_delay_s, self.base_delay_s * 2.0 ** (failures - 1))


def _waits(policy: RetryPolicy, until: float | None) -> Generator[float, Any, None]:
    """backoff's wait generator: it is sent each failure and yields the wait before the next.

    Stopping (returning) makes backoff give up on the failure it just sent: when a wait
    would end past ``until`` (a ``time.monotonic()`` instant), else past the policy's
    deadline counted from the first attempt.
    """
    ends = time.monotonic() + policy.deadline_s if until is None else until
    failures = 0
    error: TransientError = yield 0.0  # backoff primes the generator first (value unused)
    while True:
        failures += 1
        wait = error.retry_after_s
        if wait is None:
            wait = jitter(policy.backoff_s(failures))
        if time.monotonic() + max(wait, 0.0) > ends:
            return
        error = yield max(wait, 0.0)


def call_with_retry(
    fn: Callable[[], T], policy: RetryPolicy, *, describe: str, until: float | None = None
) -> T:
    """Call ``fn`` until it succeeds, retrying ``TransientError`` within the policy.

    ``until`` (a ``time.monotonic()`` instant) replaces the policy's deadline, for a caller
    whose effort started earlier and must not get a fresh one (an upload's restart). When
    attempts or the deadline run out, raises a ``TransientError`` naming ``describe``, the
    attempts made and the last failure.
    """
    ended: dict[str, Any] = {}

    def log_retry(details: Any) -> None:
        logger.warning(
            "%s failed (%s); retrying in %.1f s (attempt %d of %d)",
            describe,
            details["exception"],
            details["wait"],
            details["tries"] + 1,
            policy.max_attempts,
        )

    retrying = backoff.on_exception(
        _waits,
        TransientError,
        max_tries=policy.max_attempts,
        jitter=None,  # applied by _waits, never to a server's Retry-After
        on_backoff=log_retry,
        on_giveup=ended.update,
        logger=None,
        policy=policy,
        until=until,
    )(fn)
    try:
        return retrying()
    except TransientError as error:
        raise TransientError(
            f"Gave up on {describe} after {ended['tries']} attempt(s) in "
            f"{ended['elapsed']:.0f} s: {error}",
            retry_after_s=error.retry_after_s,
        ) from error
