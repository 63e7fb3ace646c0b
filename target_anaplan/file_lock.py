"""A machine-wide lock per Anaplan file, held from upload until the imports have finished.

Anaplan keeps one private copy of an import data source per user. If a second run on
this machine uploads the same file while the first run's import has not read it yet,
the first import loads the second run's rows and the first run's rows are lost without
an error. Each commit therefore holds an exclusive ``flock`` on a lock file named after
the model and the file. The kernel releases it when the process ends, however it ends,
so a killed run never leaves a stale lock. Runs on other machines are not covered.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from target_anaplan.errors import FileLockTimeoutError

try:
    import fcntl
except ImportError:  # Windows: no flock; commits are then only serialised in-process
    fcntl = None  # type: ignore[assignment]  # None: no flock (machine_lock checks)

logger = logging.getLogger(__name__)

DEFAULT_LOCK_DIR = Path("~/.target-anaplan/locks")
_RETRY_S = 0.05


@contextlib.contextmanager
def machine_lock(
    lock_dir: Path | None,
    model_id: str,
    file_id: str,
    *,
    what: str,
    timeout_s: float,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[None]:
    """Hold the lock of ``file_id`` in ``model_id``; ``lock_dir`` None means no lock.

    Waits at most ``timeout_s`` for another run to finish with the file. A lock
    directory that cannot be used is warned about and the commit goes on unlocked.
    """
    fd = _open(lock_dir, model_id, file_id) if lock_dir is not None and fcntl else None
    if fd is None:
        yield
        return
    try:
        _acquire(fd, what, timeout_s, clock)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def _open(lock_dir: Path, model_id: str, file_id: str) -> int | None:
    directory = lock_dir.expanduser()
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        return os.open(directory / f"{model_id}-{file_id}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as error:
        logger.warning(
            "Cannot use lock directory %s (%s); runs on this machine that load the same "
            "file are not kept apart.",
            directory,
            error.strerror or error,
        )
        return None


def _acquire(fd: int, what: str, timeout_s: float, clock: Callable[[], float]) -> None:
    started = clock()
    waiting = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        if not waiting:
            waiting = True
            logger.info("Waiting for another run on this machine to finish loading %s", what)
        if clock() - started >= timeout_s:
            raise FileLockTimeoutError(
                f"Another target-anaplan run on this machine has been loading {what} for more "
                f"than {timeout_s:.0f} s (import_timeout_s); try again when it has finished."
            )
        time.sleep(_RETRY_S)
