"""The process-wide settings a running simulator needs, owned by the Simulator instance.

Importing the simulator changes nothing in the process: the code under test must meet the
csv module and the garbage collector as they are in production. A started Simulator raises
the csv field size limit (Anaplan takes text cells far longer than csv's 128 KiB default)
until the last running simulator stops, and pauses the cyclic garbage collector only while
one of its imports runs.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import threading
from collections.abc import Iterator

FIELD_SIZE_LIMIT = 2**31 - 1


class ProcessTweaks:
    """One simulator's hold on the process-wide settings; `hold()` at start, `release()` at stop.

    The csv limit is one value for the whole process, so simulators running side by side share
    it: the first hold saves the old value and the last release puts it back.
    """

    _lock = threading.Lock()
    _holders = 0
    _saved_limit = 0

    def __init__(self) -> None:
        self._holding = False

    def hold(self) -> None:
        """Raise the csv field size limit for as long as this simulator runs."""
        with ProcessTweaks._lock:
            if self._holding:
                return
            if ProcessTweaks._holders == 0:
                ProcessTweaks._saved_limit = csv.field_size_limit(FIELD_SIZE_LIMIT)
            ProcessTweaks._holders += 1
            self._holding = True

    def release(self) -> None:
        """Give the hold back; the last simulator to stop restores the old limit."""
        with ProcessTweaks._lock:
            if not self._holding:
                return
            self._holding = False
            ProcessTweaks._holders -= 1
            if ProcessTweaks._holders == 0:
                csv.field_size_limit(ProcessTweaks._saved_limit)

    @staticmethod
    @contextlib.contextmanager
    def collector_paused() -> Iterator[None]:
        """No automatic cyclic collection during an import.

        A big file makes millions of objects that all stay alive until the import ends: the
        collector would walk them again and again (a third of the import's time). The import
        itself has each batch's new rows looked at once, while young (engine._Load.stage).
        """
        collecting = gc.isenabled()
        gc.disable()
        try:
            yield
        finally:
            if collecting:
                gc.enable()
