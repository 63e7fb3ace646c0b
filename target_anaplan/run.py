"""One run of the target: names resolved once, every stream's load, the state gate,
signals and cleanup.

The run is the only object that knows every stream. The SDK's Target hands it each
stream when a schema arrives and each STATE message; the run writes a STATE once every
record received before it is committed in Anaplan (``state_gate``).
"""

from __future__ import annotations

import atexit
import copy
import functools
import json
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from singer_sdk.sinks import Sink

from target_anaplan.anaplan.catalog import Catalog, resolve_model
from target_anaplan.anaplan.client import AnaplanClient, new_session
from target_anaplan.anaplan.credentials import AUTH_TIMEOUT_S, make_auth
from target_anaplan.anaplan.models import DataSourceTarget
from target_anaplan.anaplan.regions import resolve_hosts
from target_anaplan.anaplan.retry import RetryPolicy
from target_anaplan.anaplan.tasks import cancel_running_tasks
from target_anaplan.changes import Scratch, StreamTracking, source_id
from target_anaplan.deletes import Deleter, FlagThenDeleteAction, ListApiDeleter
from target_anaplan.errors import ConfigError, DeleteGuardError, one_line
from target_anaplan.file_lock import DEFAULT_LOCK_DIR
from target_anaplan.loading import CommitRules, StreamLoad
from target_anaplan.plan import LoadPlan, RunLevelAction, StreamShape, describe_plan, order_streams
from target_anaplan.reader import InputPosition
from target_anaplan.report import Progress, RunReport
from target_anaplan.settings import Settings, StreamSettings
from target_anaplan.sinks import AnaplanSink, NullSink, StreamWiring
from target_anaplan.state_gate import StateGate
from target_anaplan.validation import Validators

if TYPE_CHECKING:
    from target_anaplan.change_store import ChangeStore

logger = logging.getLogger(__name__)
# The stream `meltano config test` sends: a connection check, not data to load.
MELTANO_TEST_STREAM = "meltano_test_stream"


@dataclass(frozen=True)
class Resolution:
    """Names resolved to ids once per run: each stream's model and file, the load plan."""

    client: AnaplanClient
    rules: dict[str, CommitRules]  # per stream: its model and how its commits run
    data_sources: dict[str, DataSourceTarget]
    order: list[str]
    after_load: list[RunLevelAction]
    deleters: dict[str, Deleter]  # streams with `deletes: delete`

    def shares_file(self, stream: str) -> bool:
        """Whether another stream of the run loads the stream's file (its commits and theirs
        then take turns on it)."""

        def where(name: str) -> tuple[str, str]:
            return self.rules[name].model.model_id, self.data_sources[name].file_id

        return sum(where(name) == where(stream) for name in self.data_sources) > 1


def build_client(settings: Settings) -> AnaplanClient:
    """The Integration API client for the configured region, credentials and retry policy."""
    hosts = resolve_hosts(
        settings.region,
        api_base_url=settings.api_base_url,
        auth_base_url=settings.auth_base_url,
        oauth_base_url=settings.oauth_base_url,
    )
    session = new_session()
    if settings.ca_bundle:
        session.verify = settings.ca_bundle
    return AnaplanClient(
        hosts,
        make_auth(
            settings.credentials(),
            hosts,
            session,
            timeout_s=(settings.connect_timeout_s, AUTH_TIMEOUT_S),
        ),
        retry=RetryPolicy(
            max_attempts=settings.retry_max_attempts, deadline_s=settings.retry_deadline_s
        ),
        timeout_s=settings.request_timeout_s,
        connect_timeout_s=settings.connect_timeout_s,
        session=session,
    )


