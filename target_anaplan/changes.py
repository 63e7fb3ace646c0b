"""Change tracking: what each data source already holds, so that only changes travel.

The change store (``change_store``, a SQLAlchemy URL: a SQLite file per model by default,
or PostgreSQL) keeps, per data source, every key loaded with two 64-bit fingerprints: of
its row as written to the CSV, and of its record as received (``raw``, salted with what
turns a record into a row: the schema, the stream's settings, the file's layout). During
a run, each batch of keys is looked up in one query. A record whose raw fingerprint is the
stored one is *unchanged* without being formatted at all (a full-table tap resending a
million rows costs a decode and a look-up each); any other row is formatted, and is *new*
(key never loaded), *changed* (row fingerprint differs) or *unchanged*. ``insert`` mode
sends new rows, ``upsert`` new and changed ones, ``all`` everything.

What a batch would change is held (on disk, in the run's private files) and reaches the
store in one transaction after the commit's imports (and deletes) succeeded, on the
commit's thread while the next batch is read. Until then the batch's rows are judged
against those held fingerprints, never the store's older ones. A failed, killed or
interrupted run leaves the store as it was, so the rerun sends the same rows again.

Keys that leave the source (a record with ``_sdc_deleted_at``, a table version closed by
ACTIVATE_VERSION without them, or a ``full_snapshot`` stream's input ending without them)
are found against the scratch's set of keys seen, and deleted from the list or cleared in
the module by the stream's load.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import marshal
import os
import sqlite3
import tempfile
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import msgspec
import xxhash

from target_anaplan.errors import TargetAnaplanError

if TYPE_CHECKING:
    from target_anaplan.change_store import ChangeStore

logger = logging.getLogger(__name__)

LOOKUP_BATCH = 1000  # keys per look-up query (the formatter's batch)
WRITE_BATCH = 10_000  # rows per executemany
Mode = Literal["insert", "upsert", "all"]
Deletes = Literal["ignore", "delete", "clear"]
# Bump when a record's raw fingerprint would no longer stand for the same row.
RAW_VERSION = 1


class ChangeStoreError(TargetAnaplanError):
    """The change store cannot be opened, read or written."""


def source_id(model_id: str, file_id: str) -> str:
    """How the store names a data source: its model and file."""
    return f"{model_id}/{file_id}"


def fingerprints(rows: Iterable[str]) -> list[int]:
    """Each row's fingerprint: 63 bits of XXH3 of its CSV text (a signed 64-bit integer
    in any database)."""
    hash64 = xxhash.xxh3_64_intdigest
    return [hash64(row.encode("utf-8", "surrogatepass")) >> 1 for row in rows]


def raw_fingerprints(salt: int, records: Iterable[msgspec.Raw]) -> list[int]:
    """Each record's raw fingerprint: 63 bits of XXH3, seeded with ``salt`` (what turns a
    record into a row), of its JSON text as the tap sent it."""
    hash64 = xxhash.xxh3_64_intdigest
    return [hash64(record, salt) >> 1 for record in records]


def salt(*parts: Any) -> int:
    """A seed for raw fingerprints from what makes a record's row (JSON-able parts)."""
    text = json.dumps([RAW_VERSION, *parts], sort_keys=True, default=str)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


class Scratch:
    """A run's private working set on disk, per stream: keys seen and keys gone from the
    source (for deletes).

    A plain SQLite file next to the spool files, written with the standard library's
    driver: it is private to the run and thrown away with it, so it needs no portability,
    and its many small writes are several times faster without SQLAlchemy's layer.
    """

    def __init__(self, path: Path) -> None:
        # Readable by the owner only, like the spool: it holds the rows' keys.
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.executescript(
            """
            PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;
            CREATE TABLE seen (stream TEXT, key TEXT, PRIMARY KEY (stream, key)) WITHOUT ROWID;
            CREATE TABLE gone (stream TEXT, key TEXT, PRIMARY KEY (stream, key)) WITHOUT ROWID;
            """
        )

    def see(self, stream: str, keys: Iterable[str]) -> None:
        self._db.executemany(
            "INSERT OR IGNORE INTO seen VALUES (?, ?)", ((stream, k) for k in keys)
        )

    def seen(self, stream: str, keys: Sequence[str]) -> set[str]:
        """Which of ``keys`` were seen in this run."""
        return {key for (key,) in self._among("SELECT key FROM seen", stream, keys)}

    def mark_gone(self, stream: str, keys: Iterable[str]) -> None:
        self._db.executemany(
            "INSERT OR IGNORE INTO gone VALUES (?, ?)", ((stream, k) for k in keys)
        )

    def gone(self, stream: str) -> Iterator[list[str]]:
        """The keys gone from the source, in batches."""
        cursor = self._db.execute("SELECT key FROM gone WHERE stream = ? ORDER BY key", (stream,))
        while batch := cursor.fetchmany(WRITE_BATCH):
            yield [key for (key,) in batch]

    def gone_count(self, stream: str) -> int:
        return int(
            self._db.execute("SELECT count(*) FROM gone WHERE stream = ?", (stream,)).fetchone()[0]
        )

    def forget_gone(self, stream: str) -> None:
        self._db.execute("DELETE FROM gone WHERE stream = ?", (stream,))

    def _among(self, select: str, stream: str, keys: Sequence[str]) -> list[Any]:
        """The rows of ``select`` for the stream whose key is one of ``keys`` (one query)."""
        if not keys:
            return []
        marks = ",".join("?" * len(keys))
        query = f"{select} WHERE stream = ? AND key IN ({marks})"
        return self._db.execute(query, (stream, *keys)).fetchall()

    def close(self) -> None:
        self._db.close()


