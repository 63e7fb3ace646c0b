"""The Singer target: resolve Anaplan names once, route streams, and guard the state.

The SDK emits STATE after every full drain; this target lets it through only when no
stream holds rows that Anaplan has not imported yet, and replaces the SDK's signal
handler (which drains and exits 0 even when the drain fails) with one that commits
nothing partial.
"""

from __future__ import annotations

import atexit
import copy
import os
import re
import shutil
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, ClassVar

import msgspec
from singer_sdk.contrib.msgspec import MsgSpecReader, decoder
from singer_sdk.exceptions import (
    ConfigValidationError,
    RecordsWithoutSchemaException,
    SingerSDKError,
)
from singer_sdk.helpers.capabilities import (
    CapabilitiesEnum,
    PluginCapabilities,
    TargetCapabilities,
)
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.singerlib.exceptions import InvalidInputLine, SingerError
from singer_sdk.target_base import Target

from target_anaplan.anaplan.catalog import Catalog, resolve_model
from target_anaplan.anaplan.client import AnaplanClient, new_session
from target_anaplan.anaplan.credentials import make_auth
from target_anaplan.anaplan.errors import AnaplanError
from target_anaplan.anaplan.regions import resolve_hosts
from target_anaplan.anaplan.retry import RetryPolicy
from target_anaplan.anaplan.tasks import cancel_running_tasks
from target_anaplan.csv_writer import UnwritableValueError
from target_anaplan.file_lock import DEFAULT_LOCK_DIR
from target_anaplan.loading import CommitRules, StreamLoad
from target_anaplan.settings import CONFIG_SCHEMA, ConfigError, Settings
from target_anaplan.sinks import AnaplanSink, NullSink
from target_anaplan.spool import UnencodableValueError, UnknownEncodingError

if TYPE_CHECKING:
    from types import FrameType

    from singer_sdk.sinks import Sink

    from target_anaplan.anaplan.models import DataSourceTarget

# Failures a user can fix: reported as one line and exit code 1, without a traceback.
EXPECTED_ERRORS = (
    ConfigError,
    AnaplanError,
    UnwritableValueError,
    UnencodableValueError,
    UnknownEncodingError,
    SingerSDKError,  # input the SDK rejects: record before schema, missing key, invalid record
    SingerError,  # a line that is not a Singer message
)
MAX_MESSAGE_CHARS = 600

_UNKNOWN: Any = object()


class MessageReader(MsgSpecReader):
    """msgspec parsing (floats as Decimal, several times faster than json).

    Unlike the SDK's msgspec reader, a line that is not JSON is reported once, as the
    error the target prints, instead of first being logged with a traceback; and lines
    are counted, so that messages about bad input can say where it is. Standard input
    is read as bytes: msgspec decodes UTF-8 itself, twice as fast as text lines.
    """

    line_number = 0

    @property
    def default_input(self) -> IO[bytes] | IO[str]:  # type: ignore[override]
        """Standard input's bytes, when it has them."""
        return getattr(sys.stdin, "buffer", sys.stdin)

    def process_lines(  # type: ignore[override]
        self,
        file_input: IO[str] | IO[bytes] | None,
        callbacks: dict[str, Callable[[dict], None]],
    ) -> Counter[str]:
        """Read every message, counting lines; the SDK's loop, with no per-line extras."""
        stats: Counter[str] = Counter()
        deserialize = self.deserialize_json
        for number, line in enumerate(file_input or self.default_input, 1):
            self.line_number = number
            message = deserialize(line)
            if "type" not in message:
                self.assert_line_requires(message, {"type"})
            kind = message["type"]
            callback = callbacks.get(kind)
            if callback is None:
                self._process_unknown_message(message)
            else:
                callback(message)
            stats[kind] += 1
        return stats

    def deserialize_json(self, line: str | bytes) -> dict:  # type: ignore[override]
        """Parse one line, or raise ``InvalidInputLine`` naming the problem."""
        try:
            message = decoder.decode(line)
        except msgspec.DecodeError as exc:
            msg = (
                f"Line {self.line_number} of the input is not valid JSON ({exc}): "
                f"{_text(line[:200])!r}"
            )
            raise InvalidInputLine(msg) from exc
        if not isinstance(message, dict):
            msg = (
                f"Line {self.line_number} of the input is not a JSON object: {_text(line[:200])!r}"
            )
            raise InvalidInputLine(msg)
        return message

    def assert_line_requires(self, line_dict: dict, requires: set[str]) -> None:  # type: ignore[override]
        """A message without a key it needs fails naming its line and the keys."""
        if requires <= line_dict.keys():  # every message, twice per record: keep it cheap
            return
        missing = sorted(requires - line_dict.keys())
        if missing:
            msg = (
                f"Line {self.line_number} of the input is a Singer message without "
                f"{', '.join(missing)}: {str(line_dict)[:200]}"
            )
            raise InvalidInputLine(msg)

    def _process_unknown_message(self, message_dict: dict) -> None:
        """Fail on one line; the SDK's own error here comes with a traceback."""
        msg = (
            f"Line {self.line_number} of the input has an unknown Singer message type "
            f"{message_dict['type']!r}."
        )
        raise InvalidInputLine(msg)


