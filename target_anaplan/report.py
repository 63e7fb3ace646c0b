"""What a long load is doing, and what a run did: progress lines and the run summary.

The summary is printed on stderr at the end of every run, success or failure, written as
JSON to ``run_report_path`` for orchestrators, and emitted as Singer METRIC log lines (the
SDK's format, on its ``singer_sdk.metrics`` logger) so that tools reading those see counters
per stream and a timer per commit. Nothing here writes to stdout: it carries STATE only.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)
metrics_logger = logging.getLogger("singer_sdk.metrics")


def metric(kind: str, name: str, value: float, tags: dict[str, Any]) -> None:
    """One METRIC line, as the SDK writes its own (``METRIC: {json}``)."""
    point = {"type": kind, "metric": name, "value": value, "tags": tags}
    metrics_logger.info("METRIC: %s", json.dumps(point, default=str))


@dataclass
class ImportCounts:
    """Rows an import (or a process step) loaded, failed and ignored, over a run."""

    success: int = 0
    failed: int = 0
    ignored: int = 0


@dataclass
class StreamReport:
    """What one stream did in a run."""

    stream: str
    file: str
    mode: str
    received: int = 0
    sent: int = 0
    bytes_raw: int = 0
    bytes_gzip: int = 0
    commits: int = 0
    seconds: float = 0.0
    imports: dict[str, ImportCounts] = field(default_factory=dict)
    dumps: list[str] = field(default_factory=list)
    # With change tracking: new, changed, unchanged and deleted rows.
    changes: dict[str, int] | None = None
    dry_run_files: list[str] = field(default_factory=list)

    def add_commit(
        self,
        *,
        rows: int,
        raw: int,
        gzip: int,
        seconds: float,
        imports: dict[str, ImportCounts],
        dumps: list[str],
    ) -> None:
        """A commit succeeded: count it, and emit its timer."""
        self.commits += 1
        self.sent += rows
        self.bytes_raw += raw
        self.bytes_gzip += gzip
        self.seconds += seconds
        self.dumps += dumps
        for name, counts in imports.items():
            total = self.imports.setdefault(name, ImportCounts())
            total.success += counts.success
            total.failed += counts.failed
            total.ignored += counts.ignored
        tags = {"stream": self.stream, "file": self.file, "imports": sorted(imports)}
        metric("timer", "anaplan_commit_seconds", round(seconds, 3), tags | {"rows": rows})


@dataclass
class RunReport:
    """What a run did: per stream, the run-level actions, and the verdict."""

    streams: list[StreamReport]
    after_load: list[str]
    verdict: str  # "succeeded", "failed", "dry run"
    error: str | None = None
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> str:
        """The summary as aligned text, one row per stream."""
        header = [
            *("stream", "mode", "received", "sent", "new/changed/unchanged/deleted"),
            *("raw bytes", "gzip bytes", "commits", "imports (ok/failed/ignored)", "s"),
        ]
        rows = [header]
        for s in self.streams:
            changes = (
                "/".join(str(s.changes[k]) for k in ("new", "changed", "unchanged", "deleted"))
                if s.changes is not None
                else "-"
            )
            imports = "; ".join(
                f"{name} {c.success}/{c.failed}/{c.ignored}" for name, c in s.imports.items()
            )
            counts = (s.received, s.sent, changes, s.bytes_raw, s.bytes_gzip, s.commits)
            rows.append([s.stream, s.mode, *map(str, counts), imports or "-", f"{s.seconds:.1f}"])
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines = [
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in rows
        ]
        for s in self.streams:
            lines += [f"failure dump of {s.stream}: {d}" for d in s.dumps]
            lines += [f"dry run: {s.stream} -> {f}" for f in s.dry_run_files]
        lines += [f"after_load: {a}" for a in self.after_load]
        verdict = self.verdict + (f": {self.error}" if self.error else "")
        lines.append(f"run {verdict} in {self.seconds:.1f} s")
        return "\n".join(lines)

    def publish(self, path: Path | None) -> None:
        """The summary on stderr (through the log), as METRIC counters, and as JSON at
        ``path`` when set."""
        logger.info("Run summary:\n%s", self.table())
        for s in self.streams:
            tags = {"stream": s.stream, "file": s.file}
            counters = {
                "anaplan_rows_received": s.received,
                "anaplan_rows_sent": s.sent,
                "anaplan_bytes_sent": s.bytes_gzip,
                "anaplan_commits": s.commits,
            }
            for name, value in counters.items():
                metric("counter", name, value, tags)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(self.as_json(), indent=2) + "\n", encoding="utf-8")


class Progress:
    """Progress lines at most every ``interval_s`` per subject (a stream, a task)."""

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval_s = interval_s
        self._clock = clock
        self._started: dict[str, float] = {}
        self._last: dict[str, float] = {}

    def due(self, subject: str) -> float | None:
        """Seconds since ``subject`` began, when a line about it is due; else None."""
        now = self._clock()
        started = self._started.setdefault(subject, now)
        if now - self._last.setdefault(subject, now) < self._interval_s:
            return None
        self._last[subject] = now
        return now - started

    def reading(self, stream: str, rows: int) -> None:
        """A line while a stream is being read: rows so far and rows per second."""
        elapsed = self.due(f"reading {stream}")
        if elapsed:
            logger.info(
                "Stream %s: %d rows read in %.0f s (%.0f rows/s)",
                stream,
                rows,
                elapsed,
                rows / elapsed,
            )
