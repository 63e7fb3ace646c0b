"""The record path: every RECORD (and every record of a BATCH file) to its stream's sink.

Most streams are *plain*: no stream map but the identity, no flattening, no metadata
columns. Their records skip the SDK's generic per-record steps that do nothing for them
(copying the record, running the identity map, looking the sink up, the per-record debug
hook). Two ways, fastest first:

* *Typed*: a plain stream whose schema maps onto msgspec types (``decoding.py``). The
  reader decodes its RECORD lines straight into typed records (validated in C) and hands
  them here; a thousand at a time they reach the stream's load as columns, with the SDK's
  bookkeeping done once per batch: the batch context, the read tally and record counter,
  the drain when ``batch_size_rows`` is reached (batches are cut exactly there), the
  record-age check. A batch with a value the typed path does not decide (see
  ``TypedRecord.columns``) goes the next way, line by line, so its outcome and messages
  are exactly that way's.
* *Plain*: ``take_plain_record`` does the SDK's remaining per-record steps in its order.

Every other record goes the SDK's own way. Checked against singer-sdk 0.54.9:
``Target._process_record_message`` makes the calls in ``SDK_RECORD_STEPS``, and a test
fails if an SDK upgrade changes them.
"""

from __future__ import annotations

import contextlib
import gzip
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from singer_sdk.contrib.msgspec import decoder
from singer_sdk.exceptions import RecordsWithoutSchemaException
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.singerlib.exceptions import InvalidInputLine

from target_anaplan.decoding import TypedRecord, message_decoder, typed_record
from target_anaplan.errors import InputError
from target_anaplan.loading import FORMAT_BATCH, LookAhead
from target_anaplan.sinks import AnaplanSink
from target_anaplan.validation import dialect_of

if TYPE_CHECKING:
    from singer_sdk.helpers._batch import BaseBatchFileEncoding
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


@dataclass
class TypedStream:
    """A typed stream's sink and decoding, and the records read but not yet loaded."""

    stream: str
    sink: AnaplanSink
    record: TypedRecord
    # Records left in JSON text until change tracking has skipped the unchanged ones
    # (insert and upsert modes): most of a full-table tap's records are never decoded.
    raw: bool = False
    records: list[Any] = field(default_factory=list)
    lines: list[bytes | str] = field(default_factory=list)  # as read, for the other path
    # The first one's line number: they are consecutive lines of the input, since any
    # other line loads the records held before it is handled.
    first_line: int = 0
    # A batch of records left as JSON text, read ahead: loaded when the next batch is (its
    # keys are looked up meanwhile) or before any other message.
    staged: Staged | None = None


@dataclass
class Staged:
    """Records read ahead, with what change tracking looked up of them."""

    records: list[Any]
    lines: list[bytes | str]
    first_line: int
    ahead: LookAhead


