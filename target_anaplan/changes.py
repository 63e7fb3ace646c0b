"""Change tracking: what each data source already holds, so that only changes travel.

The change store (``change_store``, a SQLAlchemy URL: a SQLite file per model by default,
or PostgreSQL) keeps, per data source, every key loaded and a fingerprint of its row as
written to the CSV. During a run, each batch of rows is looked up in one query; a row is
*new* (key never loaded), *changed* (fingerprint differs) or *unchanged*. ``insert`` mode
sends new rows, ``upsert`` new and changed ones, ``all`` everything.

Nothing is written to the store while the run reads: what a batch would change waits in
the run's scratch file (``Scratch``) and reaches the store in one transaction after the
commit's imports (and deletes) succeeded. A failed, killed or interrupted run leaves the
store as it was, so the rerun sends the same rows again.

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
import os
import sqlite3
import zlib
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from target_anaplan.errors import TargetAnaplanError

logger = logging.getLogger(__name__)

LOOKUP_BATCH = 1000  # keys per look-up query (the formatter's batch)
WRITE_BATCH = 10_000  # rows per executemany
Mode = Literal["insert", "upsert", "all"]
Deletes = Literal["ignore", "delete", "clear"]

_METADATA = sa.MetaData()
ROWS = sa.Table(
    "target_anaplan_rows",
    _METADATA,
    sa.Column("source", sa.String(200), primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("fingerprint", sa.String(32), nullable=False),
    sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
)


class ChangeStoreError(TargetAnaplanError):
    """The change store cannot be opened, read or written."""


def default_store_url(model_id: str) -> str:
    """A SQLite file per model under the user's data directory (works with no setup)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return f"sqlite:///{Path(base) / 'target-anaplan' / 'changes' / f'{model_id}.sqlite'}"


def source_id(model_id: str, file_id: str) -> str:
    """How the store names a data source: its model and file."""
    return f"{model_id}/{file_id}"


def fingerprint(row: str) -> str:
    """A row's fingerprint: 128 bits of BLAKE2b of its CSV text."""
    return hashlib.blake2b(row.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def _shown(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(a URL SQLAlchemy cannot read)"


def _store_error(shown: str, what: str, error: BaseException) -> ChangeStoreError:
    detail = str(getattr(error, "orig", None) or error).splitlines()[0][:200]
    hint = (
        " Install the PostgreSQL driver with `pip install target-anaplan[postgres]`."
        if isinstance(error, ImportError)
        else ""
    )
    return ChangeStoreError(
        f"The change store {shown} {what} ({type(error).__name__}: {detail}). Check "
        f"the setting `change_store`.{hint}"
    )


def probe_store(url: str) -> str:
    """What a run would find in the change store at ``url``, read without creating or
    writing anything (``target-anaplan-admin check``); ChangeStoreError if a run could not
    open it."""
    shown = _shown(url)
    try:
        sqlite_file = _sqlite_file(sa.engine.make_url(url))
        if sqlite_file is not None and not sqlite_file.exists():
            _check_creatable(sqlite_file, shown)
            return f"{shown}: does not exist yet; the first run creates it"
        engine = _read_only(sqlite_file) if sqlite_file is not None else sa.create_engine(url)
    except (sa.exc.SQLAlchemyError, ImportError) as error:
        raise _store_error(shown, "cannot be opened", error) from None
    try:
        with engine.connect() as connection:
            if not sa.inspect(connection).has_table(ROWS.name):
                return f"{shown}: reachable, tracks nothing yet"
            query = sa.select(sa.func.count(sa.distinct(ROWS.c.source)), sa.func.count())
            sources, keys = connection.execute(query.select_from(ROWS)).one()
    except (sa.exc.SQLAlchemyError, OSError) as error:
        raise _store_error(shown, "cannot be read", error) from None
    finally:
        engine.dispose()
    return f"{shown}: reachable, tracks {keys} keys of {sources} data sources"


def _sqlite_file(url: sa.engine.URL) -> Path | None:
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(str(url.database)).expanduser()


def _read_only(path: Path) -> sa.engine.Engine:
    """An engine on an existing SQLite file that cannot write it (waits for a writer)."""
    uri = f"file:{quote(str(path))}?mode=ro"
    return sa.create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True, timeout=60))


