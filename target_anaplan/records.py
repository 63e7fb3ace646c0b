"""The record path: every RECORD (and every record of a BATCH file) to its stream's sink.

Most streams are *plain*: no stream map but the identity, no flattening, no metadata
columns. Their records skip the SDK's generic per-record steps that do nothing for them
(copying the record, running the identity map, looking the sink up, the per-record debug
hook), which is a third of the target's time per record. ``take_plain_record`` does the
remaining steps in the SDK's order; every other record goes the SDK's own way.

Checked against singer-sdk 0.54.9: ``Target._process_record_message`` makes the calls in
``SDK_RECORD_STEPS``, and a test fails if an SDK upgrade changes them.
"""

from __future__ import annotations

import contextlib
import gzip
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from singer_sdk.contrib.msgspec import decoder
from singer_sdk.exceptions import RecordsWithoutSchemaException
from singer_sdk.helpers._batch import BaseBatchFileEncoding, BatchFileFormat, StorageTarget
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.singerlib.exceptions import InvalidInputLine

from target_anaplan.errors import InputError
from target_anaplan.sinks import AnaplanSink

if TYPE_CHECKING:
    from singer_sdk.sinks import Sink
    from singer_sdk.target_base import Target

    from target_anaplan.reader import InputPosition

# The calls of singer-sdk 0.54.9's Target._process_record_message, in order. The plain
# path keeps those marked True; the others do nothing for a plain Anaplan sink (the
# identity map copies and returns the record; the sink is the stream's active one;
# metadata is only removed; preprocess_record and _after_process_record are no-ops).
SDK_RECORD_STEPS: tuple[tuple[str, bool], ...] = (
    ("_assert_line_requires", False),
    ("_assert_sink_exists", False),
    ("copy", False),
    ("transform", False),
    ("_assert_sink_exists", False),
    ("get_sink", False),
    ("_get_context", True),
    ("_add_sdc_metadata_to_record", False),
    ("_remove_sdc_metadata_from_record", True),
    ("_validate_and_parse", True),
    ("preprocess_record", False),
    ("_singer_validate_message", True),
    ("tally_record_read", True),
    ("process_record", True),
    ("increment", True),
    ("_after_process_record", False),
    ("info", True),
    ("drain_one", True),
    ("_handle_max_record_age", True),
)

_UNKNOWN: Any = object()


def take_plain_record(target: Target, sink: AnaplanSink, record: dict[str, Any]) -> None:
    """The SDK's record steps that do something for a plain sink, in the SDK's order."""
    context = sink._get_context(record)  # SDK_RECORD_STEPS pins these
    sink._remove_sdc_metadata_from_record(record)
    sink._validate_and_parse(record)
    sink._singer_validate_message(record)
    sink.tally_record_read()
    sink.process_record(record, context)
    sink.record_counter_metric.increment()
    if sink.is_full:
        target.logger.info(
            "Target sink for '%s' is full. Current size is '%s'. Draining...",
            sink.stream_name,
            sink.current_size,
        )
        target.drain_one(sink)
    target._handle_max_record_age()


class RecordPath:
    """Routes records for one target: the plain path where it applies, else the SDK's."""

    def __init__(
        self,
        target: Target,
        position: InputPosition,
        sdk_path: Callable[[dict[str, Any]], None],
        sinks: Callable[[], dict[str, Sink]],
    ) -> None:
        self._target = target
        self._position = position
        self._sdk_path = sdk_path
        self._sinks = sinks
        # Stream -> its sink when its records are plain (None: they are not); rebuilt
        # after every SCHEMA message, the only time sinks and maps change.
        self._plain: dict[str, AnaplanSink | None] = {}

    def forget_sinks(self) -> None:
        """A SCHEMA message may have changed the stream's sink or maps."""
        self._plain.clear()

    def take(self, message: dict[str, Any]) -> None:
        """One RECORD message: numbered within its stream, then loaded."""
        stream_name = message.get("stream")
        position = self._position
        position.stream = stream = str(stream_name)
        position.records[stream] += 1
        record = message.get("record")
        if record.__class__ is dict and stream is stream_name:
            sink = self._plain.get(stream, _UNKNOWN)
            if sink is _UNKNOWN:
                sink = self._plain[stream] = self._plain_sink(stream)
            if sink is not None:
                take_plain_record(self._target, sink, record)
                return
        elif not isinstance(message.get("record", {}), dict):
            msg = f"{position.describe()}: the record is not a JSON object."
            raise InvalidInputLine(msg)
        try:
            self._sdk_path(message)
        except RecordsWithoutSchemaException:
            msg = (
                f"{position.describe()}: a RECORD arrived before the stream's SCHEMA "
                "message. The tap must send a stream's SCHEMA before its records."
            )
            raise RecordsWithoutSchemaException(msg) from None

    def take_batch(self, message: dict[str, Any]) -> None:
        """A BATCH message: each record of its files is loaded as a RECORD message would be."""
        stream = message.get("stream")
        encoding = BaseBatchFileEncoding.from_dict(message.get("encoding") or {})
        if encoding.format != BatchFileFormat.JSONL:
            raise InputError(
                f"Line {self._position.line} of the input: a BATCH message of stream "
                f"{stream!r} with {encoding.format} files cannot be loaded; only jsonl batch "
                "files (optionally gzip) are. Set the tap's batch_config encoding format to "
                "jsonl, or turn its batch messages off."
            )
        for record in _batch_records(encoding, message.get("manifest") or ()):
            self.take({"type": "RECORD", "stream": stream, "record": record})

    def _plain_sink(self, stream: str) -> AnaplanSink | None:
        """The stream's sink if it is an Anaplan sink fed by the identity stream map (no
        stream maps, no flattening, no alias) without record metadata to add."""
        maps = self._target.mapper.stream_maps.get(stream) or []
        sink = self._sinks().get(stream)
        plain = (
            len(maps) == 1
            and type(maps[0]) is SameRecordTransform
            and maps[0].stream_alias == stream
            and not maps[0].flattening_enabled
        )
        if plain and isinstance(sink, AnaplanSink) and not sink.include_sdc_metadata_properties:
            return sink
        return None


def _batch_records(encoding: BaseBatchFileEncoding, files: Any) -> Iterator[dict[str, Any]]:
    """The records of a BATCH message's JSONL files (the SDK's file storage), in order."""
    for path in files:
        head, tail = StorageTarget.split_url(path)
        with contextlib.ExitStack() as opened:
            file = opened.enter_context(StorageTarget.from_url(head).open(tail, "rb"))
            lines: Iterable[bytes] = file
            if encoding.compression == "gzip":
                lines = opened.enter_context(gzip.open(file))
            for line in lines:
                if line.strip():
                    yield decoder.decode(line)