class RecordPath:
    """Routes records for one target: typed or plain where that applies, else the SDK's.

    ``decode`` (None while no stream is typed) decodes a RECORD line of a typed stream; the
    reader hands what it decodes to ``take_typed`` and calls ``flush`` before any other
    message, so records reach their loads in input order relative to every other message.
    """

    def __init__(
        self,
        target: Target,
        position: InputPosition,
        sdk_path: Callable[[dict[str, Any]], None],
        sinks: Callable[[], dict[str, Sink]],
        decode_line: Callable[[bytes | str], dict[str, Any]],
    ) -> None:
        self._target = target
        self._position = position
        self._sdk_path = sdk_path
        self._sinks = sinks
        self._decode_line = decode_line
        # Stream -> its sink when its records are plain (None: they are not); rebuilt
        # after every SCHEMA message, the only time sinks and maps change.
        self._plain: dict[str, AnaplanSink | None] = {}
        self._typed: dict[str, TypedStream] = {}
        self._by_message: dict[type, TypedStream] = {}
        self._current: TypedStream | None = None  # the stream of the records held
        self.decode: Callable[[bytes | str], Any] | None = None

    def schema_changed(self, stream: str) -> None:
        """After a SCHEMA message: the stream's sink, maps or schema may have changed."""
        self.flush()
        self._current = None
        self._plain.clear()
        self._typed.pop(stream, None)
        sink = self._plain_sink(stream)
        typed = _typed_record(sink) if sink is not None else None
        if sink is not None and typed is not None:
            tracking = sink.load.tracking
            raw = tracking is not None and tracking.filters
            self._typed[stream] = TypedStream(stream, sink, typed, raw)
        self._rebuild_decoder()

    def take_typed(self, message: Any, line: bytes | str, number: int) -> bool:
        """A typed RECORD message (``decode``'s result); False if it is not one after all."""
        typed = self._by_message.get(message.__class__)
        if typed is None:
            return False
        if typed is not self._current:  # records reach their loads in input order
            self.flush()
            self._current = typed
        if not typed.records:
            typed.first_line = number
        typed.records.append(message.record)
        typed.lines.append(line)
        if len(typed.records) >= FORMAT_BATCH:
            self._flush(typed)
        return True

    def flush(self) -> None:
        """Load every typed record read so far (all of one stream: see ``take_typed``)."""
        typed = self._current
        if typed is not None:
            if typed.records:
                self._flush(typed)
            self._load_staged(typed)

    def _flush(self, typed: TypedStream) -> None:
        """Load the records held (records left as text: read ahead, and load the batch read
        ahead before)."""
        records, lines, first = typed.records, typed.lines, typed.first_line
        typed.records, typed.lines = [], []
        if typed.raw:
            ahead = typed.sink.load.look_ahead(typed.record, records)
            self._load_staged(typed)
            typed.staged = Staged(records, lines, first, ahead)
            return
        self._load_batch(typed, records, lines, first, None)

    def _load_staged(self, typed: TypedStream) -> None:
        staged, typed.staged = typed.staged, None
        if staged is not None:
            self._load_batch(typed, staged.records, staged.lines, staged.first_line, staged.ahead)

    def _load_batch(
        self,
        typed: TypedStream,
        records: list[Any],
        lines: list[Any],
        first: int,
        ahead: LookAhead | None,
    ) -> None:
        numbers = range(first, first + len(records))
        sink = typed.sink
        start = 0
        while start < len(records):
            # Cut where the sink is full, so drains fall on the same record as one by one.
            end = min(len(records), start + max(sink.max_size - sink.current_size, 1))
            part = (ahead, start, end) if ahead is not None else None
            self._load(typed, records[start:end], lines[start:end], numbers[start:end], part)
            start = end
        self._target._handle_max_record_age()

    def _load(
        self,
        typed: TypedStream,
        records: list[Any],
        lines: list[Any],
        numbers: Sequence[int],
        ahead: tuple[LookAhead, int, int] | None = None,
    ) -> None:
        """One slice of typed records to the stream's load, with the SDK's bookkeeping; or,
        when a value needs it, line by line the other way. With change tracking, records
        known unchanged are skipped before anything else is done with them."""
        sink = typed.sink
        load = sink.load
        count = len(records)
        prefiltered = None
        if ahead is not None:
            prefiltered = load.prefilter(*ahead)
            if prefiltered is None:
                self._replay(lines, numbers)
                return
            kept = prefiltered.kept
            if len(kept) < count:
                lines = [lines[index] for index in kept]
                numbers_kept: Sequence[int] = [numbers[index] for index in kept]
                records = [records[index] for index in kept]
            else:
                numbers_kept = numbers
            decoded = typed.record.decode(records)
            columns = None if decoded is None else typed.record.columns(decoded, load.fields)
        else:
            numbers_kept = numbers
            columns = typed.record.columns(records, load.fields)
        if columns is None:
            skipped = count - len(lines)
            if skipped:  # those are done: counted as received and unchanged
                load.skipped(skipped)
                self._count(typed, skipped, numbers[-1])
            self._replay(lines, numbers_kept)
            return
        sink._get_context({})  # starts the SDK's batch, as its first record would
        load.write_columns(columns, count, prefiltered)
        self._count(typed, count, numbers[-1])
        if sink.is_full:
            self._target.logger.info(
                "Target sink for '%s' is full. Current size is '%s'. Draining...",
                sink.stream_name,
                sink.current_size,
            )
            self._target.drain_one(sink)

    def _count(self, typed: TypedStream, count: int, last_line: int) -> None:
        """The SDK's read tally and record counter, and the input position, for ``count``
        records of the stream."""
        sink = typed.sink
        sink.tally_record_read(count)
        sink.record_counter_metric.increment(count)
        position = self._position
        position.line = last_line
        position.stream = typed.stream
        position.records[typed.stream] += count

    def _replay(self, lines: list[Any], numbers: Sequence[int]) -> None:
        """Records the typed path does not decide, each the way it would go alone."""
        for line, number in zip(lines, numbers, strict=True):
            self._position.line = number
            self.take(self._decode_line(line))

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
                self._learn_fields(stream, record)
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
        # Only now: the SDK's batch helpers bring fsspec, a tenth of the start-up otherwise.
        from singer_sdk.helpers._batch import BaseBatchFileEncoding, BatchFileFormat  # noqa: PLC0415

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

    def _learn_fields(self, stream: str, record: dict[str, Any]) -> None:
        """A record of a typed stream went the plain way and was loaded: if it carried
        fields the schema does not declare (warned about once), later records with them
        stay typed."""
        typed = self._typed.get(stream)
        if typed is None:
            return
        unknown = [name for name in record if name not in typed.record.fields]
        if unknown:
            typed.record = typed.record.with_ignored(unknown)
            self._rebuild_decoder()

    def _rebuild_decoder(self) -> None:
        decoder = message_decoder(
            {s: typed.record for s, typed in self._typed.items()},
            raw=[s for s, typed in self._typed.items() if typed.raw],
        )
        if decoder is None:
            self.decode, self._by_message = None, {}
            return
        self.decode = decoder.decoder.decode
        self._by_message = {cls: self._typed[s] for s, cls in decoder.messages.items()}


def _typed_record(sink: AnaplanSink) -> TypedRecord | None:
    """The typed decoding of the sink's records, if its schema allows one."""
    dialect = dialect_of(sink.schema)
    if dialect.validator.__name__ == "Draft3Validator":
        return None  # draft-3 (``required: true`` in a field...) is left to jsonschema
    return typed_record(sink.schema, sink.key_properties, draft4=dialect.draft4)


def _batch_records(encoding: BaseBatchFileEncoding, files: Any) -> Iterator[dict[str, Any]]:
    """The records of a BATCH message's JSONL files (the SDK's file storage), in order."""
    from singer_sdk.helpers._batch import StorageTarget  # noqa: PLC0415 (as in take_batch)

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
