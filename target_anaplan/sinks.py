"""Singer sinks: hand each record to its stream's load and commit on the SDK's drains."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any

import fastjsonschema
from singer_sdk.exceptions import InvalidJSONSchema, InvalidRecord, MissingKeyPropertiesError
from singer_sdk.helpers._compat import (
    date_fromisoformat,
    datetime_fromisoformat,
    time_fromisoformat,
)
from singer_sdk.helpers._typing import get_datelike_property_type
from singer_sdk.sinks import BatchSink
from singer_sdk.sinks.core import BaseJSONSchemaValidator

if TYPE_CHECKING:
    from collections.abc import Sequence

    from singer_sdk.target_base import Target

    from target_anaplan.loading import StreamLoad

_DATE_PARSERS = {
    "date-time": datetime_fromisoformat,
    "date": date_fromisoformat,
    "time": time_fromisoformat,
}


# A compiled validator per distinct schema: compiling costs milliseconds, and the SDK
# makes a new sink (and asks for a validator) on every schema message that changes.
_COMPILED: dict[str, Callable[[Any], Any]] = {}
_COMPILED_LOCK = threading.Lock()


def _compile(schema: dict) -> Callable[[Any], Any]:
    key = json.dumps(schema, sort_keys=True, default=str)
    with _COMPILED_LOCK:
        if key not in _COMPILED:
            _COMPILED[key] = fastjsonschema.compile(schema, use_default=False, use_formats=False)
        return _COMPILED[key]


class FastValidator(BaseJSONSchemaValidator):
    """Checks records with fastjsonschema; the SDK's jsonschema caps a target near 10k/s.

    Like the SDK's own validator, string formats (date-time, ...) are not checked here:
    the sink parses date-like values right after validation and fails on bad ones.
    ``where`` names the record in messages (line of the input, stream, record number).
    """

    def __init__(self, stream: str, schema: dict, where: Callable[[], str]) -> None:
        super().__init__(schema)
        self._where = where
        try:
            self._check = _compile(schema)
        except fastjsonschema.JsonSchemaDefinitionException as exc:
            msg = f"The schema of stream {stream!r} is not valid JSON Schema: {exc}"
            raise InvalidJSONSchema(msg) from exc

    def validate(self, record: dict) -> None:
        """Raise ``InvalidRecord`` naming the stream, record number and field."""
        try:
            self._check(record)
        except fastjsonschema.JsonSchemaValueException as exc:
            field = exc.name.removeprefix("data").lstrip(".") or "(the record)"
            msg = (
                f"{self._where()}, field {field}: "
                f"{exc.message.removeprefix(exc.name).strip()} (value {exc.value!r:.80}). "
                "Fix the tap's output or its schema, or set validate_records: false."
            )
            raise InvalidRecord(msg, record) from exc


class AnaplanSink(BatchSink):
    """Writes records straight to the stream's spool file; a drain commits or flushes it.

    Records never stay in the batch context, so memory is flat whatever the batch size.
    """

    # Rows per insert-mode commit unless batch_size_rows says otherwise. Every commit
    # costs an upload plus import runs of several seconds each, so commits should be
    # large; 100k rows of a typical stream is a few MB, far below one 25 MB chunk.
    # In all mode a full batch changes nothing: its rows are already in the spool file.
    MAX_SIZE_DEFAULT = 100_000

    def __init__(
        self,
        target: Target,
        stream_name: str,
        schema: dict,
        key_properties: Sequence[str] | None,
    ) -> None:
        # The SDK does not keep the target; the stream's load lives there.
        self._owner = target
        self._load: StreamLoad | None = None
        super().__init__(target, stream_name, schema, key_properties)
        # Checked here, not in ``setup``: the SDK logs a second error line when setup fails.
        self.load.check_schema(self.schema["properties"])

    @property
    def load(self) -> StreamLoad:
        """The stream's shared load (created with the first sink of the stream)."""
        if self._load is None:
            self._load = self._owner.stream_load(self.stream_name)  # type: ignore[attr-defined]
        return self._load

    def where(self) -> str:
        """The record being processed: line of the input, stream and record number."""
        return self._owner.input_position()  # type: ignore[attr-defined]

    def get_validator(self) -> BaseJSONSchemaValidator | None:
        """A compiled validator, unless validate_records is off."""
        if not self.validate_schema:
            return None
        return FastValidator(self.stream_name, self.schema, self.where)

    def _validate_and_parse(self, record: dict) -> dict:
        # Replaces the SDK's version for two reasons: it logs a traceback before
        # re-raising InvalidRecord (the target reports bad input as one line), and it
        # looks up every field's schema on every record to find date-like values, which
        # costs more than formatting the row. Behaviour is otherwise the same.
        if self._validator is not None:
            self._validator.validate(record)
        known = self._known_fields
        if known is not None and not record.keys() <= known:
            self._warn_unknown_fields(record, known)
        for name, kind in self._datelike_fields.items():
            value = record.get(name)
            if value is None:
                continue
            try:
                record[name] = _DATE_PARSERS[kind](value)
            except (ValueError, TypeError):
                msg = (
                    f"{self.where()}, field {name}: {value!r:.80} is not a valid {kind} "
                    "(ISO 8601 expected). Fix the tap's output or the field's format in its "
                    "schema."
                )
                raise InvalidRecord(msg, record) from None
        return record

    def _singer_validate_message(self, record: dict) -> None:
        """A record without its key properties is rejected, naming them."""
        missing = [key for key in self.key_properties if key not in record]
        if missing:
            msg = (
                f"{self.where()}, field {', '.join(missing)}: key property missing from the "
                f"record (key_properties: {', '.join(self.key_properties)}). Fix the tap's "
                "output."
            )
            raise MissingKeyPropertiesError(msg)

    @cached_property
    def _datelike_fields(self) -> dict[str, str]:
        """Field name -> 'date-time' | 'date' | 'time', from the schema, computed once."""
        properties = self.schema["properties"]
        return {
            name: kind
            for name, prop in properties.items()
            if (kind := get_datelike_property_type(prop)) is not None
        }

    @cached_property
    def _known_fields(self) -> frozenset[str] | None:
        """The declared fields, or None when the schema allows any others."""
        if self.schema.get("additionalProperties", False):
            return None
        return frozenset(self.schema["properties"])

    def _warn_unknown_fields(self, record: dict, known: frozenset[str]) -> None:
        """Once per field: a record carries a field its schema does not declare."""
        for name in record.keys() - known:
            if record[name] is not None and name not in self._warned_missing_fields:
                self._warned_missing_fields.add(name)
                self.logger.warning("No schema for record field '%s'", name)

    def _after_process_record(self, context: dict) -> None:
        # The SDK's hook only logs each record at debug level: a cost on every record.
        pass

    def process_record(self, record: dict, context: dict) -> None:
        """Spool the record; never keep it in the batch context."""
        self.load.write(record)

    def process_batch(self, context: dict) -> None:
        """Insert mode: this drain is one commit. All mode: rows wait for end of input."""
        if self.load.mode == "insert":
            self.load.commit()

    def clean_up(self) -> None:
        """End of input: an all-mode stream is committed once, whole (later calls: no-op)."""
        if self.load.mode == "all":
            self.load.commit()
        super().clean_up()


class NullSink(BatchSink):
    """Takes an unmapped stream's records and drops them (``unmapped_streams: ignore``)."""

    def get_validator(self) -> BaseJSONSchemaValidator | None:
        """Nothing is loaded, so nothing needs checking."""
        return None

    def _validate_and_parse(self, record: dict) -> dict:
        # Not even date parsing: a skipped stream's content must not fail the run.
        return record

    def _singer_validate_message(self, record: dict) -> None:
        """Nor missing key properties."""

    def process_record(self, record: dict, context: dict) -> None:
        """Drop the record."""

    def process_batch(self, context: dict) -> None:
        """Nothing was kept."""
