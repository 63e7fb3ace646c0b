"""One stream's way into Anaplan: rows to a spool file, then one commit at a time.

A commit is the unit the Singer state waits for: upload the spooled CSV as the data
source's file, run the stream's imports and processes to the end, judge their row
counts, and only then forget the rows. Nothing here knows about Singer; the sinks
decide *when* to commit (every drain in insert mode, end of input in all mode).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

from target_anaplan.anaplan.dumps import download_dump, summarize_dump
from target_anaplan.anaplan.errors import ActionFailedError
from target_anaplan.anaplan.tasks import run_actions
from target_anaplan.anaplan.upload import upload_file
from target_anaplan.csv_writer import RowFormatter, check_columns, parse_format, preamble
from target_anaplan.errors import RowsRejectedError
from target_anaplan.file_lock import machine_lock
from target_anaplan.spool import Spool

if TYPE_CHECKING:
    from target_anaplan.anaplan.client import AnaplanClient
    from target_anaplan.anaplan.models import (
        ActionRef,
        DataSourceTarget,
        ModelRef,
        TaskOutcome,
    )
    from target_anaplan.settings import StreamSettings

logger = logging.getLogger(__name__)

ROW_COUNTS = ("failedCount", "ignoredCount")
# Records are formatted this many at a time: one tight loop over the formatter runs about
# a third faster than formatting each record between the SDK's per-record steps, and a
# thousand records hold little memory.
FORMAT_BATCH = 1000


@dataclass(frozen=True)
class CommitRules:
    """What every stream's commit shares: where to load, how to run, what to accept."""

    client: AnaplanClient
    model: ModelRef
    parallel: bool = True
    poll_interval_s: float = 5.0
    import_timeout_s: float = 3600.0
    max_failed_rows: int | None = 0
    max_ignored_rows: int | None = 0
    failure_dump_dir: Path = Path("anaplan-failure-dumps")
    # Where the machine-wide file locks live (file_lock.py); None: in-process locks only.
    lock_dir: Path | None = None
    # Two streams may load one file: their uploads and imports must not overlap.
    _file_locks: dict[str, threading.Lock] = field(default_factory=dict, repr=False)
    _file_locks_guard: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def file_lock(self, file_id: str) -> threading.Lock:
        """The lock that serialises commits to one Anaplan file."""
        with self._file_locks_guard:
            return self._file_locks.setdefault(file_id, threading.Lock())


