"""One stream's way into Anaplan: rows to a spool file, then commits in order.

A commit is the unit the Singer state waits for: upload the spooled CSV as the data
source's file, run the stream's imports and processes to the end, judge their row
counts, and only then forget the rows. Nothing here knows about Singer; the sinks
decide *when* to commit (every drain in insert mode, end of input in all mode). A
commit may run on a worker thread while the next batch is read, but commits of a
stream hold the file one after the other, in the order they were set aside.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

import msgspec

from target_anaplan.anaplan.dumps import download_dump, failed_lines, summarize_dump
from target_anaplan.anaplan.errors import ActionFailedError
from target_anaplan.anaplan.tasks import run_actions
from target_anaplan.anaplan.upload import UploadStats, upload_file
from target_anaplan.changes import (
    Known,
    Sealed,
    StreamTracking,
    key_texts,
    key_values,
    raw_fingerprints,
    salt,
)
from target_anaplan.csv_writer import RowFormatter, check_columns, parse_format, preamble
from target_anaplan.early_upload import EarlyUpload
from target_anaplan.errors import ConfigError, RowsRejectedError
from target_anaplan.file_lock import machine_lock
from target_anaplan.report import ImportCounts, Progress, StreamReport
from target_anaplan.spool import Spool

if TYPE_CHECKING:
    from target_anaplan.anaplan.client import AnaplanClient
    from target_anaplan.anaplan.models import (
        ActionRef,
        DataSourceTarget,
        ModelRef,
        TaskOutcome,
    )
    from target_anaplan.decoding import TypedRecord
    from target_anaplan.deletes import Deleter
    from target_anaplan.settings import StreamSettings

logger = logging.getLogger(__name__)

ROW_COUNTS = ("failedCount", "ignoredCount")
# Records are formatted this many at a time: one tight loop over the formatter runs about
# a third faster than formatting each record between the SDK's per-record steps, and a
# thousand records hold little memory.
FORMAT_BATCH = 1000


@dataclass(frozen=True)
class _Batch:
    """What one commit sends: its spool (rows), its early upload, what it teaches the
    change store, and whether it clears the keys gone from the source."""

    spool: Spool
    early: EarlyUpload | None
    sealed: Sealed | None
    clearing: bool
    # Set once the commit no longer holds the file (its imports done, or it failed);
    # ``failed`` is set before it when the commit failed.
    released: threading.Event = field(default_factory=threading.Event)
    failed: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True)
class LookAhead:
    """A batch of records still in JSON text, read ahead for change tracking: their raw
    fingerprints, keys (None: not told this way) and the store's look-up of the keys."""

    raw_prints: list[int]
    keys: list[str] | None
    known: Future[Known] | None
    skips: bool = True  # False: the store knew nothing of the source, so none is skipped


@dataclass(frozen=True)
class Prefiltered:
    """What change tracking found of a typed batch before formatting it: the records to
    format (their indices), their raw fingerprints and keys, and what the store holds of
    them."""

    kept: list[int]
    raws: list[int]
    keys: list[str] | None  # None: not told yet
    known: Known | None  # None: not looked up yet


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
    # A lock shared by every machine (the PostgreSQL change store's advisory lock), which
    # replaces the machine-wide one; called with a name for the model and file.
    shared_lock: Callable[[str], AbstractContextManager[bool]] | None = None
    # A dry run writes each commit's CSV here instead of uploading it, and runs nothing.
    dry_run_dir: Path | None = None
    progress_interval_s: float = 30.0  # at most this often, a line about a running task
    # Two streams may load one file: their uploads and imports must not overlap.
    _file_locks: dict[str, threading.Lock] = field(default_factory=dict, repr=False)
    _file_locks_guard: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def file_lock(self, file_id: str) -> threading.Lock:
        """The lock that serialises commits to one Anaplan file in this process."""
        with self._file_locks_guard:
            return self._file_locks.setdefault(file_id, threading.Lock())

    def lock(self, source: DataSourceTarget, *, what: str) -> AbstractContextManager[Any]:
        """The lock across runs, held from upload until the imports have finished."""
        if self.shared_lock is not None:
            return self.shared_lock(f"{self.model.model_id}/{source.file_id}")
        return machine_lock(
            self.lock_dir,
            self.model.model_id,
            source.file_id,
            what=what,
            timeout_s=self.import_timeout_s,
        )


