"""Typed decoding: a stream's schema as a msgspec type, so records decode and validate in C.

For a stream whose schema maps onto plain types (strings, integers, numbers, booleans,
nulls, date-like strings, objects and arrays kept whole), ``typed_record`` builds a msgspec
Struct once; each RECORD line of the stream then decodes straight into it, the types and
required fields checked by msgspec, and ``TypedRecord.columns`` checks what msgspec does
not (numbers as the schema means them, numeric keywords in decimal arithmetic, lengths,
nested schemas, date-like values) column by column.

The contract with the record path of every other stream (the SDK's steps, ``validation.py``
and the sink's date parsing): a record the typed path accepts is one that path accepts,
and it yields the same values. Whatever the typed path refuses (a decode error, a value a
column check refuses, an unsupported schema) goes that other way, which decides and words
the error. Where msgspec is more lenient than the schema (a numeric string for a number,
an RFC 3339 date-time the SDK's parser reads differently), the field is decoded loosely
(``Any``, or the string itself) and checked here the way that path checks it.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from functools import cached_property
from typing import Any, Literal, Optional, Union, cast

import fastjsonschema
import msgspec
from singer_sdk.helpers._compat import (
    date_fromisoformat,
    datetime_fromisoformat,
    time_fromisoformat,
)
from singer_sdk.helpers._typing import get_datelike_property_type

from target_anaplan.csv_writer import IsoColumn
from target_anaplan.validation import NumericCheck, numeric_checks

# The record metadata the SDK removes before validating a record (add_record_metadata
# off, as on every stream this path takes): accepted with any value, never loaded.
SDC_METADATA = (
    "_sdc_extracted_at",
    "_sdc_received_at",
    "_sdc_batched_at",
    "_sdc_deleted_at",
    "_sdc_sequence",
    "_sdc_table_version",
    "_sdc_sync_started_at",
)
DELETED_AT = "_sdc_deleted_at"

# Keywords that say nothing about validity: ignored, as every validator ignores them.
_ANNOTATIONS = frozenset(
    {
        "$schema", "$id", "$comment", "title", "description", "default", "examples",
        "readOnly", "writeOnly", "deprecated", "inclusion", "selected",
        "contentMediaType", "contentEncoding", "format",
    }
)  # fmt: skip
_NUMERIC_KEYWORDS = frozenset(
    {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}
)
_LENGTH_KEYWORDS = frozenset({"minLength", "maxLength"})
# Keywords that constrain a value and that a field's schema may use on this path.
_FIELD_KEYWORDS = frozenset({"type"}) | _NUMERIC_KEYWORDS | _LENGTH_KEYWORDS
# Keywords that constrain a whole record and that the record's schema may use.
_RECORD_KEYWORDS = frozenset({"type", "properties", "required", "additionalProperties"})
# Validation keywords: a schema using any other than those above goes the other way.
# (Unknown keywords validate nothing, so they are annotations too.)
_VALIDATION_KEYWORDS = frozenset(
    {
        "type", "enum", "const", "pattern", "anyOf", "oneOf", "allOf", "not", "if", "then",
        "else", "$ref", "$dynamicRef", "items", "prefixItems", "additionalItems", "contains",
        "minContains", "maxContains", "minItems", "maxItems", "uniqueItems", "properties",
        "patternProperties", "additionalProperties", "required", "minProperties",
        "maxProperties", "dependencies", "dependentRequired", "dependentSchemas",
        "propertyNames", "unevaluatedItems", "unevaluatedProperties", "definitions",
        "$defs",
    }
) | _NUMERIC_KEYWORDS | _LENGTH_KEYWORDS  # fmt: skip
# Keywords a nested object or array schema may use (checked by compiled code per value).
_NESTED_KEYWORDS = frozenset(
    {"type", "properties", "items", "additionalProperties", "required", "format"}
)

_DATE_PARSERS: dict[str, Callable[[str], date | datetime | time]] = {
    "date-time": datetime_fromisoformat,
    "date": date_fromisoformat,
    "time": time_fromisoformat,
}
# JSON Schema type -> the Python classes of a decoded value of that type.
_CLASSES: dict[str, frozenset[type]] = {
    "string": frozenset({str}),
    "integer": frozenset({int}),
    "number": frozenset({int, Decimal}),
    "boolean": frozenset({bool}),
    "null": frozenset({type(None)}),
    "object": frozenset({dict}),
    "array": frozenset({list}),
}
# Types msgspec checks itself; any other field is decoded as Any and checked by class.
_STRICT: dict[str, type] = {"string": str, "integer": int, "boolean": bool}

ValueCheck = Callable[[Any], bool]


class _Unsupported(Exception):  # noqa: N818 (internal signal: the schema goes the other way)
    """The schema uses something the typed path does not decide exactly."""


@dataclass(frozen=True)
class TypedField:
    """How one field's decoded values become the values the loader formats."""

    name: str
    attr: str
    annotation: Any  # the msgspec type the value is decoded as
    required: bool  # whether a record must have it (required, or a key property)
    classes: frozenset[type] | None = None  # the value's classes; None: msgspec checked them
    check: ValueCheck | None = None  # a check beyond the type, True when the value is fine
    parse: Callable[[str], Any] | None = None  # a date-like field's parser (the SDK's)