Loaded = tuple[str, int, "int | None"]  # a row held for the store: key, fingerprints


class HeldRows:
    """The rows a stream's next commit would teach the store, on disk (memory stays flat
    whatever the batch): appended a batch at a time, read back once the commit succeeded,
    in the layout the store writes (so that a commit copies no row)."""

    def __init__(self, directory: Path) -> None:
        fd, self._path = tempfile.mkstemp(prefix="target-anaplan-held-", dir=directory)
        self._file = os.fdopen(fd, "w+b")
        self.count = 0

    def add(self, loaded: list[Loaded], lines: list[int]) -> None:
        """Rows (key, fingerprint, raw fingerprint) at their row numbers in the upload (-1:
        not sent, only their record is new)."""
        if loaded:
            data = marshal.dumps((loaded, lines))
            self._file.write(len(data).to_bytes(8, "little") + data)
            self.count += len(loaded)

    def batches(self, not_loaded: Collection[int] = ()) -> Iterator[list[Loaded]]:
        """The held rows in batches, less those at the upload's row numbers ``not_loaded``."""
        self._file.flush()
        self._file.seek(0)
        while size := int.from_bytes(self._file.read(8), "little"):
            loaded, lines = marshal.loads(self._file.read(size))
            if not_loaded:
                loaded = [row for row, n in zip(loaded, lines, strict=True) if n not in not_loaded]
            yield loaded

    def close(self) -> None:
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path)


@dataclass
class ChangeCounts:
    """What change tracking decided in one run, for the log and the run summary."""

    new: int = 0
    changed: int = 0
    unchanged: int = 0
    deleted: int = 0

    def describe(self, mode: Mode) -> str:
        """``new 3, changed 1, unchanged 6 (skipped), deleted 1``: what mode did with them."""
        skipped = {"insert": "changed and unchanged skipped", "upsert": "unchanged skipped"}
        note = f" ({skipped[mode]})" if mode in skipped else ""
        return (
            f"new {self.new}, changed {self.changed}, unchanged {self.unchanged}, "
            f"deleted {self.deleted}{note}"
        )


@dataclass(frozen=True)
class Known:
    """What the store held of some keys (key -> row and raw fingerprints), and how many of
    the stream's commits it had recorded before it was looked up."""

    rows: dict[str, tuple[int, int | None]]
    as_of: int


@dataclass(frozen=True)
class Sealed:
    """The rows one commit would teach the store, set aside when the commit starts (the
    next batch is tracked meanwhile): held rows on disk, and their keys' fingerprints."""

    held: HeldRows
    pending: dict[str, int]