def _check_creatable(path: Path, shown: str) -> None:
    """A run creates a missing SQLite store, and the directories above it."""
    existing = path.parent
    while not existing.exists():
        existing = existing.parent
    if not (existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)):
        raise ChangeStoreError(
            f"The change store {shown} cannot be created: {existing} is not a writable "
            "directory. Check the setting `change_store` (default: under $XDG_DATA_HOME)."
        )


class ChangeStore:
    """Keys and row fingerprints per data source, in the database at ``url``.

    ``read_only`` (a dry run) never creates, migrates or writes the store: a SQLite file is
    opened read-only, and a store that does not exist yet, or has no table yet, reads as
    empty (everything is new), as the first real run would find it.
    """

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        self.url = url
        self._shown = _shown(url)
        self.read_only = read_only
        self._empty = False  # read-only, and nothing tracked yet: no file or no table
        self._engine: sa.engine.Engine | None = None
        if read_only:
            self._open_read_only()
            return
        try:
            parsed = sa.engine.make_url(url)
            if parsed.get_backend_name() == "sqlite" and parsed.database:
                Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            engine = self._engine = sa.create_engine(url)
            self.is_postgresql = engine.dialect.name == "postgresql"
            if engine.dialect.name == "sqlite":
                sa.event.listen(engine, "connect", _sqlite_pragmas)
            _METADATA.create_all(engine)
        except (sa.exc.SQLAlchemyError, ImportError, OSError) as error:
            raise self._failure("cannot be opened", error) from None

    def _open_read_only(self) -> None:
        self.is_postgresql = False
        try:
            sqlite_file = _sqlite_file(sa.engine.make_url(self.url))
            if sqlite_file is not None and not sqlite_file.exists():
                self._empty = True
                return
            engine = self._engine = (
                _read_only(sqlite_file) if sqlite_file is not None else sa.create_engine(self.url)
            )
            self.is_postgresql = engine.dialect.name == "postgresql"
            with engine.connect() as connection:
                self._empty = not sa.inspect(connection).has_table(ROWS.name)
        except (sa.exc.SQLAlchemyError, ImportError, OSError) as error:
            raise self._failure("cannot be opened", error) from None

    def _failure(self, what: str, error: BaseException) -> ChangeStoreError:
        return _store_error(self._shown, what, error)

    @property
    def _store_engine(self) -> sa.engine.Engine:
        assert self._engine is not None  # only a read-only store with nothing in it has none
        return self._engine

    def _writable(self) -> sa.engine.Engine:
        if self.read_only:
            raise RuntimeError(f"The change store {self._shown} was opened read-only.")
        return self._store_engine

    def lookup(self, source: str, keys: Sequence[str]) -> dict[str, str]:
        """Key -> fingerprint for those of ``keys`` the data source holds (one query)."""
        if self._empty:
            return {}
        query = sa.select(ROWS.c.key, ROWS.c.fingerprint).where(
            ROWS.c.source == source, ROWS.c.key.in_(list(keys))
        )
        try:
            with self._store_engine.connect() as connection:
                return {key: fp for key, fp in connection.execute(query)}
        except sa.exc.SQLAlchemyError as error:
            raise self._failure("cannot be read", error) from None

    def count(self, source: str) -> int:
        """How many keys the data source holds."""
        if self._empty:
            return 0
        query = sa.select(sa.func.count()).select_from(ROWS).where(ROWS.c.source == source)
        try:
            with self._store_engine.connect() as connection:
                return int(connection.execute(query).scalar_one())
        except sa.exc.SQLAlchemyError as error:
            raise self._failure("cannot be read", error) from None

    def keys(self, source: str, batch: int = LOOKUP_BATCH) -> Iterator[list[str]]:
        """Every key of the data source, in order, a batch at a time (memory stays flat)."""
        if self._empty:
            return
        after = ""
        while True:
            query = (
                sa.select(ROWS.c.key)
                .where(ROWS.c.source == source, ROWS.c.key > after)
                .order_by(ROWS.c.key)
                .limit(batch)
            )
            try:
                with self._store_engine.connect() as connection:
                    page = list(connection.execute(query).scalars())
            except sa.exc.SQLAlchemyError as error:
                raise self._failure("cannot be read", error) from None
            if not page:
                return
            yield page
            after = page[-1]

    def record(
        self,
        source: str,
        loaded: Iterable[Sequence[tuple[str, str]]],
        removed: Iterable[Sequence[str]] = (),
    ) -> None:
        """In one transaction: the (key, fingerprint) batches loaded, the keys removed."""
        now = datetime.now(timezone.utc)
        insert = (postgresql.insert if self.is_postgresql else sqlite.insert)(ROWS)
        upsert = insert.on_conflict_do_update(
            index_elements=[ROWS.c.source, ROWS.c.key],
            set_={"fingerprint": insert.excluded.fingerprint, "loaded_at": now},
        )
        try:
            with self._writable().begin() as connection:
                for batch in loaded:
                    rows = [
                        {"source": source, "key": k, "fingerprint": f, "loaded_at": now}
                        for k, f in batch
                    ]
                    if rows:
                        connection.execute(upsert, rows)
                for keys in removed:
                    if keys:
                        connection.execute(
                            ROWS.delete().where(ROWS.c.source == source, ROWS.c.key.in_(keys))
                        )
        except sa.exc.SQLAlchemyError as error:
            raise self._failure("cannot be written", error) from None

    def forget(self, source: str) -> int:
        """Delete everything known of a data source; returns how many keys it held."""
        try:
            with self._writable().begin() as connection:
                return int(
                    connection.execute(ROWS.delete().where(ROWS.c.source == source)).rowcount
                )
        except sa.exc.SQLAlchemyError as error:
            raise self._failure("cannot be written", error) from None

    def sources(self) -> list[tuple[str, int]]:
        """Every data source the store tracks, with its number of keys."""
        if self._empty:
            return []
        query = sa.select(ROWS.c.source, sa.func.count()).group_by(ROWS.c.source)
        try:
            with self._store_engine.connect() as connection:
                return [(s, int(n)) for s, n in connection.execute(query)]
        except sa.exc.SQLAlchemyError as error:
            raise self._failure("cannot be read", error) from None

    @contextlib.contextmanager
    def advisory_lock(self, name: str) -> Iterator[bool]:
        """Hold a PostgreSQL advisory lock named ``name`` (yields False elsewhere).

        Unlike the per-machine file lock, it keeps runs on different machines that share
        the store from uploading the same file at once.
        """
        if not self.is_postgresql:
            yield False
            return
        lock_id = zlib.crc32(name.encode()) - 2**31  # PostgreSQL's lock ids are signed 64-bit
        try:
            connection = self._store_engine.connect()
            connection.execute(sa.text("SELECT pg_advisory_lock(:id)"), {"id": lock_id})
        except sa.exc.SQLAlchemyError as error:
            raise self._failure("cannot be locked", error) from None
        try:
            yield True
        finally:
            with contextlib.suppress(sa.exc.SQLAlchemyError):
                connection.execute(sa.text("SELECT pg_advisory_unlock(:id)"), {"id": lock_id})
            connection.close()

    def close(self) -> None:
        """Release pooled connections."""
        if self._engine is not None:
            self._engine.dispose()


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    """Several runs may share a SQLite store: wait for each other instead of failing."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.close()


class Scratch:
    """A run's private working set on disk, per stream: keys seen, rows sent but not yet
    committed (with their fingerprints), and keys gone from the source.

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
            CREATE TABLE pending (stream TEXT, key TEXT, fp TEXT, line INTEGER,
                PRIMARY KEY (stream, key)) WITHOUT ROWID;
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

    def hold(self, stream: str, rows: Iterable[tuple[str, str, int]]) -> None:
        """Rows spooled (key, fingerprint, row number in the upload): the store learns them
        when the commit succeeds."""
        self._db.executemany(
            "INSERT OR REPLACE INTO pending VALUES (?, ?, ?, ?)",
            ((stream, k, f, n) for k, f, n in rows),
        )

    def held(self, stream: str, keys: Sequence[str]) -> dict[str, str]:
        """Key -> fingerprint for those of ``keys`` spooled and not yet committed."""
        return dict(self._among("SELECT key, fp FROM pending", stream, keys))

    def held_rows(
        self, stream: str, not_loaded: Collection[int] = ()
    ) -> Iterator[list[tuple[str, str]]]:
        """The held (key, fingerprint) rows of a stream, in batches, less those at the
        upload's row numbers ``not_loaded``."""
        cursor = self._db.execute("SELECT key, fp, line FROM pending WHERE stream = ?", (stream,))
        while batch := cursor.fetchmany(WRITE_BATCH):
            yield [(key, fp) for key, fp, line in batch if line not in not_loaded]

    def release(self, stream: str) -> None:
        """The held rows are committed (or dropped)."""
        self._db.execute("DELETE FROM pending WHERE stream = ?", (stream,))

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