class Run:
    """What one run owns: the client, every stream's load, the state gate, the cleanup."""

    def __init__(
        self,
        settings: Settings,
        position: InputPosition,
        write_state: Callable[[dict[str, Any]], None] = lambda state: None,
    ) -> None:
        self.settings = settings
        self.position = position
        self._write_state = write_state  # the SDK's writer of a STATE line
        self._emitted: str | None = None
        self._emitting = threading.RLock()  # a signal may arrive while it is held
        self._plan: LoadPlan | None = None
        self._stores = _Stores(read_only=settings.dry_run)
        self._scratch: Scratch | None = None
        self._progress = Progress(settings.progress_interval_s)
        self._started = time.monotonic()
        self._said_dry_run = False
        self.validators = Validators()
        self._resolution: Resolution | None = None
        self._resolve_lock = threading.Lock()
        self._loads: dict[str, StreamLoad] = {}
        self._gate = StateGate(self._loads)
        self._sink_classes: dict[str, type[Sink]] = {}
        self._ignored_streams: set[str] = set()
        self._spool_dir: Path | None = None
        self._closed = False

    # Resolution and per-stream loads

    def resolve(self) -> Resolution:
        """Resolve the workspace, model and every stream's data source (once, memoized)."""
        with self._resolve_lock:
            if self._resolution is None:
                self._resolution = self._resolve()
            return self._resolution

    def _resolve(self) -> Resolution:
        settings = self.settings
        client = build_client(settings)
        models = _Models(client, settings, self._stores, self._spool_directory)
        data_sources: dict[str, DataSourceTarget] = {}
        rules: dict[str, CommitRules] = {}
        for stream, stream_settings in settings.streams.items():
            model = models.get(stream_settings.workspace, stream_settings.model)
            data_sources[stream] = model.catalog.data_source(
                stream,
                file=stream_settings.file,
                imports=stream_settings.imports,
                processes=stream_settings.processes,
            )
            rules[stream] = model.rules
        order = order_streams(
            list(settings.streams),
            {
                stream: StreamShape(
                    source.loads_lists,
                    tuple((rules[stream].model.model_id, name) for name in source.lists),
                )
                for stream, source in data_sources.items()
            },
            models.list_parents(data_sources, rules),
            settings.load_order,
        )
        for line in describe_plan(order, data_sources):
            logger.info("Load plan: %s", line)
        after_load = [
            RunLevelAction(model.rules, model.catalog.action(item.name))
            for item in settings.after_load
            for model in [models.get(item.workspace, item.model)]
        ]
        for item in after_load:
            logger.info("Load plan: then %s", item.action.label)
        deleters = {
            stream: models.deleter(stream, stream_settings, data_sources[stream])
            for stream, stream_settings in settings.streams.items()
            if stream_settings.deletes == "delete"
        }
        return Resolution(client, rules, data_sources, order, after_load, deleters)

    @property
    def plan(self) -> LoadPlan:
        """The run's load plan (resolving the names first if need be)."""
        if self._plan is None:
            resolution = self.resolve()
            self._plan = LoadPlan(
                resolution.order,
                self._loads,
                after_load=resolution.after_load,
                on_commit=self.emit_state,
            )
        return self._plan

    def sink_class(self, stream: str) -> type[Sink]:
        """The sink class for a stream's sinks; unmapped streams fail or are ignored."""
        if self.settings.stream(stream) is None:
            return self._unmapped(stream)
        sink_class = self._sink_classes.get(stream)
        if sink_class is None:
            load = self.load(stream)
            plan = self.plan
            wiring = StreamWiring(
                load=load,
                commit=functools.partial(plan.commit_through, stream),
                where=self.position.describe,
                validators=self.validators,
            )
            sink_class = self._sink_classes[stream] = AnaplanSink.for_stream(wiring)
        return sink_class

    def _unmapped(self, stream: str) -> type[Sink]:
        if stream == MELTANO_TEST_STREAM:
            self._ignored_streams.add(stream)
            model = next(iter(self.resolve().rules.values()), None)
            reached = f", model {model.model.model_name!r} found" if model else ""
            logger.info(
                "Meltano's connection test (stream %s): Anaplan answered%s; the test records "
                "are not loaded.",
                stream,
                reached,
            )
            return NullSink
        if self.settings.unmapped_streams != "ignore":
            raise ConfigError(_unmapped_message(stream))
        if stream not in self._ignored_streams:
            self._ignored_streams.add(stream)
            logger.warning(
                "Stream %s is not in `streams`; its records are skipped (unmapped_streams: "
                "ignore).",
                stream,
            )
        return NullSink

    def load(self, stream: str) -> StreamLoad:
        """The one load of ``stream``, shared by all its sinks (created on first use)."""
        load = self._loads.get(stream)
        if load is None:
            resolution = self.resolve()
            load = StreamLoad(
                stream,
                resolution.data_sources[stream],
                self.settings.streams[stream],
                resolution.rules[stream],
                spool_dir=self._spool_directory(),
                chunk_size_bytes=self.settings.chunk_size_bytes,
                encoding_errors=self.settings.encoding_errors,
                time_zone=self.settings.time_zone,
                track=self._tracking,
                deleter=resolution.deleters.get(stream),
                progress=self._progress,
                early_upload=not resolution.shares_file(stream),
            )
            self._loads[stream] = load
        return load

    def _tracking(self, stream: str) -> StreamTracking:
        """Change tracking for a stream, in its model's store (opened on first use)."""
        resolution = self.resolve()
        rules = resolution.rules[stream]
        source = resolution.data_sources[stream]
        stream_settings = self.settings.streams[stream]
        if self._scratch is None:
            self._scratch = Scratch(self._spool_directory() / "changes.sqlite")
        return StreamTracking(
            self._stores.get(self.settings.change_store or _default_store(rules.model.model_id)),
            self._scratch,
            self._spool_directory(),
            stream=stream,
            source=source_id(rules.model.model_id, source.file_id),
            mode=stream_settings.mode,
            deletes=stream_settings.deletes,
            full_snapshot=stream_settings.full_snapshot,
        )

    def activate_version(self, stream: str) -> None:
        """ACTIVATE_VERSION for a stream (it may close a full-table snapshot)."""
        load = self._loads.get(stream)
        if load is not None:
            load.activate_version()

    def end_of_input(self) -> None:
        """The input ended normally: find the keys gone from each source, and refuse to go
        on (before anything is deleted) where one run would delete too much."""
        for stream in self.plan.order:
            load = self._loads.get(stream)
            if load is None:
                continue
            gone = load.end_of_input()
            tracking = load.tracking
            if not gone or tracking is None:
                continue
            limit = self.settings.streams[stream].max_delete_fraction
            limit = self.settings.max_delete_fraction if limit is None else limit
            known = tracking.known_at_start
            if known and gone > limit * known:
                raise DeleteGuardError(
                    f"Stream {stream!r} would delete {gone} of its {known} known keys "
                    f"({gone / known:.0%}), more than max_delete_fraction ({limit:g}) allows; "
                    "nothing was deleted. If the source really lost them, raise "
                    "max_delete_fraction for this run; if not, check the source (an empty or "
                    "partial extract must not empty the list)."
                )

    # The state gate and signals

    def pending_rows_of_streams(self) -> dict[str, int]:
        """Rows spooled or queued but not committed, per stream (gone keys aside)."""
        loads = tuple(self._loads.items())  # commit threads read it while a stream is added
        return {name: load.unsent_rows for name, load in loads if load.unsent_rows}

    def pending(self) -> dict[str, int]:
        """Rows received but not committed, per stream (lock-free: read by signal handlers)."""
        loads = tuple(self._loads.items())  # commit threads read it while a stream is added
        return {name: load.pending_rows for name, load in loads if load.pending_rows}

    def state_arrived(self, state: dict[str, Any]) -> None:
        """A STATE message arrived: held until every record before it is committed."""
        self._gate.arrived(state)

    def emit_state(self) -> None:
        """Write the newest STATE whose records are all committed, once per value (a commit
        left running offers it from its own thread)."""
        with self._emitting:
            state = self._state_to_emit()
            if not state:
                return
            text = json.dumps(state, sort_keys=True, default=str)
            if text != self._emitted:
                self._emitted = text
                self._write_state(copy.deepcopy(state))

    def _state_to_emit(self) -> dict[str, Any] | None:
        """The STATE that may be emitted now, if any: the newest whose records are all
        imported, unless deletes or run-level actions are still due (or a dry run)."""
        if self.settings.dry_run:
            if not self._said_dry_run:
                self._said_dry_run = True
                logger.info("Dry run: no STATE is emitted, so the next run sends the same rows.")
            return None
        if self._plan is not None and self._plan.after_load_due:
            logger.info("State held back until after_load has run.")
            return None
        gone = [name for name, load in tuple(self._loads.items()) if load.gone_pending]
        if gone:
            logger.info("State held back until the keys gone from %s are deleted.", ", ".join(gone))
            return None
        state = self._gate.ready()
        if state is None and self._gate.holding:
            pending = self.pending()
            if pending:
                logger.info("State held back until %s are imported.", _describe(pending))
        return state

    def finish(self) -> None:
        """End of input, every stream committed: delete what left the source (child lists
        first), run ``after_load``, then emit the state."""
        left = self.pending_rows_of_streams()
        if left:  # every drain has run: a row still spooled would be lost without a word
            raise RuntimeError(f"Rows left uncommitted at the end of input: {_describe(left)}")
        for stream in reversed(self.plan.order):
            load = self._loads.get(stream)
            if load is not None:
                load.apply_deletes()
        for stream, load in self._loads.items():
            if load.tracking is not None:
                load.tracking.finish()
                logger.info(
                    "Stream %s: %s", stream, load.tracking.counts.describe(load.tracking.mode)
                )
        if self.settings.dry_run:
            for item in self.plan.after_load:
                logger.info("Dry run: after_load would run %s", item.action.label)
        else:
            self.plan.run_after_load()
        self.emit_state()

    def settle(self) -> None:
        """After a failure: let the commits left running finish (they hold rows read before
        it, as a commit that waited would have), and emit the state they cover."""
        for stream, load in self._loads.items():
            try:
                load.finish_running()
            except Exception as error:  # the run fails for its first error; this one is told
                logger.error("Stream %s: its last commit failed too: %s", stream, one_line(error))
        self.emit_state()

    def publish_report(self, error: BaseException | None) -> None:
        """The run summary (stderr, METRIC lines, ``run_report_path``), success or failure."""
        order = self._plan.order if self._plan is not None else list(self._loads)
        streams = [self._loads[s].summary() for s in order if s in self._loads]
        after_load = [item.action.label for item in self._plan.after_load] if self._plan else []
        if error is not None:
            verdict = "failed"
        else:
            verdict = "dry run" if self.settings.dry_run else "succeeded"
        report = RunReport(
            streams=streams,
            after_load=after_load,
            verdict=verdict,
            error=one_line(error) if error is not None else None,
            seconds=time.monotonic() - self._started,
        )
        path = self.settings.run_report_path
        report.publish(Path(path) if path else None)

    def terminate(self, signum: int) -> int:
        """Stop at once on a signal: commit nothing partial, cancel running tasks, and emit
        the newest state whose rows are all committed. Returns the exit code."""
        self.emit_state()
        pending = self.pending()
        if pending:
            logger.warning(
                "Received signal %d: dropped %s; their state is not emitted, so the next run "
                "sends them again.",
                signum,
                _describe(pending),
            )
        elif self._plan is not None and self._plan.after_load_due:
            logger.warning(
                "Received signal %d before after_load ran; the state is not emitted, so the "
                "next run loads and runs it again.",
                signum,
            )
            pending = {"after_load": 1}
        else:
            logger.info("Received signal %d with every received row committed.", signum)
        # Before close (which ends the HTTP session): an import left running would load
        # rows whose state is never emitted, or later import the next run's upload.
        if self._resolution is not None:
            cancelled = cancel_running_tasks(self._resolution.client)
            if cancelled:
                logger.warning("Asked Anaplan to cancel %d running task(s).", cancelled)
        self.close()
        return 1 if pending else 0

    # Cleanup

    def close(self) -> None:
        """Delete the spool files and directory and release the HTTP session (idempotent)."""
        if self._closed:
            return
        self._closed = True
        for load in self._loads.values():
            load.close()
        if self._spool_dir is not None:
            shutil.rmtree(self._spool_dir, ignore_errors=True)
        if self._scratch is not None:
            self._scratch.close()
        self._stores.close()
        if self._resolution is not None:
            self._resolution.client.close()

    def _spool_directory(self) -> Path:
        """A private temp directory, removed on every exit path (close, atexit)."""
        if self._spool_dir is None:
            self._spool_dir = Path(tempfile.mkdtemp(prefix="target-anaplan-"))
            atexit.register(shutil.rmtree, self._spool_dir, ignore_errors=True)
        return self._spool_dir


