"""The SDK's sinks: records go straight to their stream's load; drains ask for a commit.

A sink is given everything it needs when the SDK creates it (``StreamWiring``: the
stream's load, how to commit it, how to name the record being read, the run's
validators), through a sink class made for its stream, because the SDK creates sinks
from a class and four fixed arguments. A sink never reaches back into the target.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from singer_sdk.exceptions import InvalidRecord, MissingKeyPropertiesError
from singer_sdk.helpers._compat import (
    date_fromisoformat,
    datetime_fromisoformat,
    time_fromisoformat,
)
from singer_sdk.helpers._typing import get_datelike_property_type
from singer_sdk.sinks import BatchSink

if TYPE_CHECKING:
    from singer_sdk.sinks.core import BaseJSONSchemaValidator

    from target_anaplan.loading import StreamLoad
    from target_anaplan.validation import Validators

_DATE_PARSERS = {
    "date-time": datetime_fromisoformat,
    "date": date_fromisoformat,
    "time": time_fromisoformat,
}


@dataclass(frozen=True)
class StreamWiring:
    """What every sink of one stream is handed when the SDK creates it."""

    load: StreamLoad
    # Commit the stream after what the plan puts before it; wait=False may leave the
    # stream's own commit running while the next batch is read.
    commit: Callable[..., None]
    where: Callable[[], str]  # the record being processed, for messages
    validators: Validators


class AnaplanSink(BatchSink):
    """Writes records straight to the stream's spool file; a drain commits or flushes it.

    Records never stay in the batch context, so memory is flat whatever the batch size.
    """

    # Rows per insert-mode commit unless batch_size_rows says otherwise. Every commit
    # costs an upload plus import runs of several seconds each, so commits should be
    # large; 100k rows of a typical stream is a few MB, far below one 25 MB chunk.
    # In all mode a full batch changes nothing: its rows are already in the spool file.
    MAX_SIZE_DEFAULT = 100_000
    wiring: ClassVar[StreamWiring]

    @classmethod
    def for_stream(cls, wiring: StreamWiring) -> type[AnaplanSink]:
        """A sink class that hands ``wiring`` to every sink the SDK makes for the stream."""
        return type(cls.__name__, (cls,), {"wiring": wiring})

    def __init__(
        self,
        target: Any,
        stream_name: str,
        schema: dict[str, Any],
        key_properties: Sequence[str] | None,
    ) -> None:
        self._deleted = False  # whether the record being processed says it was deleted
        super().__init__(target, stream_name, schema, key_properties)
        # Checked here, not in ``setup``: the SDK logs a second error line when setup fails.
        self.load.check_schema(self.schema["properties"], self.key_properties)

    @property
    def load(self) -> StreamLoad:
        """The stream's one load, shared by every sink the SDK makes for it."""
        return self.wiring.load

    def get_validator(self) -> BaseJSONSchemaValidator | None:
        """The run's validator for this schema, unless validate_records is off."""
        if not self.validate_schema:
            return None
        return self.wiring.validators.validator(self.stream_name, self.schema, self.wiring.where)

    def _validate_and_parse(self, record: dict[str, Any]) -> dict[str, Any]:
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
                    f"{self.wiring.where()}, field {name}: {value!r:.80} is not a valid {kind} "
                    "(ISO 8601 expected). Fix the tap's output or the field's format in its "
                    "schema."
                )
                raise InvalidRecord(msg, record) from None
        return record

    def _singer_validate_message(self, record: dict[str, Any]) -> None:
        """A record without its key properties is rejected, naming them."""
        missing = [key for key in self.key_properties if key not in record]
        if missing:
            msg = (
                f"{self.wiring.where()}, field {', '.join(missing)}: key property missing from "
                f"the record (key_properties: {', '.join(self.key_properties)}). Fix the tap's "
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

    def _warn_unknown_fields(self, record: dict[str, Any], known: frozenset[str]) -> None:
        """Once per field: a record carries a field its schema does not declare."""
        for name in record.keys() - known:
            if record[name] is not None and name not in self._warned_missing_fields:
                self._warned_missing_fields.add(name)
                self.logger.warning("No schema for record field '%s'", name)

    def _after_process_record(self, context: dict[str, Any]) -> None:
        # The SDK's hook only logs each record at debug level: a cost on every record.
        pass

    def _remove_sdc_metadata_from_record(self, record: dict[str, Any]) -> None:
        # Log-based taps mark deleted rows with _sdc_deleted_at, which the SDK removes here
        # (add_record_metadata is off): note it first, for change tracking's deletes.
        self._deleted = record.get("_sdc_deleted_at") is not None
        super()._remove_sdc_metadata_from_record(record)

    def process_record(self, record: dict[str, Any], context: dict[str, Any]) -> None:
        """Spool the record (or note its key as gone); never keep it in the batch context."""
        if self._deleted:
            self.load.delete(record)
        else:
            self.load.write(record)

    def process_batch(self, context: dict[str, Any]) -> None:
        """Insert and upsert modes: this drain is one commit, left running while the next
        batch is read. All mode: rows wait for the end of input."""
        if self.load.mode != "all":
            self.wiring.commit(wait=False)

    def clean_up(self) -> None:
        """End of input: commit what is left (an all-mode stream whole, once; with change
        tracking, the gone keys to clear). Later calls find nothing to do."""
        self.wiring.commit()
        super().clean_up()


class NullSink(BatchSink):
    """Takes an unmapped stream's records and drops them (``unmapped_streams: ignore``)."""

    def get_validator(self) -> BaseJSONSchemaValidator | None:
        """Nothing is loaded, so nothing needs checking."""
        return None

    def _validate_and_parse(self, record: dict[str, Any]) -> dict[str, Any]:
        # Not even date parsing: a skipped stream's content must not fail the run.
        return record

    def _singer_validate_message(self, record: dict[str, Any]) -> None:
        """Nor missing key properties."""

    def process_record(self, record: dict[str, Any], context: dict[str, Any]) -> None:
        """Drop the record."""

    def process_batch(self, context: dict[str, Any]) -> None:
        """Nothing was kept."""