@dataclass
class StreamTracking:
    """Change tracking of one stream in one run.

    Keys (each record's key as text) and rows (its CSV line) come in batches; ``choose``
    returns which lines to spool. ``prefilter`` first drops records whose raw fingerprint
    says they are unchanged, before they are formatted. A commit ``seal``s what the batch
    would teach the store and, once Anaplan took it, ``record_commit``s it. ``close_snapshot``
    records that the source sent its whole table; at end of input, keys not seen since then
    are gone.
    """

    store: ChangeStore
    scratch: Scratch
    directory: Path  # for the held rows' files
    stream: str
    source: str
    mode: Mode
    deletes: Deletes
    full_snapshot: bool = False
    counts: ChangeCounts = field(default_factory=ChangeCounts)
    known_at_start: int = field(init=False)  # keys the store held at start
    snapshot_closed: bool = False
    gone_pending: int = 0  # keys gone from the source and not yet deleted or cleared
    # Insert and upsert: key -> row fingerprint of the rows held for the next commit (and
    # of commits still running), so a key met twice before the store knows it is judged
    # against its latest row (bounded by the commit's batch). All mode sends every row
    # anyway and keeps none of them here.
    _pending: dict[str, int] = field(default_factory=dict)
    _running: list[dict[str, int]] = field(default_factory=list)
    held: HeldRows = field(init=False)
    recorded: int = 0  # commits recorded in the store so far (a look-up before is stale)

    def __post_init__(self) -> None:
        self.known_at_start = self.store.count(self.source)
        self.held = HeldRows(self.directory)

    @property
    def filters(self) -> bool:
        """Whether some rows are not sent (insert and upsert modes)."""
        return self.mode != "all"

    def look_up(self, keys: Sequence[str]) -> Known:
        """What the store holds of ``keys`` (one query; safe on another thread)."""
        as_of = self.recorded  # read first: a commit recorded after it makes this stale
        return Known(self.store.lookup(self.source, list(dict.fromkeys(keys))), as_of)

    def _still_running(self) -> list[dict[str, int]]:
        """The fingerprints held for commits running and not yet recorded, oldest first
        (taken once per batch: a commit's thread drops its own once recorded)."""
        return [fingerprints for fingerprints in tuple(self._running) if fingerprints]

    def _current(self, keys: Sequence[str], known: Known | None) -> Known:
        """``known``, or a new look-up if a commit was recorded since it was made. Called
        after ``_still_running``: a commit whose fingerprints were gone by then had been
        recorded before, so either the look-up saw its rows or ``recorded`` moved."""
        if known is None or known.as_of != self.recorded:
            return self.look_up(keys)
        return known

    def prefilter(
        self, keys: Sequence[str], raws: Sequence[int], known: Known
    ) -> tuple[list[int], Known]:
        """Which records of a batch need formatting (their indices), given what the store
        holds of their keys (``look_up``, looked up again if stale); the others are
        unchanged since their raw fingerprint is the stored one and no commit holds their
        key (counted, and seen for deletes). Insert and upsert modes only."""
        held = [self._pending, *self._still_running()] if self._pending else self._still_running()
        known = self._current(keys, known)
        stored_rows = known.rows
        kept: list[int] = []
        unchanged: list[str] = []
        for index, (key, raw) in enumerate(zip(keys, raws, strict=True)):
            stored = stored_rows.get(key)
            if (
                stored is not None
                and stored[1] == raw
                and not (held and any(key in fingerprints for fingerprints in held))
            ):
                unchanged.append(key)
            else:
                kept.append(index)
        self.counts.unchanged += len(unchanged)
        if unchanged and self.deletes != "ignore":
            self.scratch.see(self.stream, unchanged)
        return kept, known

    def choose(
        self,
        keys: Sequence[str],
        rows: Sequence[str],
        first_line: int,
        raws: Sequence[int | None] | None = None,
        known: Known | None = None,
    ) -> list[int]:
        """Which rows of a batch to send (their indices), by the stream's mode; what they
        would change is held until the commit succeeds. ``first_line`` is the row number
        (0-based, in the upload) the first row sent will have; ``raws`` the records' raw
        fingerprints, if known; ``known`` what the store holds of the keys, if looked up."""
        if self.deletes != "ignore":
            self.scratch.see(self.stream, keys)
        running = self._still_running()
        stored_rows = self._current(keys, known).rows
        pending = self._pending
        if not stored_rows and _all_new(keys, [pending, *running]):
            return self._choose_new(keys, rows, first_line, raws)
        filters = self.filters
        counts = self.counts
        insert = self.mode == "insert"
        chosen: list[int] = []
        loaded: list[Loaded] = []  # what the store learns once the commit succeeded
        lines: list[int] = []  # their row numbers in the upload (-1: not sent)
        if raws is None:
            raws = [None] * len(keys)
        for index, (key, print_, raw) in enumerate(
            zip(keys, fingerprints(rows), raws, strict=True)
        ):
            stored = stored_rows.get(key)
            before = pending.get(key)
            if before is None and running:
                before = _latest(key, running)
            if before is None and stored is not None:
                before = stored[0]
            if before is None:
                counts.new += 1
            elif before != print_:
                counts.changed += 1
                if insert:
                    continue
            else:
                counts.unchanged += 1
                if filters:
                    if raw is not None and stored is not None and stored[1] != raw:
                        loaded.append((key, print_, raw))  # same row, record now known
                        lines.append(-1)
                    continue
            if filters:
                pending[key] = print_
            loaded.append((key, print_, raw))
            lines.append(first_line + len(chosen))
            chosen.append(index)
        self.held.add(loaded, lines)
        return chosen

    def _choose_new(
        self,
        keys: Sequence[str],
        rows: Sequence[str],
        first_line: int,
        raws: Sequence[int | None] | None,
    ) -> list[int]:
        """``choose`` for a batch of new rows only: every one is sent."""
        prints = fingerprints(rows)
        self.counts.new += len(keys)
        if self.filters:
            self._pending.update(zip(keys, prints, strict=True))
        raws = [None] * len(keys) if raws is None else raws
        self.held.add(
            list(zip(keys, prints, raws, strict=True)),
            list(range(first_line, first_line + len(keys))),
        )
        return list(range(len(keys)))

    def seal(self) -> Sealed:
        """Set aside what the batch being committed would teach the store; the next batch
        is tracked in fresh places meanwhile."""
        sealed = Sealed(self.held, self._pending)
        self._running.append(sealed.pending)
        self.held = HeldRows(self.directory)
        self._pending = {}
        return sealed

    def mark_gone(self, keys: Sequence[str]) -> None:
        """Records the source says were deleted (``_sdc_deleted_at``)."""
        self.scratch.mark_gone(self.stream, keys)
        self.gone_pending = self.scratch.gone_count(self.stream)

    def close_snapshot(self) -> None:
        """ACTIVATE_VERSION closed a table version: the rows since were the whole table."""
        self.snapshot_closed = True

    def find_gone(self) -> int:
        """At the normal end of input: every known key the snapshot did not include is gone.
        Returns how many keys are gone in all (with those deleted by the source)."""
        if self.deletes != "ignore" and (self.snapshot_closed or self.full_snapshot):
            for batch in self.store.keys(self.source):
                seen = self.scratch.seen(self.stream, batch)
                self.scratch.mark_gone(self.stream, [k for k in batch if k not in seen])
        self.gone_pending = self.scratch.gone_count(self.stream)
        return self.gone_pending

    def gone(self) -> Iterator[list[str]]:
        """The keys gone from the source, in batches."""
        return self.scratch.gone(self.stream)

    def record_commit(
        self, sealed: Sealed, *, with_gone: bool = False, not_loaded: Collection[int] = ()
    ) -> None:
        """The commit's imports (or deletes) succeeded: the store learns its rows, but those
        at the upload's row numbers ``not_loaded`` (and the gone keys it deleted or
        cleared, ``with_gone``), in one transaction."""
        removed = self.scratch.gone(self.stream) if with_gone else ()
        try:
            self.store.record(self.source, sealed.held.batches(not_loaded), removed)
        except ChangeStoreError as error:
            raise ChangeStoreError(
                f"Anaplan took the commit of stream {self.stream!r}, but it could not be "
                f"recorded: {error} The next run sends these rows again (imports update "
                "rows, so that is safe)."
            ) from None
        self.recorded += 1  # before the fingerprints go: see ``_current``
        self.forget_commit(sealed)
        if with_gone:
            self.counts.deleted += self.gone_pending
            self.scratch.forget_gone(self.stream)
            self.gone_pending = 0

    def forget_commit(self, sealed: Sealed) -> None:
        """The commit's rows are recorded, or will not be (the next run sends them again)."""
        sealed.held.close()
        if sealed.pending in self._running:
            self._running.remove(sealed.pending)

    def finish(self) -> None:
        """At the end of a run that committed everything: rows held without being sent (an
        unchanged row whose record is now known) are recorded, so the next run skips them
        before formatting. Nothing held was sent, so nothing is marked as loaded here."""
        if self.held.count and not self.store.read_only:
            self.record_commit(self.seal())

    def close(self) -> None:
        self.held.close()