class StreamLoad:
    """The spool and commits of one stream, shared by every sink the SDK makes for it.

    The SDK starts a new sink on each schema change and drains the old one later; one
    spool per stream keeps rows in arrival order and an all-mode stream in one file.
    Drains run on threads, so writing, committing and resetting share one lock.
    """

    def __init__(
        self,
        stream: str,
        data_source: DataSourceTarget,
        stream_settings: StreamSettings,
        rules: CommitRules,
        *,
        spool_dir: Path,
        chunk_size_bytes: int,
        encoding_errors: Literal["fail", "replace"],
        time_zone: str = "UTC",
    ) -> None:
        layout = data_source.layout
        self.stream = stream
        self.mode = stream_settings.mode
        self._data_source = data_source
        self._settings = stream_settings
        self._rules = rules
        zone = ZoneInfo(stream_settings.time_zone or time_zone)
        self._formatter = RowFormatter(
            stream,
            layout.header_names,
            stream_settings.columns,
            separator=layout.separator,
            text_delimiter=layout.text_delimiter,
            formats={
                name: parse_format(spec, zone) for name, spec in stream_settings.formats.items()
            },
        )
        self._spool = Spool(
            spool_dir,
            encoding=layout.encoding,
            encoding_errors=encoding_errors,
            chunk_size_bytes=chunk_size_bytes,
            preamble=preamble(
                layout.header_names,
                separator=layout.separator,
                text_delimiter=layout.text_delimiter,
                header_row=layout.header_row,
                first_data_row=layout.first_data_row,
            ),
            locate=self._formatter.locate,
        )
        self._describe = lambda: f"stream '{stream}'"
        self._lock = threading.Lock()
        self._records = 0
        self._queued: list[Mapping[str, Any]] = []
        self._reported_unused: set[str] = set()
        self._reported_changes: set[str] = set()

    @property
    def pending_rows(self) -> int:
        """Rows written but not yet committed (lock-free: read from signal handlers)."""
        return self._spool.rows + len(self._queued)

    def check_schema(self, properties: Iterable[str]) -> None:
        """Fail now if the schema cannot feed every header column; log unused properties once."""
        settings = self._settings
        unused = check_columns(
            self.stream,
            self._data_source.layout.header_names,
            settings.columns,
            list(properties),
            formats=settings.formats,
        )
        fresh = [name for name in unused if name not in self._reported_unused]
        if fresh:
            self._reported_unused.update(fresh)
            logger.info(
                "Stream %s: %s feed no column of data source %s and are not loaded.",
                self.stream,
                ", ".join(repr(name) for name in fresh),
                self._data_source.file_name,
            )

    def write(self, record: Mapping[str, Any]) -> None:
        """Take one record; it reaches the spool file with the next ``FORMAT_BATCH`` records."""
        with self._lock:
            self._records += 1
            self._queued.append(record)
            if len(self._queued) >= FORMAT_BATCH:
                self._spool_queued()

    def _spool_queued(self) -> None:
        """Format the queued records in the header's order and append them (lock held)."""
        queued, self._queued = self._queued, []
        format_row = self._formatter.format
        self._spool.write_lines(
            [format_row(record) for record in queued],
            first_record_number=self._records - len(queued) + 1,
            describe=self._describe,
        )

    def commit(self) -> int:
        """Upload the spooled rows, run the imports, judge them, then forget the rows.

        Returns how many rows were committed. On any failure the rows stay spooled, so
        the stream still counts as uncommitted and its state is not emitted.
        """
        with self._lock, self._rules.file_lock(self._data_source.file_id):
            self._spool_queued()
            rows = self._spool.rows
            if not rows:
                return 0
            rules = self._rules
            source = self._data_source
            with machine_lock(
                rules.lock_dir,
                rules.model.model_id,
                source.file_id,
                what=f"file {source.file_name!r} of model {rules.model.model_name!r}",
                timeout_s=rules.import_timeout_s,
            ):
                stats = upload_file(
                    rules.client, rules.model, source.file_id, self._spool.chunk_pieces
                )
                outcomes = run_and_judge(
                    rules,
                    source.actions,
                    subject=f"stream {self.stream!r}",
                    target=f" into file {source.file_name!r}",
                    rows=rows,
                )
            self._spool.reset()
            self._warn_changes()
        logger.info(
            "Committed stream %s: %d rows, %d bytes (%d sent gzip, %d chunks) to file %s; %s",
            self.stream,
            rows,
            stats.raw_bytes,
            stats.sent_bytes,
            stats.chunks,
            self._data_source.file_name,
            _describe_outcomes(outcomes) or "no imports configured (file uploaded only)",
        )
        return rows

    def close(self) -> None:
        """Delete the spool file."""
        self._spool.close()

    def _warn_changes(self) -> None:
        """One warning per kind of value changed to fit the file, per stream."""
        changes = dict(self._formatter.changes)
        if self._spool.replaced_characters:
            changes[f"characters replaced by '?' for {self._spool.encoding}"] = (
                self._spool.replaced_characters
            )
        fresh = {
            kind: count
            for kind, count in changes.items()
            if count and kind not in self._reported_changes
        }
        if fresh:
            self._reported_changes.update(fresh)
            logger.warning(
                "Stream %s: values changed to fit the CSV: %s",
                self.stream,
                ", ".join(f"{kind} ({count} so far)" for kind, count in fresh.items()),
            )