@dataclass(frozen=True, eq=False)
class TypedRecord:
    """A stream's schema as a msgspec Struct, and how to check and read its columns."""

    type: type[msgspec.Struct]
    fields: Mapping[str, TypedField]
    digest: str  # of the schema it was made from (raw fingerprints depend on it)

    def columns(self, records: Sequence[Any], names: Sequence[str]) -> list[list[Any]] | None:
        """The values of fields ``names`` per record, as the other path would have them; or
        None when a value needs that path (it fails a check, or the record is a delete).

        Every field is checked, loaded or not: the other path validates whole records."""
        if self.deleted(records):
            return None  # deletes are rare: the other path handles them
        checked: dict[str, list[Any]] = {}
        for checking in self._checked_fields:
            values = _checked(checking, list(map(operator.attrgetter(checking.attr), records)))
            if values is None:
                return None
            checked[checking.name] = values
        columns: list[list[Any]] = []
        for name in names:
            field = self.fields.get(name)
            if field is None or name in SDC_METADATA:
                # Metadata is removed before a record is loaded: its columns are empty.
                columns.append([None] * len(records))
            elif name in checked:
                columns.append(checked[name])
            else:
                columns.append(list(map(operator.attrgetter(field.attr), records)))
        return columns

    @cached_property
    def _checked_fields(self) -> tuple[TypedField, ...]:
        """The fields whose values need more than msgspec's type check."""
        return tuple(
            field
            for field in self.fields.values()
            if field.classes is not None or field.check is not None or field.parse is not None
        )

    def with_ignored(self, names: Sequence[str]) -> TypedRecord:
        """The same record type, also accepting fields ``names`` (and ignoring their values):
        fields the schema does not declare, once the other path has warned about them."""
        fresh = [name for name in names if name not in self.fields]
        if not fresh:
            return self
        extra = {
            name: TypedField(name, f"x{len(self.fields) + i}", Any, required=False)
            for i, name in enumerate(fresh)
        }
        fields = {**self.fields, **extra}
        return TypedRecord(_struct(fields), fields, self.digest)

    def deleted(self, records: Sequence[Any]) -> bool:
        """Whether any of the records says its row was deleted (``_sdc_deleted_at``)."""
        return any(map(operator.attrgetter(self.fields[DELETED_AT].attr), records))

    def keys_of(self, raws: Sequence[msgspec.Raw], names: Sequence[str]) -> list[list[Any]] | None:
        """The key fields ``names`` of records still in JSON text, a column each, as the other
        path would have them (dates parsed); None if one does not decode, does not parse,
        or the record is a delete. One decoder call for the batch, reading only the keys."""
        decoder = self._key_decoder(tuple(names))
        try:
            keys = decoder.decode(b"[" + b",".join(raws) + b"]")
        except msgspec.DecodeError:
            return None
        if self.deleted(keys):
            return None  # a delete: the other path handles it
        columns = []
        try:
            for name in names:
                field = self.fields[name]
                values = list(map(operator.attrgetter(field.attr), keys))
                if field.parse is not None:
                    values = [value if value is None else field.parse(value) for value in values]
                columns.append(values)
        except (ValueError, TypeError):
            return None
        return columns

    def decode(self, raws: Sequence[msgspec.Raw]) -> list[Any] | None:
        """Records still in JSON text decoded into this type (one call for the batch); None
        if one does not decode."""
        try:
            return self._batch_decoder.decode(b"[" + b",".join(raws) + b"]")
        except msgspec.DecodeError:
            return None

    @cached_property
    def _batch_decoder(self) -> msgspec.json.Decoder[list[Any]]:
        return _list_decoder(self.type)

    def _key_decoder(self, names: tuple[str, ...]) -> msgspec.json.Decoder[list[Any]]:
        """Decodes records' key fields (as this type would) and delete marks, ignoring the
        rest."""
        found = self._key_decoders.get(names)
        if found is None:
            fields = {name: self.fields[name] for name in (*names, DELETED_AT)}
            struct = _struct(fields, "RecordKey", only_these=False)
            found = self._key_decoders[names] = _list_decoder(struct)
        return found

    @cached_property
    def _key_decoders(self) -> dict[tuple[str, ...], msgspec.json.Decoder[list[Any]]]:
        return {}