def _latest(key: str, held: Sequence[dict[str, int]]) -> int | None:
    """The fingerprint of the key's newest row held by a running commit, if any."""
    for fingerprints in reversed(held):
        found = fingerprints.get(key)
        if found is not None:
            return found
    return None


def _all_new(keys: Sequence[str], held: Sequence[dict[str, int]]) -> bool:
    """Whether no key of a batch the store does not hold was met before in this run (nor
    twice in the batch): then every row is new, as a first load's are."""
    distinct = set(keys)
    return len(distinct) == len(keys) and all(
        fingerprints.keys().isdisjoint(distinct) for fingerprints in held
    )


def key_texts(columns: Sequence[Sequence[str]]) -> list[str]:
    """Each row's key (``key_text``) from the key fields' texts, a column each. Texts JSON
    writes as they are (no quote, backslash or control character) are wrapped directly,
    which is ten times faster than encoding each key."""
    if not columns:
        return []
    joined = "".join("".join(column) for column in columns)
    if '"' in joined or "\\" in joined or not joined.isprintable():
        return [key_text(values) for values in zip(*columns, strict=True)]
    if len(columns) == 1:
        return ['["' + value + '"]' for value in columns[0]]
    return ['["' + '","'.join(values) + '"]' for values in zip(*columns, strict=True)]


def key_text(values: Sequence[str]) -> str:
    """A record's key as the store keeps it: its fields' CSV texts, as a JSON array."""
    return json.dumps(list(values), ensure_ascii=False, separators=(",", ":"))


def key_values(key: str) -> list[str]:
    """The fields' texts of a stored key."""
    values: list[str] = json.loads(key)
    return values
