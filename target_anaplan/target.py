"""The SDK's face of target-anaplan: the Target class and the few SDK hooks it must take.

Everything a run does lives in ``run.Run``; records go through ``records.RecordPath``;
messages are read by ``reader.MessageReader``. The hooks below only hand over to them,
and keep the SDK from doing what would be wrong for Anaplan: emitting STATE before the
rows are imported, and exiting 0 after a failed drain on SIGTERM.
"""

from __future__ import annotations

import copy
import functools
import os
import sys
from typing import IO, TYPE_CHECKING, Any, ClassVar, cast

from singer_sdk.exceptions import ConfigValidationError, SingerSDKError
from singer_sdk.helpers.capabilities import (
    CapabilitiesEnum,
    PluginCapabilities,
    TargetCapabilities,
)
from singer_sdk.singerlib.exceptions import SingerError
from singer_sdk.target_base import Target

from target_anaplan.errors import ConfigError, TargetAnaplanError, one_line
from target_anaplan.reader import MessageReader
from target_anaplan.records import RecordPath
from target_anaplan.run import Run
from target_anaplan.settings import CONFIG_SCHEMA, Settings, unknown_settings
from target_anaplan.sinks import AnaplanSink

if TYPE_CHECKING:
    from types import FrameType

    from singer_sdk.sinks import Sink

# Failures a user can fix: reported as one line and exit code 1, without a traceback.
EXPECTED_ERRORS = (
    TargetAnaplanError,
    SingerSDKError,  # input the SDK rejects: record before schema, missing key, invalid record
    SingerError,  # a line that is not a Singer message
)


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
        PluginCapabilities.ACTIVATE_VERSION,
        TargetCapabilities.VALIDATE_RECORDS,
    ]
    default_sink_class = AnaplanSink
    message_reader_class = MessageReader

    def __init__(self, **kwargs: Any) -> None:
        self.run: Run | None = None  # a signal may arrive before the run exists
        super().__init__(**kwargs)
        reader = cast("MessageReader", self.message_reader)
        for warning in unknown_settings(self.config, self.about_properties()):
            self.logger.warning("%s", warning)
        writer = functools.partial(Target._write_state_message, self)
        self.run = Run(Settings.from_config(self.config), reader.position, writer)
        self.records = RecordPath(
            self,
            reader.position,
            super()._process_record_message,
            lambda: self._sinks_active,
            reader.deserialize_json,
        )
        reader.typed = self.records
        # One drain at a time: each commit waits for its imports, and Anaplan runs one task
        # per model at a time, so parallel drains would only queue behind each other while
        # muddling the order in which streams are committed.
        self.max_parallelism = 1

    @classmethod
    def about_properties(cls) -> dict[str, Any]:
        """Every setting ``--about`` shows: the target's and the SDK's built-ins."""
        schema = copy.deepcopy(cls.config_jsonschema)
        cls.append_builtin_config(schema)
        properties: dict[str, Any] = schema["properties"]
        return properties

    @classmethod
    def append_builtin_config(cls, config_jsonschema: dict[str, Any]) -> None:
        """The SDK's built-in settings, but ``load_method``: a stream's ``mode`` says how it
        loads, and a second, generic setting for it would only mislead."""
        super().append_builtin_config(config_jsonschema)
        config_jsonschema["properties"].pop("load_method", None)

    def get_sink_class(self, stream_name: str) -> type[Sink]:
        """The run's sink class for the stream (unmapped streams fail or are ignored)."""
        return self._run.sink_class(stream_name)

    def listen(self, file_input: IO[str] | None = None) -> None:  # type: ignore[misc]  # final in the SDK; names must resolve before the first message
        """Resolve every name before reading the first message, read all input, and sum up."""
        try:
            self._run.resolve()
            super().listen(file_input)
        except BaseException as error:
            if isinstance(error, Exception):
                self._run.settle()
            self._run.publish_report(error)
            raise
        else:
            self._run.publish_report(None)
        finally:
            self._run.close()

    def process_endofpipe(self) -> None:
        """Commit what is left (all-mode streams in ``clean_up``), run ``after_load``, emit
        the state, then release everything."""
        try:
            self._run.end_of_input()
            super().process_endofpipe()
            self._run.finish()
        finally:
            self._run.close()

    # Messages

    def _process_record_message(self, message_dict: dict[str, Any]) -> None:
        self.records.take(message_dict)

    def _process_batch_message(self, message_dict: dict[str, Any]) -> None:
        self.records.take_batch(message_dict)
        self._handle_max_record_age()

    def _process_schema_message(self, message_dict: dict[str, Any]) -> None:
        """A schema the data source cannot take fails naming its line in the input."""
        try:
            super()._process_schema_message(message_dict)
        except ConfigError as exc:
            line = self._run.position.line
            raise ConfigError(f"Line {line} of the input (SCHEMA message): {exc}") from None
        self.records.schema_changed(str(message_dict["stream"]))

    def _process_activate_version_message(self, message_dict: dict[str, Any]) -> None:
        """A table version: after its records, it tells change tracking the table is whole."""
        stream = str(message_dict.get("stream"))
        self.logger.debug("ACTIVATE_VERSION %s of stream %s", message_dict.get("version"), stream)
        if self.config.get("process_activate_version_messages", True):
            self._run.activate_version(stream)

    # State and signals

    def _process_state_message(self, message_dict: dict[str, Any]) -> None:
        """Keep the state, and emit it at once if every record before it is committed."""
        super()._process_state_message(message_dict)
        self._run.state_arrived(message_dict["value"])
        self._run.emit_state()

    def _write_state_message(self, state: dict[str, Any]) -> None:
        """The SDK's drains end here: emit the state if the run's gate lets it through."""
        self._run.emit_state()

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        """Stop at once: commit nothing partial, emit the newest fully committed state."""
        code = 0 if self.run is None else self.run.terminate(signum)
        sys.stdout.flush()
        sys.stderr.flush()
        # Not sys.exit: drain threads may be mid-upload, and joblib would wait for them.
        os._exit(code)

    @property
    def _run(self) -> Run:
        assert self.run is not None
        return self.run

    # Command line

    @classmethod
    def invoke(  # type: ignore[override]  # the SDK's own signature is declared the same way
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