@dataclass(frozen=True)
class _Model:
    """One resolved model: its reference, catalog and the rules of its commits."""

    catalog: Catalog
    rules: CommitRules


class _Stores:
    """The change stores of a run, each opened once (one per model by default); a dry run
    opens them read-only, so it neither creates nor writes one."""

    def __init__(self, *, read_only: bool) -> None:
        self._read_only = read_only
        self._stores: dict[str, ChangeStore] = {}

    def get(self, url: str) -> ChangeStore:
        from target_anaplan.change_store import ChangeStore  # noqa: PLC0415 (SQLAlchemy: only runs that track changes load it)

        store = self._stores.get(url)
        if store is None:
            store = self._stores[url] = ChangeStore(url, read_only=self._read_only)
        return store

    def close(self) -> None:
        for store in self._stores.values():
            store.close()


class _Models:
    """The models a run loads into, each resolved once (streams may name their own)."""

    def __init__(
        self,
        client: AnaplanClient,
        settings: Settings,
        stores: _Stores,
        spool_dir: Callable[[], Path],
    ) -> None:
        self._client = client
        self._settings = settings
        self._stores = stores
        self._spool_dir = spool_dir
        self._models: dict[tuple[str, str], _Model] = {}
        # A PostgreSQL change store serves every machine: its advisory lock replaces the
        # machine-wide file lock, so runs on different machines never share an upload.
        url = settings.change_store
        self._shared_lock = (
            stores.get(url).advisory_lock
            if url and url.split(":", 1)[0].split("+", 1)[0] == "postgresql"
            else None
        )

    def get(self, workspace: str | None, model: str | None) -> _Model:
        settings = self._settings
        key = (workspace or settings.workspace, model or settings.model)
        found = self._models.get(key)
        if found is None:
            ref = resolve_model(self._client, *key)
            logger.info(
                "Loading into model %s (%s) of workspace %s (%s)",
                ref.model_name,
                ref.model_id,
                ref.workspace_name,
                ref.workspace_id,
            )
            rules = CommitRules(
                client=self._client,
                model=ref,
                parallel=settings.import_concurrency == "parallel",
                poll_interval_s=settings.poll_interval_s,
                import_timeout_s=settings.import_timeout_s,
                max_failed_rows=settings.max_failed_rows,
                max_ignored_rows=settings.max_ignored_rows,
                failure_dump_dir=Path(settings.failure_dump_dir),
                lock_dir=DEFAULT_LOCK_DIR,
                shared_lock=self._shared_lock,
                dry_run_dir=Path(settings.dry_run_dir) if settings.dry_run else None,
                progress_interval_s=settings.progress_interval_s,
            )
            found = self._models[key] = _Model(Catalog(self._client, ref), rules)
        return found

    def deleter(self, stream: str, settings: StreamSettings, source: DataSourceTarget) -> Deleter:
        """How a ``deletes: delete`` stream removes items from its list."""
        model = self.get(settings.workspace, settings.model)
        if settings.delete_action and settings.delete_flag_import:
            flags = model.catalog.data_source(
                f"{stream} (delete flags)",
                file=None,
                imports=[settings.delete_flag_import],
                processes=[],
            )
            return FlagThenDeleteAction(
                model.rules,
                flags,
                flags.actions[0],
                model.catalog.delete_action(settings.delete_action),
                self._spool_dir(),
            )
        wanted = settings.delete_list or (source.lists[0] if source.lists else None)
        if wanted is None:
            raise ConfigError(
                f"Stream {stream!r} has deletes: delete, but its imports load no list (as "
                f"far as their names tell). Set `streams.{stream}.delete_list` to the list, "
                "or use deletes: clear for a module."
            )
        list_id, list_name = model.catalog.list_ref(wanted)
        return ListApiDeleter(model.rules, list_id, list_name)

    def list_parents(
        self, sources: dict[str, DataSourceTarget], rules: dict[str, CommitRules]
    ) -> dict[tuple[str, str], str]:
        """(model id, list) -> parent list, read only for models with two list streams or more
        (with one, there is nothing to order)."""
        lists_by_model: dict[str, set[str]] = {}
        for stream, source in sources.items():
            if source.loads_lists:
                lists_by_model.setdefault(rules[stream].model.model_id, set()).update(source.lists)
        parents: dict[tuple[str, str], str] = {}
        for model in self._models.values():
            names = lists_by_model.get(model.rules.model.model_id, set())
            if len(names) > 1:
                for name, parent in model.catalog.list_parents(names).items():
                    parents[(model.rules.model.model_id, name)] = parent
        return parents


def _default_store(model_id: str) -> str:
    from target_anaplan.change_store import default_store_url  # noqa: PLC0415 (as in _Stores.get)

    return default_store_url(model_id)


def _unmapped_message(stream: str) -> str:
    return (
        f"Stream {stream!r} is not mapped to an Anaplan data source. Add `streams.{stream}` "
        "to the config with its `file` and `imports` (for example "
        f'{{"streams": {{"{stream}": {{"file": "{stream}.csv", "imports": ["..."]}}}}}}), '
        "or set `unmapped_streams: ignore` to skip unmapped streams."
    )


def _describe(pending: dict[str, int]) -> str:
    return ", ".join(f"{rows} rows of stream {name}" for name, rows in pending.items())
