"""One run of the target: names resolved once, every stream's load, the state gate,
signals and cleanup.

The run is the only object that knows every stream. The SDK's Target hands it each
stream when a schema arrives and asks it, before writing a STATE message, whether every
row received so far is committed in Anaplan.
"""

from __future__ import annotations

import atexit
import logging
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from singer_sdk.sinks import Sink

from target_anaplan.anaplan.catalog import Catalog, resolve_model
from target_anaplan.anaplan.client import AnaplanClient, new_session
from target_anaplan.anaplan.credentials import make_auth
from target_anaplan.anaplan.models import DataSourceTarget
from target_anaplan.anaplan.regions import resolve_hosts
from target_anaplan.anaplan.retry import RetryPolicy
from target_anaplan.anaplan.tasks import cancel_running_tasks
from target_anaplan.errors import ConfigError
from target_anaplan.file_lock import DEFAULT_LOCK_DIR
from target_anaplan.loading import CommitRules, StreamLoad
from target_anaplan.reader import InputPosition
from target_anaplan.settings import Settings
from target_anaplan.sinks import AnaplanSink, NullSink, StreamWiring
from target_anaplan.validation import Validators

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Resolution:
    """Names resolved to ids once per run: the model and each configured stream's file."""

    rules: CommitRules
    data_sources: dict[str, DataSourceTarget]


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
        make_auth(settings.credentials(), hosts, session),
        retry=RetryPolicy(
            max_attempts=settings.retry_max_attempts, deadline_s=settings.retry_deadline_s
        ),
        timeout_s=settings.request_timeout_s,
        session=session,
    )


class Run:
    """What one run owns: the client, every stream's load, the state gate, the cleanup."""

    def __init__(self, settings: Settings, position: InputPosition) -> None:
        self.settings = settings
        self.position = position
        self.validators = Validators()
        self._resolution: Resolution | None = None
        self._resolve_lock = threading.Lock()
        self._loads: dict[str, StreamLoad] = {}
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
        model = resolve_model(client, settings.workspace, settings.model)
        catalog = Catalog(client, model)
        logger.info(
            "Loading into model %s (%s) of workspace %s (%s)",
            model.model_name,
            model.model_id,
            model.workspace_name,
            model.workspace_id,
        )
        data_sources = {}
        for stream, stream_settings in settings.streams.items():
            source = catalog.data_source(
                stream,
                file=stream_settings.file,
                imports=stream_settings.imports,
                processes=stream_settings.processes,
            )
            data_sources[stream] = source
            logger.info(
                "Stream %s (%s mode) loads file %s (%s)%s",
                stream,
                stream_settings.mode,
                source.file_name,
                source.file_id,
                " then runs " + ", ".join(repr(a.name) for a in source.actions)
                if source.actions
                else "",
            )
        rules = CommitRules(
            client=client,
            model=model,
            parallel=settings.import_concurrency == "parallel",
            poll_interval_s=settings.poll_interval_s,
            import_timeout_s=settings.import_timeout_s,
            max_failed_rows=settings.max_failed_rows,
            max_ignored_rows=settings.max_ignored_rows,
            failure_dump_dir=Path(settings.failure_dump_dir),
            lock_dir=DEFAULT_LOCK_DIR,
        )
        return Resolution(rules=rules, data_sources=data_sources)

    def sink_class(self, stream: str) -> type[Sink]:
        """The sink class for a stream's sinks; unmapped streams fail or are ignored."""
        if self.settings.stream(stream) is None:
            return self._unmapped(stream)
        sink_class = self._sink_classes.get(stream)
        if sink_class is None:
            load = self.load(stream)
            wiring = StreamWiring(
                load=load,
                commit=load.commit,
                where=self.position.describe,
                validators=self.validators,
            )
            sink_class = self._sink_classes[stream] = AnaplanSink.for_stream(wiring)
        return sink_class

    def _unmapped(self, stream: str) -> type[Sink]:
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
                resolution.rules,
                spool_dir=self._spool_directory(),
                chunk_size_bytes=self.settings.chunk_size_bytes,
                encoding_errors=self.settings.encoding_errors,
                time_zone=self.settings.time_zone,
            )
            self._loads[stream] = load
        return load

    # The state gate and signals

    def pending(self) -> dict[str, int]:
        """Rows received but not committed, per stream (lock-free: read by signal handlers)."""
        return {name: load.pending_rows for name, load in self._loads.items() if load.pending_rows}

    def state_may_pass(self) -> bool:
        """Whether a STATE may be emitted now: every row received so far is imported."""
        pending = self.pending()
        if pending:
            logger.info("State held back until %s are imported.", _describe(pending))
        return not pending

    def terminate(
        self,
        signum: int,
        latest_state: dict[str, Any] | None,
        write_state: Callable[[dict[str, Any]], None],
    ) -> int:
        """Stop at once on a signal: commit nothing partial, cancel running tasks, and emit
        the state only if nothing is pending. Returns the exit code."""
        pending = self.pending()
        if pending:
            logger.warning(
                "Received signal %d: dropped %s; their state is not emitted, so the next run "
                "sends them again.",
                signum,
                _describe(pending),
            )
        else:
            logger.info("Received signal %d with every received row committed.", signum)
            if latest_state:
                write_state(latest_state)
        # Before close (which ends the HTTP session): an import left running would load
        # rows whose state is never emitted, or later import the next run's upload.
        if self._resolution is not None:
            cancelled = cancel_running_tasks(self._resolution.rules.client)
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
        if self._resolution is not None:
            self._resolution.rules.client.close()

    def _spool_directory(self) -> Path:
        """A private temp directory, removed on every exit path (close, atexit)."""
        if self._spool_dir is None:
            self._spool_dir = Path(tempfile.mkdtemp(prefix="target-anaplan-"))
            atexit.register(shutil.rmtree, self._spool_dir, ignore_errors=True)
        return self._spool_dir


def _unmapped_message(stream: str) -> str:
    return (
        f"Stream {stream!r} is not mapped to an Anaplan data source. Add `streams.{stream}` "
        "to the config with its `file` and `imports` (for example "
        f'{{"streams": {{"{stream}": {{"file": "{stream}.csv", "imports": ["..."]}}}}}}), '
        "or set `unmapped_streams: ignore` to skip unmapped streams."
    )


def _describe(pending: dict[str, int]) -> str:
    return ", ".join(f"{rows} rows of stream {name}" for name, rows in pending.items())