@dataclass(frozen=True)
class Resolution:
    """Names resolved to ids once per run: the model and each configured stream's file."""

    rules: CommitRules
    data_sources: dict[str, DataSourceTarget]


class TargetAnaplan(Target):
    """Loads Singer streams into Anaplan through import data sources."""

    name = "target-anaplan"
    package_name = "target-anaplan"
    # A copy: the SDK appends its built-in settings to this dict in place.
    config_jsonschema = copy.deepcopy(CONFIG_SCHEMA)
    capabilities: ClassVar[list[CapabilitiesEnum]] = [
        PluginCapabilities.ABOUT,
        PluginCapabilities.STREAM_MAPS,
        PluginCapabilities.FLATTENING,
        PluginCapabilities.STRUCTURED_LOGGING,
        TargetCapabilities.VALIDATE_RECORDS,
    ]
    default_sink_class = AnaplanSink
    message_reader_class = MessageReader

    def __init__(self, **kwargs: Any) -> None:
        # Set before the SDK installs the signal handlers, which read them.
        self._resolution: Resolution | None = None
        self._resolve_lock = threading.Lock()
        self._loads: dict[str, StreamLoad] = {}
        self._spool_dir: Path | None = None
        self._ignored_streams: set[str] = set()
        self._record_numbers: Counter[str] = Counter()
        self._current_stream = ""
        # Stream -> its sink when a record needs none of the SDK's generic steps (None:
        # it does); rebuilt after every SCHEMA message, the only time sinks and maps change.
        self._fast_sinks: dict[str, AnaplanSink | None] = {}
        self._closed = False
        super().__init__(**kwargs)
        self.settings = Settings.from_config(_plain_numbers(dict(self.config)))

    # Resolution and per-stream loads

    def resolve(self) -> Resolution:
        """Resolve the workspace, model and every stream's data source (once, memoized)."""
        with self._resolve_lock:
            if self._resolution is None:
                self._resolution = self._resolve()
            return self._resolution

    def _resolve(self) -> Resolution:
        settings = self.settings
        client = _build_client(settings)
        model = resolve_model(client, settings.workspace, settings.model)
        catalog = Catalog(client, model)
        self.logger.info(
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
            self.logger.info(
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

    def stream_load(self, stream: str) -> StreamLoad:
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
            )
            self._loads[stream] = load
        return load

    def get_sink_class(self, stream_name: str) -> type[Sink]:
        """An Anaplan sink for a mapped stream; unmapped streams fail or are ignored."""
        if self.settings.stream(stream_name) is not None:
            return AnaplanSink
        if self.settings.unmapped_streams != "ignore":
            raise ConfigError(_unmapped_message(stream_name))
        if stream_name not in self._ignored_streams:
            self._ignored_streams.add(stream_name)
            self.logger.warning(
                "Stream %s is not in `streams`; its records are skipped "
                "(unmapped_streams: ignore).",
                stream_name,
            )
        return NullSink

    # Input, state and shutdown

    def input_position(self) -> str:
        """Where the record being processed is, for messages about bad input."""
        line = self.message_reader.line_number  # type: ignore[attr-defined]
        stream = self._current_stream
        return f"Line {line} of the input, stream {stream!r}, record {self._record_numbers[stream]}"

    def _process_record_message(self, message_dict: dict) -> None:
        """Number the record within its stream; a record before its schema is named."""
        stream_name = message_dict.get("stream")
        self._current_stream = stream = str(stream_name)
        self._record_numbers[stream] += 1
        record = message_dict.get("record")
        if record.__class__ is dict and stream is stream_name:
            sink = self._fast_sinks.get(stream, _UNKNOWN)
            if sink is _UNKNOWN:
                sink = self._fast_sinks[stream] = self._fast_sink(stream)
            if sink is not None:
                self._process_plain_record(sink, record)  # type: ignore[arg-type]
                return
        elif not isinstance(message_dict.get("record", {}), dict):
            msg = f"{self.input_position()}: the record is not a JSON object."
            raise InvalidInputLine(msg)
        try:
            super()._process_record_message(message_dict)
        except RecordsWithoutSchemaException:
            msg = (
                f"{self.input_position()}: a RECORD arrived before the stream's SCHEMA "
                "message. The tap must send a stream's SCHEMA before its records."
            )
            raise RecordsWithoutSchemaException(msg) from None

    def _fast_sink(self, stream: str) -> AnaplanSink | None:
        """The stream's sink if its records need only the sink's own steps, else None.

        That is: an Anaplan sink fed by the identity stream map (no stream maps, no
        flattening, no alias) without record metadata to add.
        """
        maps = self.mapper.stream_maps.get(stream) or []
        sink = self._sinks_active.get(stream)
        plain = (
            len(maps) == 1
            and type(maps[0]) is SameRecordTransform
            and maps[0].stream_alias == stream
            and not maps[0].flattening_enabled
        )
        if plain and type(sink) is AnaplanSink and not sink.include_sdc_metadata_properties:
            return sink
        return None

    def _process_plain_record(self, sink: AnaplanSink, record: dict) -> None:
        """The SDK's record steps that do something for such a sink, in the SDK's order."""
        context = sink._get_context(record)
        sink._remove_sdc_metadata_from_record(record)
        sink._validate_and_parse(record)
        sink._singer_validate_message(record)
        sink.tally_record_read()
        sink.process_record(record, context)
        sink.record_counter_metric.increment()
        if sink.is_full:
            self.logger.info(
                "Target sink for '%s' is full. Current size is '%s'. Draining...",
                sink.stream_name,
                sink.current_size,
            )
            self.drain_one(sink)
        self._handle_max_record_age()

    def _process_schema_message(self, message_dict: dict) -> None:
        """A schema the data source cannot take fails naming its line in the input."""
        self._fast_sinks.clear()
        try:
            super()._process_schema_message(message_dict)
        except ConfigError as exc:
            line = self.message_reader.line_number  # type: ignore[attr-defined]
            raise ConfigError(f"Line {line} of the input (SCHEMA message): {exc}") from None

    def listen(self, file_input: IO[str] | None = None) -> None:  # type: ignore[override]
        """Resolve every name before reading the first record, then read all input."""
        try:
            self.resolve()
            super().listen(file_input)
        finally:
            self.close()

    def process_endofpipe(self) -> None:
        """Commit what is left (all-mode streams in ``clean_up``), then release everything."""
        try:
            super().process_endofpipe()
        finally:
            self.close()

    def _write_state_message(self, state: dict) -> None:
        """Emit state only when every row received so far is imported in Anaplan."""
        pending = self._pending()
        if pending:
            self.logger.info("State held back until %s are imported.", _describe(pending))
            return
        super()._write_state_message(state)

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        """Stop at once: commit nothing partial, emit state only if nothing is pending."""
        pending = self._pending()
        if pending:
            self.logger.warning(
                "Received signal %d: dropped %s; their state is not emitted, so the next "
                "run sends them again.",
                signum,
                _describe(pending),
            )
        else:
            self.logger.info("Received signal %d with every received row committed.", signum)
            if self._latest_state:
                super()._write_state_message(self._latest_state)
        # Before close (which ends the HTTP session): an import left running would load
        # rows whose state is never emitted, or later import the next run's upload.
        cancelled = cancel_running_tasks()
        if cancelled:
            self.logger.warning("Asked Anaplan to cancel %d running task(s).", cancelled)
        self.close()
        sys.stdout.flush()
        sys.stderr.flush()
        # Not sys.exit: drain threads may be mid-upload, and joblib would wait for them.
        os._exit(1 if pending else 0)

    def _pending(self) -> dict[str, int]:
        return {name: load.pending_rows for name, load in self._loads.items() if load.pending_rows}

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

    # Command line

    @classmethod
    def invoke(  # type: ignore[override]
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: Any = None,
        file_input: IO[str] | None = None,
    ) -> None:
        """Run the target; an expected failure is one log line and exit code 1."""
        try:
            super().invoke(
                about=about, about_format=about_format, config=config, file_input=file_input
            )
        except ConfigValidationError as exc:
            cls.logger.error("Config is not valid: %s", "; ".join(exc.errors))
            sys.exit(1)
        except EXPECTED_ERRORS as exc:
            cls.logger.error("%s", one_line(exc))
            sys.exit(1)


def _text(line: str | bytes) -> str:
    return line.decode("utf-8", errors="replace") if isinstance(line, bytes) else line


def one_line(exc: BaseException) -> str:
    """An exception's message on one line, bounded (input lines can be megabytes)."""
    text = re.sub(r"\s+", " ", str(exc) or type(exc).__name__).strip()
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 3] + "..."
    return text


def _plain_numbers(value: Any) -> Any:
    """Config read from ``--config`` files holds JSON floats as Decimal (the SDK's reader)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: _plain_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain_numbers(item) for item in value]
    return value


def _build_client(settings: Settings) -> AnaplanClient:
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
        make_auth(settings, hosts, session),
        retry=RetryPolicy(
            max_attempts=settings.retry_max_attempts, deadline_s=settings.retry_deadline_s
        ),
        timeout_s=settings.request_timeout_s,
        session=session,
    )


def _unmapped_message(stream: str) -> str:
    return (
        f"Stream {stream!r} is not mapped to an Anaplan data source. Add `streams.{stream}` "
        "to the config with its `file` and `imports` (for example "
        f'{{"streams": {{"{stream}": {{"file": "{stream}.csv", "imports": ["..."]}}}}}}), '
        "or set `unmapped_streams: ignore` to skip unmapped streams."
    )


def _describe(pending: dict[str, int]) -> str:
    return ", ".join(f"{rows} rows of stream {name}" for name, rows in pending.items())