def run_and_judge(
    rules: CommitRules,
    actions: Sequence[ActionRef],
    *,
    subject: str,
    target: str = "",
    rows: int | None = None,
) -> list[TaskOutcome]:
    """Run ``actions`` and judge their outcomes: fail on a failed task, or when more rows
    were failed or ignored than the settings allow; every failure dump is kept.

    ``subject`` ("stream 'orders'") and ``target`` (" into file 'orders.csv'") name what
    was loaded in messages; ``rows`` is how many rows the commit held.
    """
    if not actions:
        return []
    try:
        outcomes = run_actions(
            rules.client,
            rules.model,
            actions,
            parallel=rules.parallel,
            poll_interval_s=rules.poll_interval_s,
            timeout_s=rules.import_timeout_s,
        )
    except ActionFailedError as exc:
        where = _dump_note(download_dumps(rules, list(exc.outcomes)))
        held = f" ({rows} rows not loaded)" if rows is not None else ""
        msg = f"{subject[:1].upper()}{subject[1:]}{held}: {exc}.{where}"
        raise ActionFailedError(msg, outcomes=exc.outcomes) from exc
    where = _dump_note(download_dumps(rules, outcomes))
    totals = {name: sum(_count(outcome, name) for outcome in outcomes) for name in ROW_COUNTS}
    limits = {
        "failedCount": ("max_failed_rows", rules.max_failed_rows),
        "ignoredCount": ("max_ignored_rows", rules.max_ignored_rows),
    }
    over = [
        f"{totals[name]} rows {name.removesuffix('Count')} ({setting} is {limit})"
        for name, (setting, limit) in limits.items()
        if limit is not None and totals[name] > limit
    ]
    if over:
        raise RowsRejectedError(
            f"Anaplan did not load every row of {subject}{target}: {'; '.join(over)}.{where} "
            "Fix those rows or the import, or raise max_failed_rows / max_ignored_rows (null: "
            "warn only)."
        )
    if any(totals.values()):
        logger.warning(
            "%s: Anaplan failed %d and ignored %d rows (accepted by settings).%s",
            subject[:1].upper() + subject[1:],
            totals["failedCount"],
            totals["ignoredCount"],
            where,
        )
    return outcomes


def download_dumps(rules: CommitRules, outcomes: list[TaskOutcome]) -> list[Path]:
    """Fetch every available dump now: Anaplan overwrites them on the next run."""
    paths: list[Path] = []
    for outcome in outcomes:
        if not outcome.failure_dump_available:
            continue
        for path in download_dump(rules.client, rules.model, outcome, rules.failure_dump_dir):
            paths.append(path)
            top = ", ".join(f"{message} ({count})" for message, count in summarize_dump(path))
            logger.warning("Failure dump of %s saved to %s: %s", outcome.action.name, path, top)
    return paths


def _dump_note(dumps: list[Path]) -> str:
    return f" Failure dump: {', '.join(str(path) for path in dumps)}." if dumps else ""


def _leaves(outcome: TaskOutcome) -> tuple[TaskOutcome, ...]:
    """A process's per-action results, or the import itself."""
    return outcome.nested or (outcome,)


def _count(outcome: TaskOutcome, name: str) -> int:
    return sum(leaf.counts.get(name, 0) for leaf in _leaves(outcome))


def _describe_outcomes(outcomes: list[TaskOutcome]) -> str:
    parts = []
    for outcome in outcomes:
        counts = ", ".join(
            f"{name}={_count(outcome, name)}"
            for name in ("successRowCount", *ROW_COUNTS)
            if any(name in leaf.counts for leaf in _leaves(outcome))
        )
        parts.append(
            f"{outcome.action.kind[:-1]} {outcome.action.name!r} {outcome.task_state}"
            + (f" ({counts})" if counts else "")
        )
    return "ran " + "; ".join(parts) if parts else ""