def check_key(
    stream: str, settings: StreamSettings, key: tuple[str, ...], fields: Sequence[str]
) -> None:
    """Refuse a key that cannot serve the stream's mode and deletes, before anything is sent:
    upsert and deletes need one, its fields must be in the schema, and list items are
    deleted by one code."""
    setting = f"streams.{stream}.key"
    if not key:
        if settings.mode == "upsert" or settings.deletes != "ignore":
            why = "mode upsert" if settings.mode == "upsert" else f"deletes: {settings.deletes}"
            raise ConfigError(
                f"Stream {stream!r} has {why}, which needs a key, but the tap sends no "
                f"key_properties. Set `{setting}` to the fields that identify a row."
            )
        return
    missing = [name for name in key if name not in fields]
    if missing:
        raise ConfigError(
            f"Stream {stream!r}: the key fields {', '.join(map(repr, missing))} are not "
            f"in the stream's schema. Fix `{setting}` (or the tap's key_properties)."
        )
    if settings.deletes == "delete" and len(key) > 1:
        raise ConfigError(
            f"Stream {stream!r} has deletes: delete with a key of {len(key)} fields; list "
            f"items are deleted by their code, one value. Set `{setting}` to the one field "
            "holding the item code."
        )


class StreamLoad:
    """The spool and commits of one stream, shared by every sink the SDK makes for it.

    The SDK starts a new sink on each schema change and drains the old one later; one
    spool per stream keeps rows in arrival order and an all-mode stream in one file.
    Writing and setting a batch aside share one lock (signal handlers read counts only).

    With change tracking (``track`` builds it once the key is known), each formatted
    batch is filtered by the stream's mode before it is spooled, and a commit tells the
    change store what it loaded after the imports succeeded. Keys that left the source
    are cleared in the stream's last commit (``deletes: clear``) or deleted from the list
    after every stream committed (``deletes: delete``, through ``deleter``).
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
        track: Callable[[str], StreamTracking] | None = None,
        deleter: Deleter | None = None,
        progress: Progress | None = None,
        early_upload: bool = True,
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
        self._spool_dir = spool_dir
        self._chunk_size = chunk_size_bytes
        self._encoding_errors = encoding_errors
        self._spool = self._new_spool()
        self._describe = lambda: f"stream '{stream}'"
        self._lock = threading.Lock()
        self._records = 0
        self._queued: list[Mapping[str, Any]] = []
        self._queued_gone: list[Mapping[str, Any]] = []
        self._reported_unused: set[str] = set()
        self._reported_changes: set[str] = set()
        self._track = track
        self._deleter = deleter
        self.tracking: StreamTracking | None = None
        self._key: tuple[str, ...] = ()
        self._input_ended = False
        self._records_since_version = 0
        self._progress = progress
        self.report = StreamReport(stream, data_source.file_name, stream_settings.mode)
        # What makes a record's row besides its schema: raw fingerprints are salted with it.
        self._recipe = [
            layout.header_names,
            layout.separator,
            layout.text_delimiter,
            layout.encoding,
            encoding_errors,
            stream_settings.columns,
            stream_settings.formats,
            str(zone),
        ]
        self._salts: dict[str, int] = {}
        # False when other streams of the run load the same file: their commits take turns
        # on it, so none may hold it while its stream is read.
        self._early_upload = early_upload
        self._early: EarlyUpload | None = None  # the next commit's upload, begun early
        # A commit left running while the next batch is read (insert and upsert modes).
        self._running: Future[int] | None = None  # the newest; it waits for those before
        self._running_batch: _Batch | None = None
        self._bookkeeping = threading.Lock()
        self._running_rows = 0
        self._committer: ThreadPoolExecutor | None = None
        self._looker: ThreadPoolExecutor | None = None  # change tracking's look-ups
        self._replaced_characters = 0  # by the spools of commits made
        self._committed = 0  # records received and committed (the first this many)
        self._batches = 0  # batches set aside for a commit
        self._set_aside = 0  # records received when the last one was

    def _new_spool(self) -> Spool:
        """An empty spool file in the data source's encoding, its preamble written."""
        layout = self._data_source.layout
        return Spool(
            self._spool_dir,
            encoding=layout.encoding,
            encoding_errors=self._encoding_errors,
            chunk_size_bytes=self._chunk_size,
            preamble=preamble(
                layout.header_names,
                separator=layout.separator,
                text_delimiter=layout.text_delimiter,
                header_row=layout.header_row,
                first_data_row=layout.first_data_row,
            ),
            locate=self._formatter.locate,
        )

    @property
    def received(self) -> int:
        """Records received so far (for the state gate)."""
        return self._records

    @property
    def committed(self) -> int:
        """Records received and committed in Anaplan: the first this many (for the gate)."""
        return self._committed

    @property
    def batches(self) -> int:
        """Batches set aside for a commit so far (for the gate)."""
        return self._batches

    @property
    def set_aside(self) -> int:
        """Records received when the last batch was set aside for a commit (for the gate)."""
        return self._set_aside

    @property
    def unsent_rows(self) -> int:
        """Rows received and not committed (gone keys aside)."""
        return self._spool.rows + len(self._queued) + self._running_rows

    @property
    def gone_pending(self) -> int:
        """Keys the source deleted or left out, not yet deleted or cleared: the state waits
        for them (a bookmark past a deletion would lose it)."""
        marked = self.tracking.gone_pending if self.tracking is not None else 0
        return len(self._queued_gone) + marked

    @property
    def pending_rows(self) -> int:
        """Rows received but not committed, and keys gone but not yet deleted (lock-free:
        read from signal handlers)."""
        return self.unsent_rows + self.gone_pending

    def check_schema(self, properties: Iterable[str], key_properties: Sequence[str] = ()) -> None:
        """Fail now if the schema cannot feed every header column or lacks the key change
        tracking needs; log unused properties once."""
        settings = self._settings
        fields = list(properties)
        unused = check_columns(
            self.stream,
            self._data_source.layout.header_names,
            settings.columns,
            fields,
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
        self._start_tracking(tuple(settings.key or key_properties), fields)

    def _start_tracking(self, key: tuple[str, ...], fields: list[str]) -> None:
        """Change tracking, the first time the stream's key is known (once per run)."""
        if self.tracking is not None or self._track is None:
            return
        settings = self._settings
        check_key(self.stream, settings, key, fields)
        if not key:
            if settings.mode == "insert":
                logger.info(
                    "Stream %s has no key: every row received is sent (no change tracking). "
                    "Set `streams.%s.key` to send only rows never loaded.",
                    self.stream,
                    self.stream,
                )
            return
        if settings.mode in {"insert", "upsert"} or settings.deletes != "ignore":
            self._key = key
            self.tracking = self._track(self.stream)

    @property
    def fields(self) -> tuple[str, ...]:
        """The record fields a batch of columns must give, in order: the header's, then the
        key's that feed no column."""
        header = self._formatter.fields
        return header + tuple(name for name in self._key if name not in header)

    def write(self, record: Mapping[str, Any]) -> None:
        """Take one record; it reaches the spool file with the next ``FORMAT_BATCH`` records."""
        with self._lock:
            self._records += 1
            self._records_since_version += 1
            self._queued.append(record)
            if len(self._queued) >= FORMAT_BATCH:
                self._spool_queued()

    def write_columns(
        self,
        columns: Sequence[Sequence[Any]],
        count: int,
        prefiltered: Prefiltered | None = None,
    ) -> None:
        """Take ``count`` records given as the values of ``fields``, one column each (the
        typed record path), less those ``prefiltered`` found unchanged; records taken one
        by one before them are spooled first."""
        with self._lock:
            self._spool_queued()
            first = self._records + 1
            self._records += count
            self._records_since_version += count
            self._spool_columns(columns, first, prefiltered)

    def skipped(self, count: int) -> None:
        """``count`` records were received and found unchanged before formatting."""
        with self._lock:
            self._records += count
            self._records_since_version += count

    def look_ahead(self, typed: TypedRecord, raws: Sequence[msgspec.Raw]) -> LookAhead:
        """Insert and upsert modes, for records still in JSON text: their raw fingerprints
        and keys now, and the store's look-up of the keys started on a worker thread (the
        database works without Python's lock while the batch before is formatted)."""
        tracking = self.tracking
        assert tracking is not None and tracking.filters  # raw records only with those
        raw_prints = raw_fingerprints(self._salt(typed), raws)
        if not tracking.known_at_start:
            # The store knew nothing of the data source: no record can be skipped this way,
            # so none is decoded twice (keys first); the rows' keys are looked up later.
            return LookAhead(raw_prints, None, None, skips=False)
        key_columns = typed.keys_of(raws, self._key)
        if key_columns is None:
            return LookAhead(raw_prints, None, None)
        keys = self._key_texts(key_columns)
        if self._looker is None:
            self._looker = ThreadPoolExecutor(1, thread_name_prefix=f"look-up-{self.stream}")
        return LookAhead(raw_prints, keys, self._looker.submit(tracking.look_up, keys))

    def prefilter(self, ahead: LookAhead, start: int, end: int) -> Prefiltered | None:
        """Which of records ``start`` to ``end`` of a looked-ahead batch to decode and format,
        the others being known unchanged by their raw fingerprint (counted as such); None
        when their keys cannot be told this way (the record path decides then)."""
        tracking = self.tracking
        assert tracking is not None
        if not ahead.skips:
            count = end - start
            return Prefiltered(list(range(count)), ahead.raw_prints[start:end], None, None)
        if ahead.keys is None or ahead.known is None:
            return None
        keys, raws = ahead.keys[start:end], ahead.raw_prints[start:end]
        kept, known = tracking.prefilter(keys, raws, ahead.known.result())
        return Prefiltered(
            kept, [raws[index] for index in kept], [keys[index] for index in kept], known
        )

    def _salt(self, typed: TypedRecord) -> int:
        found = self._salts.get(typed.digest)
        if found is None:
            found = self._salts[typed.digest] = salt(self._recipe, typed.digest)
        return found

    def _key_texts(self, key_columns: Sequence[Sequence[Any]]) -> list[str]:
        """Each record's key as the store keeps it (see ``key_texts``)."""
        return key_texts([self._formatter.texts(column) for column in key_columns])

    def delete(self, record: Mapping[str, Any]) -> None:
        """A record the source marks deleted (``_sdc_deleted_at``): its key is gone.

        Without ``deletes`` to apply, it is loaded as any other record.
        """
        if self.tracking is None or self.tracking.deletes == "ignore":
            self.write(record)
            return
        with self._lock:
            self._queued_gone.append(record)
            if len(self._queued_gone) >= FORMAT_BATCH:
                self._spool_queued()

    def activate_version(self) -> None:
        """ACTIVATE_VERSION: after records, it closes a table version (the whole table was
        sent since); before any, it opens one and means nothing yet."""
        if self.tracking is not None and self._records_since_version:
            self.tracking.close_snapshot()
        self._records_since_version = 0

    def end_of_input(self) -> int:
        """The input ended normally: find the keys gone from the source; returns how many."""
        with self._lock:
            self._spool_queued()
            self._input_ended = True
            return self.tracking.find_gone() if self.tracking is not None else 0

    def _spool_queued(self) -> None:
        """Spool the records taken one by one (lock held); records the source deleted
        become gone keys."""
        queued, self._queued = self._queued, []
        if queued:
            columns = [[record.get(name) for record in queued] for name in self.fields]
            self._spool_columns(columns, self._records - len(queued) + 1)
        if self._queued_gone and self.tracking is not None:
            gone = self._queued_gone
            self.tracking.mark_gone(
                self._key_texts([[record.get(name) for record in gone] for name in self._key])
            )
            self._queued_gone = []  # after: counted as pending until marked

    def _spool_columns(
        self, columns: Sequence[Sequence[Any]], first: int, prefiltered: Prefiltered | None = None
    ) -> None:
        """Format a batch (the values of ``fields``, numbered from record ``first``; if
        ``prefiltered``, only of the records it kept) in the header's order and append the
        rows to send (lock held)."""
        self._check_running()
        if self._progress is not None:
            self._progress.reading(self.stream, self._records)
        width = len(self._formatter.fields)
        rows = self._formatter.format_columns(columns[:width])
        numbers: Sequence[int] = (
            range(first, first + len(rows))
            if prefiltered is None
            else [first + index for index in prefiltered.kept]
        )
        if self.tracking is not None:
            keys = prefiltered.keys if prefiltered is not None else None
            if keys is None:
                fields = self.fields
                keys = self._key_texts([columns[fields.index(name)] for name in self._key])
            chosen = self.tracking.choose(
                keys,
                rows,
                first_line=self._spool.rows,
                raws=prefiltered.raws if prefiltered is not None else None,
                known=prefiltered.known if prefiltered is not None else None,
            )
            numbers = [numbers[index] for index in chosen]
            rows = [rows[index] for index in chosen]
        self._spool.write_lines(rows, record_numbers=numbers, describe=self._describe)
        if self._spool.finished_chunks:
            self._upload_early()

    def _upload_early(self) -> None:
        """Send the spool's finished chunks on a worker thread while reading goes on
        (``early_upload.py``). Not in a dry run, nor when other streams of the run load
        the same file, nor before the stream's earlier commits let go of the file (they
        hold it in order; this one tries again with its next finished chunk, or sends
        every chunk at commit)."""
        if self._early is None:
            rules = self._rules
            if not self._early_upload or rules.dry_run_dir is not None:
                return
            running = self._running_batch
            if running is not None and not running.released.is_set():
                return
            in_process = rules.file_lock(self._data_source.file_id)
            if not in_process.acquire(blocking=False):
                return
            locks = ExitStack()
            locks.callback(in_process.release)
            try:
                locks.enter_context(rules.lock(self._data_source, what=self._lock_subject))
                self._early = EarlyUpload(
                    rules.client, rules.model, self._data_source.file_id, self._spool, locks
                )
            except BaseException:
                locks.close()
                raise
        self._early.chunks_finished()

    @property
    def _lock_subject(self) -> str:
        """What the run's lock on the file protects, for messages about waiting for it."""
        return f"file {self._data_source.file_name!r} of model {self._rules.model.model_name!r}"

    def _spool_clear_rows(self) -> None:
        """``deletes: clear``: a row with the key and empty values for every gone key."""
        assert self.tracking is not None  # clear implies tracking
        for keys in self.tracking.gone():
            rows = [
                self._formatter.format(dict(zip(self._key, key_values(key), strict=True)))
                for key in keys
            ]
            self._spool.write_lines(rows, record_numbers=[0] * len(rows), describe=self._describe)

    def commit(self, *, wait: bool = True, then: Callable[[], None] | None = None) -> int:
        """Upload the spooled rows, run the imports, judge them, then forget the rows and
        tell the change store. Returns how many rows the commit holds.

        With ``wait`` (the default) every commit of this stream still running is waited for
        first (its failure raised), and this one is made before returning. With ``wait``
        False (a full batch of insert or upsert mode), the commit is left running on a
        worker thread while the next batch is read: it starts once the previous commit has
        let go of the file (its imports done), and ``then`` is called once it and every
        commit before it succeeded; its rows count as pending until then. On any failure
        the rows stay pending, so the stream's state is not emitted. A batch that needs no
        row (every record received is committed, or unchanged) counts as committed once
        the commits before it are.
        """
        waits = wait or self._rules.dry_run_dir is not None
        if waits:
            self.finish_running()
        else:
            self._wait_for_file()
        with self._lock:
            batch = self._seal()
            self._batches += 1
            self._set_aside = through = self._records
        if waits or (batch is None and self._running is None):
            rows = self._commit(batch) if batch is not None else 0
            self._committed = max(self._committed, through)
            return rows
        rows = batch.spool.rows if batch is not None else 0
        with self._lock:
            self._running_rows += rows
        if self._committer is None:
            # Two threads: a commit's last steps (change store, report) go on while the
            # next one, holding the file, uploads and imports.
            self._committer = ThreadPoolExecutor(2, thread_name_prefix=f"commit-{self.stream}")
        previous = self._running
        if batch is not None:
            self._running_batch = batch
        self._running = self._committer.submit(
            self._commit_then, batch, through, rows, then, previous
        )
        return rows

    def finish_running(self) -> None:
        """Wait for the commits left running, if any; raise the first failure."""
        running, self._running = self._running, None
        self._running_batch = None
        if running is not None:
            running.result()

    def _wait_for_file(self) -> None:
        """Wait until the commit left running has let go of the file (its imports done); a
        failure of it is raised."""
        batch = self._running_batch
        if batch is not None:
            batch.released.wait()
            if batch.failed.is_set():
                self.finish_running()
        self._check_running()

    def _check_running(self) -> None:
        """A failure of a commit left running is raised as soon as it is known."""
        if self._running is not None and self._running.done():
            self.finish_running()

    def _seal(self) -> _Batch | None:
        """Set the spooled rows aside as the next commit's (lock held); a fresh spool takes
        the rows that follow. None when there is nothing to commit."""
        self._spool_queued()
        tracking = self.tracking
        clearing = (
            self._input_ended
            and tracking is not None
            and tracking.deletes == "clear"
            and tracking.gone_pending > 0
        )
        if clearing:
            self._spool_clear_rows()
        spool = self._spool
        if not spool.rows:
            return None
        self._replaced_characters += spool.replaced_characters
        batch = _Batch(
            spool,
            self._early,
            tracking.seal() if tracking is not None else None,
            clearing,
        )
        self._spool, self._early = self._new_spool(), None
        return batch

    def _commit_then(
        self,
        batch: _Batch | None,
        through: int,
        rows: int,
        then: Callable[[], None] | None,
        previous: Future[int] | None,
    ) -> int:
        """A commit left running: the batch's commit (if it has rows), then (in order: the
        state may only move past it once every commit before it is done) the bookkeeping.
        A failure is raised once the commits before it have ended too."""
        try:
            if batch is not None:
                self._commit(batch)
        except BaseException:
            if previous is not None:
                wait_for([previous])
            raise
        if previous is not None:
            previous.result()
        with self._lock:
            self._committed = max(self._committed, through)
            self._running_rows -= rows
        if then is not None:
            then()
        return rows

    def _commit(self, batch: _Batch) -> int:
        """One batch's commit: upload, imports, verdict, change store, report."""
        rows = batch.spool.rows
        try:
            if self._rules.dry_run_dir is not None:
                return self._dry_run(self._rules.dry_run_dir, batch)
            stats, verdict, seconds = self._upload_and_import(batch)
        except BaseException:
            batch.failed.set()  # before ``released``: the next commit must not start
            if batch.sealed is not None:
                batch.sealed.held.close()
            raise
        finally:
            if batch.early is not None:
                batch.early.close()
            batch.released.set()
        if batch.sealed is not None:
            self._record(batch.sealed, verdict, clearing=batch.clearing)
        batch.spool.close()
        with self._bookkeeping:  # two commits of the stream may end at once
            self._warn_changes()
            self.report.add_commit(
                rows=rows,
                raw=stats.raw_bytes,
                gzip=stats.sent_bytes,
                seconds=seconds,
                imports=_import_counts(verdict.outcomes),
                dumps=[str(path) for path in verdict.dumps],
            )
        logger.info(
            "Committed stream %s: %d rows, %d bytes (%d sent gzip, %d chunks) to file %s; %s",
            self.stream,
            rows,
            stats.raw_bytes,
            stats.sent_bytes,
            stats.chunks,
            self._data_source.file_name,
            _describe_outcomes(verdict.outcomes) or "no imports configured (file uploaded only)",
        )
        return rows

    def _upload_and_import(self, batch: _Batch) -> tuple[UploadStats, Verdict, float]:
        """Upload the batch's file and run its imports under the file's locks (held already
        by an early upload since its first chunk)."""
        rules, source, spool = self._rules, self._data_source, batch.spool
        started = time.monotonic()
        with ExitStack() as locks:
            if batch.early is None:
                locks.enter_context(rules.file_lock(source.file_id))
                locks.enter_context(rules.lock(source, what=self._lock_subject))
                stats = upload_file(
                    rules.client,
                    rules.model,
                    source.file_id,
                    spool.chunk_pieces,
                    total_chunks=spool.chunk_count,
                )
            else:
                stats = batch.early.finish()
            verdict = run_and_judge(
                rules,
                source.actions,
                subject=f"stream {self.stream!r}",
                target=f" into file {source.file_name!r}",
                rows=spool.rows,
            )
        return stats, verdict, time.monotonic() - started

    def _dry_run(self, directory: Path, batch: _Batch) -> int:
        """Write what the commit would upload to ``directory``, change nothing, and say what
        would have happened. Counts as no commit: nothing reached Anaplan."""
        rows = batch.spool.rows
        directory.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9._-]", "_", self.stream)
        number = len(self.report.dry_run_files) + 1
        path = directory / (f"{name}.csv" if number == 1 else f"{name}-{number}.csv")
        with path.open("wb") as out:
            for chunk in batch.spool.chunk_pieces():
                for piece in chunk:
                    out.write(piece)
        actions = ", ".join(a.label for a in self._data_source.actions) or "no import"
        logger.info(
            "Dry run: stream %s would upload %d rows (%d bytes) to file %s, then run %s; "
            "written to %s",
            self.stream,
            rows,
            batch.spool.raw_bytes,
            self._data_source.file_name,
            actions,
            path,
        )
        if self.tracking is not None and batch.sealed is not None:
            self.tracking.forget_commit(batch.sealed)
        self.report.dry_run_files.append(str(path))
        self.report.sent += rows
        self.report.bytes_raw += batch.spool.raw_bytes
        batch.spool.close()
        return 0

    def summary(self) -> StreamReport:
        """The stream's part of the run summary."""
        report = self.report
        report.received = self._records
        if self.tracking is not None:
            report.changes = dataclasses.asdict(self.tracking.counts)
        return report

    def _record(self, sealed: Sealed, verdict: Verdict, *, clearing: bool) -> None:
        """Tell the change store what the commit loaded: not the rows Anaplan failed or
        ignored (those must travel again), and nothing at all when that cannot be told."""
        tracking = self.tracking
        assert tracking is not None  # a sealed batch implies tracking
        not_loaded = verdict.rows_not_loaded()
        if not_loaded is None:
            logger.warning(
                "Stream %s: Anaplan did not load %d row(s) and the dumps do not say which; "
                "change tracking records none of this commit's rows, so the next run sends "
                "them again.",
                self.stream,
                verdict.failed + verdict.ignored,
            )
            tracking.forget_commit(sealed)
            return
        first = self._data_source.layout.first_data_row
        tracking.record_commit(
            sealed, with_gone=clearing, not_loaded={line - first for line in not_loaded}
        )

    def apply_deletes(self) -> int:
        """``deletes: delete``, after every stream committed: delete the gone keys' items,
        then tell the change store. Returns how many were deleted."""
        tracking = self.tracking
        if tracking is None or tracking.deletes != "delete" or not tracking.gone_pending:
            return 0
        assert self._deleter is not None  # resolution checked it
        count = tracking.gone_pending
        if self._rules.dry_run_dir is not None:
            logger.info(
                "Dry run: stream %s would delete %d item(s) that left the source",
                self.stream,
                count,
            )
            return 0
        self._deleter.delete([key_values(key)[0] for key in batch] for batch in tracking.gone())
        tracking.record_commit(tracking.seal(), with_gone=True)
        logger.info("Stream %s: deleted %d item(s) that left the source", self.stream, count)
        return count

    def close(self) -> None:
        """Stop an early upload, delete the spool file (and the rows held for change
        tracking). A commit left running is not waited for (the run ends)."""
        for pool in (self._committer, self._looker):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
        if self._early is not None:
            self._early.close()
        self._spool.close()
        if self.tracking is not None:
            self.tracking.close()

    def _warn_changes(self) -> None:
        """One warning per kind of value changed to fit the file, per stream."""
        changes = dict(self._formatter.changes)
        replaced = self._replaced_characters + self._spool.replaced_characters
        if replaced:
            changes[f"characters replaced by '?' for {self._spool.encoding}"] = replaced
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