def _list_decoder(struct: type) -> msgspec.json.Decoder[list[Any]]:
    """A decoder of a JSON array of ``struct`` (numbers as the SDK reads them)."""
    records: Any = cast(Any, list)[struct]  # a list of a type made at run time
    return msgspec.json.Decoder(records, float_hook=Decimal)


def _checked(field: TypedField, values: list[Any]) -> list[Any] | None:
    """The column's values after its checks and parsing, or None if one fails."""
    if field.classes is not None and not field.classes.issuperset(map(type, values)):
        return None
    check = field.check
    try:
        if check is not None and not all(check(v) for v in values if v is not None):
            return None
    except Exception:
        return None
    parse = field.parse
    if parse is None:
        return values
    try:
        return IsoColumn([None if value is None else parse(value) for value in values], values)
    except (ValueError, TypeError):
        return None


def typed_record(
    schema: Mapping[str, Any], key_properties: Sequence[str], *, draft4: bool
) -> TypedRecord | None:
    """The typed decoding of a stream's records, or None when its schema is not supported."""
    try:
        return _typed_record(schema, key_properties, draft4=draft4)
    except _Unsupported:
        return None


def _typed_record(
    schema: Mapping[str, Any], key_properties: Sequence[str], *, draft4: bool
) -> TypedRecord:
    _only(schema, _RECORD_KEYWORDS | {"definitions", "$defs"})
    if _uses_ref(schema):
        raise _Unsupported
    if schema.get("type", "object") not in ("object", ["object"]):
        raise _Unsupported
    if not isinstance(schema.get("additionalProperties", True), bool):
        raise _Unsupported
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        raise _Unsupported
    required = set(schema.get("required") or ()) | set(key_properties)
    if required & set(SDC_METADATA) or not required <= set(properties):
        raise _Unsupported  # the SDK removes metadata before checking: other path
    fields: dict[str, TypedField] = {}
    for name, sub in properties.items():
        if name not in SDC_METADATA:
            fields[name] = _field(name, f"f{len(fields)}", sub, name in required, draft4=draft4)
    for number, name in enumerate(SDC_METADATA):
        fields[name] = TypedField(name, f"s{number}", Any, required=False)
    digest = json.dumps([schema, list(key_properties), draft4], sort_keys=True, default=str)
    return TypedRecord(_struct(fields), fields, digest)