@dataclass
class StreamTracking:
    """Change tracking of one stream in one run.

    ``keys`` (the key of each record as text) and ``rows`` (its CSV line) come in batches;
    ``choose`` returns the lines to spool. ``close_snapshot`` records that the source sent
    its whole table; at end of input, keys not seen since then are gone.
    """

    store: ChangeStore
    scratch: Scratch
    stream: str
    source: str
    mode: Mode
    deletes: Deletes
    full_snapshot: bool = False
    counts: ChangeCounts = field(default_factory=ChangeCounts)
    known_at_start: int = -1
    snapshot_closed: bool = False
    gone_pending: int = 0  # keys gone from the source and not yet deleted or cleared

    def __post_init__(self) -> None:
        self.known_at_start = self.store.count(self.source)

    def choose(self, keys: Sequence[str], rows: Sequence[str], first_line: int) -> list[int]:
        """Which rows of a batch to send (their indices), by the stream's mode; what they
        would change is held until the commit succeeds. ``first_line`` is the row number
        (0-based, in the upload) the first row sent will have."""
        if self.deletes != "ignore":
            self.scratch.see(self.stream, keys)
        distinct = list(dict.fromkeys(keys))
        known = self.store.lookup(self.source, distinct)
        known.update(self.scratch.held(self.stream, distinct))
        chosen: list[int] = []
        held: list[tuple[str, str, int]] = []
        for index, (key, row) in enumerate(zip(keys, rows, strict=True)):
            print_ = fingerprint(row)
            before = known.get(key)
            if before is None:
                self.counts.new += 1
            elif before != print_:
                self.counts.changed += 1
                if self.mode == "insert":
                    continue
            else:
                self.counts.unchanged += 1
                if self.mode != "all":
                    continue
            known[key] = print_
            held.append((key, print_, first_line + len(chosen)))
            chosen.append(index)
        self.scratch.hold(self.stream, held)
        return chosen

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

    def record_commit(self, *, with_gone: bool = False, not_loaded: Collection[int] = ()) -> None:
        """The commit's imports succeeded: the store learns its rows, but those at the
        upload's row numbers ``not_loaded`` (and the gone keys it deleted or cleared), in
        one transaction."""
        removed = self.scratch.gone(self.stream) if with_gone else ()
        loaded = self.scratch.held_rows(self.stream, not_loaded)
        try:
            self.store.record(self.source, loaded, removed)
        except ChangeStoreError as error:
            raise ChangeStoreError(
                f"Anaplan took the commit of stream {self.stream!r}, but it could not be "
                f"recorded: {error} The next run sends these rows again (imports update "
                "rows, so that is safe)."
            ) from None
        self.scratch.release(self.stream)
        if with_gone:
            self.counts.deleted += self.gone_pending
            self.scratch.forget_gone(self.stream)
            self.gone_pending = 0

    def forget_commit(self) -> None:
        """The commit's rows are not recorded: the next run sends them again."""
        self.scratch.release(self.stream)


def key_text(values: Sequence[str]) -> str:
    """A record's key as the store keeps it: its fields' CSV texts, as a JSON array."""
    return json.dumps(list(values), ensure_ascii=False, separators=(",", ":"))


def key_values(key: str) -> list[str]:
    """The fields' texts of a stored key."""
    values: list[str] = json.loads(key)
    return values