@dataclass(frozen=True)
class Verdict:
    """What the imports of a commit did: their outcomes, the rows they failed or ignored
    (within what the settings allow), and the failure dumps kept."""

    outcomes: list[TaskOutcome] = field(default_factory=list)
    failed: int = 0
    ignored: int = 0
    dumps: list[Path] = field(default_factory=list)

    def rows_not_loaded(self) -> set[int] | None:
        """The data rows (0-based, in upload order) Anaplan did not load: none, those the
        dumps list, or None when that cannot be told (a count without its dump rows)."""
        if not self.failed and not self.ignored:
            return set()
        lines: set[int] = set()
        for path in self.dumps:
            found = failed_lines(path)
            if found is None:
                return None
            lines |= found
        return lines if len(lines) >= self.failed + self.ignored else None


def run_and_judge(
    rules: CommitRules,
    actions: Sequence[ActionRef],
    *,
    subject: str,
    target: str = "",
    rows: int | None = None,
) -> Verdict:
    """Run ``actions`` and judge their outcomes: fail on a failed task, or when more rows
    were failed or ignored than the settings allow; every failure dump is kept.

    ``subject`` ("stream 'orders'") and ``target`` (" into file 'orders.csv'") name what
    was loaded in messages; ``rows`` is how many rows the commit held.
    """
    if not actions:
        return Verdict()
    try:
        outcomes = run_actions(
            rules.client,
            rules.model,
            actions,
            parallel=rules.parallel,
            poll_interval_s=rules.poll_interval_s,
            timeout_s=rules.import_timeout_s,
            progress_every_s=rules.progress_interval_s,
        )
    except ActionFailedError as exc:
        where = _dump_note(download_dumps(rules, list(exc.outcomes)))
        held = f" ({rows} rows not loaded)" if rows is not None else ""
        msg = f"{subject[:1].upper()}{subject[1:]}{held}: {exc}.{where}"
        raise ActionFailedError(msg, outcomes=exc.outcomes) from exc
    dumps = download_dumps(rules, outcomes)
    where = _dump_note(dumps)
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
    return Verdict(outcomes, totals["failedCount"], totals["ignoredCount"], dumps)


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


def _import_counts(outcomes: list[TaskOutcome]) -> dict[str, ImportCounts]:
    """Rows each import (each process step) loaded, failed and ignored."""
    return {
        leaf.action.label: ImportCounts(
            success=leaf.counts.get("successRowCount", 0),
            failed=leaf.counts.get("failedCount", 0),
            ignored=leaf.counts.get("ignoredCount", 0),
        )
        for outcome in outcomes
        for leaf in _leaves(outcome)
    }


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