def _struct(
    fields: Mapping[str, TypedField], name: str = "TypedRecord", *, only_these: bool = True
) -> type[msgspec.Struct]:
    """A Struct with attributes f0, f1, ... named as the record's fields in JSON.

    With ``only_these``, unknown fields are refused, so that the other path sees them (and
    warns, or refuses them under ``additionalProperties: false``); without, they are skipped.
    """
    struct: type[msgspec.Struct] = msgspec.defstruct(
        name,
        [
            (f.attr, f.annotation) if f.required else (f.attr, f.annotation, None)
            for f in fields.values()
        ],
        rename={field.attr: name for name, field in fields.items()},
        kw_only=True,
        forbid_unknown_fields=only_these,
    )
    return struct


def _field(name: str, attr: str, schema: Any, required: bool, *, draft4: bool) -> TypedField:
    """A field's msgspec annotation and checks."""
    if not isinstance(schema, Mapping):
        raise _Unsupported
    datelike = get_datelike_property_type(dict(schema))  # on the schema as the sink reads it
    schema = _nullable_union(schema)
    types = _types(schema)
    kinds = types - {"null"}
    nested = _nested_check(schema, kinds)
    _only(schema, _FIELD_KEYWORDS | (_NESTED_KEYWORDS if nested is not None else frozenset()))
    checks = _value_checks(schema, kinds, draft4=draft4)
    if nested is not None:
        checks.append(nested)
    if len(kinds) == 1 and (strict := _STRICT.get(next(iter(kinds)))) is not None:
        annotation: Any = Optional[strict] if "null" in types else strict  # noqa: UP045
        classes = None
    else:
        annotation = Any
        classes = frozenset().union(*(_CLASSES[kind] for kind in types)) if types else None
    parse = _DATE_PARSERS.get(datelike) if datelike else None
    if parse is not None and kinds != {"string"}:
        raise _Unsupported  # a date-like value of another type: the other path
    return TypedField(name, attr, annotation, required, classes, _all(checks), parse)


def _nullable_union(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """``anyOf``/``oneOf`` of simple, disjoint types (how SDK taps write nullable fields)
    as one schema with a type list; anything else is left for ``_only`` to refuse."""
    for keyword in ("anyOf", "oneOf"):
        branches = schema.get(keyword)
        if branches is None:
            continue
        if set(schema) - _ANNOTATIONS - {keyword} or not isinstance(branches, list):
            raise _Unsupported
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != keyword}
        types: list[str] = []
        for branch in branches:
            if not isinstance(branch, Mapping) or set(branch) - _ANNOTATIONS - {"type"}:
                raise _Unsupported
            branch_types = sorted(_types(branch))
            if not branch_types or set(branch_types) & set(types):
                raise _Unsupported  # overlapping types: oneOf would reject, anyOf not
            types += branch_types
            if "format" in branch:
                if "format" in merged:
                    raise _Unsupported
                merged["format"] = branch["format"]
        if {"integer", "number"} <= set(types):
            raise _Unsupported
        merged["type"] = types
        return merged
    return schema


def _types(schema: Mapping[str, Any]) -> set[str]:
    """The field's JSON types (empty: any value)."""
    declared = schema.get("type")
    if declared is None:
        return set()
    names = [declared] if isinstance(declared, str) else declared
    if not isinstance(names, list) or not all(name in _CLASSES for name in names):
        raise _Unsupported
    return set(names)


def _value_checks(schema: Mapping[str, Any], kinds: set[str], *, draft4: bool) -> list[ValueCheck]:
    checks: list[ValueCheck] = []
    numeric = numeric_checks(schema, draft4)
    if numeric:
        checks.append(_numeric(numeric))
    low, high = schema.get("minLength"), schema.get("maxLength")
    if low is not None or high is not None:
        if not all(isinstance(n, int) for n in (low or 0, high or 0)):
            raise _Unsupported
        checks.append(_length(low or 0, high))
    return checks


