"""The change store: keys and fingerprints per data source, in SQLite or PostgreSQL.

What ``changes.py`` decides is kept here between runs (``change_store``, a SQLAlchemy URL:
a SQLite file per model by default). SQLAlchemy is imported only by this module, so a run
without change tracking never loads it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import zlib
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import msgspec
import sqlalchemy as sa

from target_anaplan.changes import LOOKUP_BATCH, ChangeStoreError

logger = logging.getLogger(__name__)

_JSON = msgspec.json.Encoder()

_METADATA = sa.MetaData()
SOURCES = sa.Table(
    "target_anaplan_sources",
    _METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(200), nullable=False, unique=True),
    sa.Column("loaded_at", sa.String(32), nullable=True),  # the last commit it recorded
)
KEYS = sa.Table(
    "target_anaplan_keys",
    _METADATA,
    sa.Column("source_id", sa.Integer, primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("fingerprint", sa.BigInteger, nullable=False),
    sa.Column("raw", sa.BigInteger, nullable=True),
    sqlite_with_rowid=False,
)
# The statements a run makes per key, written for the database: each is one statement for
# a whole batch, so the database works without Python's lock (a commit records its rows on
# a worker thread while the next batch is read), and SQLAlchemy's per-row parameter
# handling, which would cost more than the database, is not in the way. The rows travel as
# one JSON array (SQLite) or as arrays (PostgreSQL).
_UPSERT_END = (
    " ON CONFLICT (source_id, key) DO UPDATE SET fingerprint = excluded.fingerprint, "
    "raw = excluded.raw"
)
_UPSERT = {
    "sqlite": "INSERT INTO target_anaplan_keys (source_id, key, fingerprint, raw) "
    "SELECT ?, json_extract(value, '$[0]'), json_extract(value, '$[1]'), "
    "json_extract(value, '$[2]') FROM json_each(?) WHERE true" + _UPSERT_END,
    "postgresql": "INSERT INTO target_anaplan_keys (source_id, key, fingerprint, raw) "
    "SELECT %s, k, f, r FROM unnest(%s::text[], %s::bigint[], %s::bigint[]) AS t(k, f, r)"
    + _UPSERT_END,
}
_LOOKUP = {
    "sqlite": "SELECT json_group_array(json_array(key, fingerprint, raw)) "
    "FROM target_anaplan_keys WHERE source_id = ? AND key IN (SELECT value FROM json_each(?))",
    "postgresql": "SELECT key, fingerprint, raw FROM target_anaplan_keys "
    "WHERE source_id = %s AND key = ANY(%s)",
}


def default_store_url(model_id: str) -> str:
    """A SQLite file per model under the user's data directory (works with no setup)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return f"sqlite:///{Path(base) / 'target-anaplan' / 'changes' / f'{model_id}.sqlite'}"


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
            if not sa.inspect(connection).has_table(KEYS.name):
                return f"{shown}: reachable, tracks nothing yet"
            query = sa.select(sa.func.count(sa.distinct(KEYS.c.source_id)), sa.func.count())
            sources, keys = connection.execute(query.select_from(KEYS)).one()
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
        self._source_ids: dict[str, int] = {}
        if read_only:
            self._open_read_only()
            return
        try:
            parsed = sa.engine.make_url(url)
            if parsed.get_backend_name() == "sqlite" and parsed.database:
                Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            engine = self._engine = sa.create_engine(url)
            self.is_postgresql = engine.dialect.name == "postgresql"
            if engine.dialect.name not in _UPSERT:
                raise ChangeStoreError(
                    f"The change store {self._shown} is a {engine.dialect.name} database; "
                    "change tracking keeps its store in SQLite (sqlite:///path) or PostgreSQL "
                    "(postgresql+psycopg://...). Check the setting `change_store`."
                )
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
                self._empty = not sa.inspect(connection).has_table(KEYS.name)
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

    def _source_id(self, source: str, *, create: bool = False) -> int | None:
        """The store's number for a data source (made on first write), or None."""
        known = self._source_ids.get(source)
        if known is not None or self._empty:
            return known
        query = sa.select(SOURCES.c.id).where(SOURCES.c.source == source)
        try:
            with self._store_engine.connect() as connection:
                found = connection.execute(query).scalar()
            if found is None and create:
                with (
                    contextlib.suppress(sa.exc.IntegrityError),  # another run made it
                    self._writable().begin() as connection,
                ):
                    connection.execute(SOURCES.insert().values(source=source))
                with self._store_engine.connect() as connection:
                    found = connection.execute(query).scalar()
        except sa.exc.SQLAlchemyError as error:
            raise self._failure("cannot be read", error) from None
        if found is not None:
            self._source_ids[source] = int(found)
        return None if found is None else int(found)

    @property
    def _driver_error(self) -> type[Exception]:
        """The base class of the driver's own errors (its cursor is used for look-ups)."""
        error: type[Exception] = self._store_engine.dialect.loaded_dbapi.Error
        return error

    @property
    def _dialect(self) -> str:
        return str(self._store_engine.dialect.name)

    def lookup(self, source: str, keys: Sequence[str]) -> dict[str, tuple[int, int | None]]:
        """Key -> (row fingerprint, raw fingerprint) for those of ``keys`` the data source
        holds (one query)."""
        number = self._source_id(source)
        if number is None or not keys:
            return {}
        sqlite = self._dialect == "sqlite"
        try:
            with self._store_engine.connect() as connection:
                # The driver's own cursor: SQLAlchemy's result rows cost more than the query.
                cursor = connection.connection.cursor()
                try:
                    cursor.execute(
                        _LOOKUP[self._dialect],
                        (number, _JSON.encode(keys).decode() if sqlite else list(keys)),
                    )
                    rows = cursor.fetchall()
                finally:
                    cursor.close()
        except (sa.exc.SQLAlchemyError, self._driver_error) as error:
            raise self._failure("cannot be read", error) from None
        found = msgspec.json.decode(rows[0][0]) if sqlite else rows
        return {key: (fp, raw) for key, fp, raw in found}

    def count(self, source: str) -> int:
        """How many keys the data source holds."""
        number = self._source_id(source)
        if number is None:
            return 0
        query = sa.select(sa.func.count()).select_from(KEYS).where(KEYS.c.source_id == number)
        try:
            with self._store_engine.connect() as connection:
                return int(connection.execute(query).scalar_one())
        except sa.exc.SQLAlchemyError as error:
            raise self._failure("cannot be read", error) from None

    def keys(self, source: str, batch: int = LOOKUP_BATCH) -> Iterator[list[str]]:
        """Every key of the data source, in order, a batch at a time (memory stays flat)."""
        number = self._source_id(source)
        if number is None:
            return
        after = ""
        while True:
            query = (
                sa.select(KEYS.c.key)
                .where(KEYS.c.source_id == number, KEYS.c.key > after)
                .order_by(KEYS.c.key)
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
        loaded: Iterable[Sequence[tuple[str, int, int | None]]],
        removed: Iterable[Sequence[str]] = (),
    ) -> None:
        """In one transaction: the (key, fingerprint, raw fingerprint) batches loaded, and
        the keys removed."""
        number = self._source_id(source, create=True)
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        upsert = _UPSERT[self._dialect]
        try:
            with self._writable().begin() as connection:
                for batch in loaded:
                    if not batch:
                        continue
                    if self._dialect == "sqlite":
                        rows: tuple[Any, ...] = (_JSON.encode(batch).decode(),)
                    else:
                        rows = tuple(map(list, zip(*batch, strict=True)))
                    connection.exec_driver_sql(upsert, (number, *rows))
                for keys in removed:
                    if keys:
                        connection.execute(
                            KEYS.delete().where(KEYS.c.source_id == number, KEYS.c.key.in_(keys))
                        )
                connection.execute(
                    SOURCES.update().where(SOURCES.c.id == number).values(loaded_at=now)
                )
        except sa.exc.SQLAlchemyError as error:
            raise self._failure("cannot be written", error) from None

    def forget(self, source: str) -> int:
        """Delete everything known of a data source; returns how many keys it held."""
        number = self._source_id(source)
        if number is None:
            return 0
        try:
            with self._writable().begin() as connection:
                deleted = connection.execute(KEYS.delete().where(KEYS.c.source_id == number))
                return int(deleted.rowcount)
        except sa.exc.SQLAlchemyError as error:
            raise self._failure("cannot be written", error) from None

    def sources(self) -> list[tuple[str, int]]:
        """Every data source the store tracks, with its number of keys."""
        if self._empty:
            return []
        query = (
            sa.select(SOURCES.c.source, sa.func.count())
            .join(KEYS, KEYS.c.source_id == SOURCES.c.id)
            .group_by(SOURCES.c.source)
        )
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