def _numeric(checks: Sequence[tuple[str, NumericCheck]]) -> ValueCheck:
    """Numeric keywords, in decimal arithmetic, on numbers only (as JSON Schema applies them)."""

    def check(value: Any) -> bool:
        if value.__class__ not in (int, Decimal):
            return True
        return all(problem(value) is None for _, problem in checks)

    return check


def _length(low: int, high: int | None) -> ValueCheck:
    """minLength/maxLength on strings only."""

    def check(value: Any) -> bool:
        if value.__class__ is not str:
            return True
        return low <= len(value) and (high is None or len(value) <= high)

    return check


def _nested_check(schema: Mapping[str, Any], kinds: set[str]) -> ValueCheck | None:
    """A compiled check of an object or array field's own schema, when it has one."""
    if not kinds & {"object", "array"} or not set(schema) & (_NESTED_KEYWORDS - {"type"}):
        return None
    if _deep_keywords(schema) - _NESTED_KEYWORDS - _ANNOTATIONS - {"definitions"}:
        raise _Unsupported
    validate = fastjsonschema.compile(dict(schema), use_default=False, use_formats=False)

    def check(value: Any) -> bool:
        try:
            validate(value)
        except fastjsonschema.JsonSchemaValueException:
            return False
        return True

    return check


def _deep_keywords(schema: Any) -> set[str]:
    """Every keyword used in a nested schema (properties' names aside)."""
    if isinstance(schema, list):
        return set().union(*map(_deep_keywords, schema)) if schema else set()
    if not isinstance(schema, Mapping):
        return set()
    found = set(schema)
    for key, value in schema.items():
        if key == "properties" and isinstance(value, Mapping):
            found |= _deep_keywords(list(value.values()))
        elif key in ("items", "additionalProperties"):
            found |= _deep_keywords(value)
    return found


def _only(schema: Mapping[str, Any], allowed: frozenset[str]) -> None:
    """Refuse a schema using a validation keyword this path does not decide."""
    used = {key for key in schema if key in _VALIDATION_KEYWORDS}
    if used - allowed:
        raise _Unsupported


def _uses_ref(schema: Any) -> bool:
    if isinstance(schema, Mapping):
        return "$ref" in schema or any(_uses_ref(value) for value in schema.values())
    if isinstance(schema, list):
        return any(_uses_ref(item) for item in schema)
    return False


def _all(checks: list[ValueCheck]) -> ValueCheck | None:
    if not checks:
        return None
    if len(checks) == 1:
        return checks[0]
    return lambda value: all(check(value) for check in checks)


@dataclass(frozen=True)
class RecordMessages:
    """How RECORD lines of typed streams decode: ``decoder`` gives a Struct whose class is
    the stream's in ``messages`` (``.record`` holds the typed record). Any other line
    fails to decode, or decodes into a class of none of the streams."""

    decoder: msgspec.json.Decoder[Any]
    messages: Mapping[str, type]


def message_decoder(
    streams: Mapping[str, TypedRecord], raw: Collection[str] = ()
) -> RecordMessages | None:
    """The decoder of RECORD lines of ``streams``; None without streams. The records of
    streams in ``raw`` are left as JSON text (``msgspec.Raw``), decoded later if need be."""
    if not streams:
        return None
    messages = {
        stream: msgspec.defstruct(
            "RecordMessage",
            [("type", Literal["RECORD"]), ("record", msgspec.Raw if stream in raw else typed.type)],
            tag_field="stream",
            tag=stream,
        )
        for stream, typed in streams.items()
    }
    types: list[type] = list(messages.values())
    if len(types) == 1:  # a tagged union needs two: this one's tag is no stream's name
        tag = "\x00" * (len(next(iter(streams))) + 1)
        types.append(msgspec.defstruct("NoMessage", [], tag_field="stream", tag=tag))
    union: Any = Union[tuple(types)]  # noqa: UP007 (a runtime union of built classes)
    return RecordMessages(msgspec.json.Decoder(union, float_hook=Decimal), messages)
