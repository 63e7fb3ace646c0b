"""Record validation for every JSON Schema dialect Singer taps write.

Taps write schemas in different dialects: singer-python taps (PipelineWise, singer-io)
write draft-4, where ``exclusiveMaximum: true`` modifies ``maximum``; SDK taps write
2020-12-style schemas. The dialect is taken from ``$schema`` when present, else
inferred (boolean exclusive bounds mean draft-4, anything else is read like the SDK).

Each schema is first checked to be valid JSON Schema in its dialect (``jsonschema``).
Records are then checked by fastjsonschema's compiled code wherever that is exact, which
is ten times faster than ``jsonschema``. It is not exact for numeric keywords: it writes
their values into its code as float literals, so ``multipleOf: 0.01`` against a Decimal
crashes and a bound like ``19.99`` is compared as a binary float. So numeric keywords of
a stream's fields are checked here with Decimal arithmetic instead, and a schema with
numeric keywords deeper down (or keywords fastjsonschema does not know) is checked by
``jsonschema`` with a Decimal-exact ``multipleOf``. String formats are not checked (as
in the SDK): the sink parses date-like values after validation and fails on bad ones.

A validator that crashes on a record is a bug, not bad input: it is reported as one
line naming the record, field and keyword (``ValidatorCrashError``).
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any, cast

import fastjsonschema
import jsonschema
from jsonschema import validators as dialects
from singer_sdk.exceptions import InvalidJSONSchema, InvalidRecord
from singer_sdk.sinks.core import BaseJSONSchemaValidator

from target_anaplan.errors import TargetAnaplanError

DRAFT4 = "http://json-schema.org/draft-04/schema#"
# What a `$schema` URI contains for each dialect jsonschema knows.
_DIALECTS: tuple[tuple[str, type[jsonschema.protocols.Validator]], ...] = (
    ("draft-03", jsonschema.Draft3Validator),
    ("draft-04", jsonschema.Draft4Validator),
    ("draft-06", jsonschema.Draft6Validator),
    ("draft-07", jsonschema.Draft7Validator),
    ("2019-09", jsonschema.Draft201909Validator),
    ("2020-12", jsonschema.Draft202012Validator),
)
_NUMERIC = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
# Keywords fastjsonschema (draft 2019 at most) does not implement: such schemas go to jsonschema.
_UNKNOWN_TO_FAST = frozenset(
    {"prefixItems", "$dynamicRef", "$dynamicAnchor", "unevaluatedItems", "unevaluatedProperties"}
)
# Subschema-holding keywords, to walk a schema: single, list, and map of subschemas.
_ONE = ("items", "additionalProperties", "not", "if", "then", "else", "contains")
_MANY = ("anyOf", "oneOf", "allOf", "prefixItems")
_MAP = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")


class ValidatorCrashError(TargetAnaplanError):
    """Checking a record failed for a reason that is not the record's fault (a bug)."""


@dataclass(frozen=True)
class Dialect:
    """The JSON Schema dialect of a stream's schema, and whether it was inferred."""

    validator: type[jsonschema.protocols.Validator]
    draft4: bool


def dialect_of(schema: Mapping[str, Any]) -> Dialect:
    """``$schema`` when it names a dialect; else draft-4 if a bound is boolean; else 2020-12."""
    uri = str(schema.get("$schema") or "")
    known = next((cls for mark, cls in _DIALECTS if mark in uri), None)
    if known is None:
        known = jsonschema.Draft4Validator if _boolean_bounds(schema) else None
    validator = known or jsonschema.Draft202012Validator
    return Dialect(
        validator, draft4=validator in (jsonschema.Draft3Validator, jsonschema.Draft4Validator)
    )


def _subschemas(schema: Any) -> Iterator[Mapping[str, Any]]:
    """``schema`` and every schema inside it."""
    if not isinstance(schema, Mapping):
        return
    yield schema
    for key in _ONE:
        yield from _subschemas(schema.get(key))
    for key in _MANY:
        for item in schema.get(key) or ():
            yield from _subschemas(item)
    items = schema.get("items")
    if isinstance(items, list):  # draft-4..2019 tuple form
        for item in items:
            yield from _subschemas(item)
    for key in _MAP:
        entries = schema.get(key)
        if isinstance(entries, Mapping):
            for item in entries.values():
                yield from _subschemas(item)


def _boolean_bounds(schema: Mapping[str, Any]) -> bool:
    return any(
        isinstance(sub.get(key), bool)
        for sub in _subschemas(schema)
        for key in ("exclusiveMinimum", "exclusiveMaximum")
    )


# --- Exact numeric checks --------------------------------------------------------------


def _number(value: Any) -> Decimal:
    """A JSON number as an exact Decimal (a float's shortest repr, never its binary value)."""
    return value if isinstance(value, Decimal) else Decimal(repr(value))


def is_multiple(value: Any, divisor: Any) -> bool:
    """Whether ``value`` is an integer multiple of ``divisor``, in exact decimal arithmetic."""
    with localcontext() as context:
        context.prec = 1000
        context.Emax = 10**9
        context.Emin = -(10**9)
        quotient = _number(value) / _number(divisor)
        return quotient == quotient.to_integral_value()


NumericCheck = Callable[[Any], "str | None"]


def numeric_checks(schema: Mapping[str, Any], draft4: bool) -> list[tuple[str, NumericCheck]]:
    """(keyword, check) for the numeric keywords of one field's schema; a check gives the
    problem as text, or None. Draft-4 boolean exclusive bounds modify minimum/maximum."""
    checks: list[tuple[str, NumericCheck]] = []
    for bound, exclusive_key, below in (
        ("minimum", "exclusiveMinimum", True),
        ("maximum", "exclusiveMaximum", False),
    ):
        exclusive = schema.get(exclusive_key)
        if bound in schema:
            limit = _number(schema[bound])
            strict = draft4 and exclusive is True
            checks.append((bound, _bound_check(limit, below=below, strict=strict)))
        if not isinstance(exclusive, bool) and exclusive is not None:
            checks.append(
                (exclusive_key, _bound_check(_number(exclusive), below=below, strict=True))
            )
    if "multipleOf" in schema:
        divisor = schema["multipleOf"]

        def multiple(value: Any) -> str | None:
            return None if is_multiple(value, divisor) else f"must be multiple of {divisor}"

        checks.append(("multipleOf", multiple))
    return checks


def _bound_check(limit: Decimal, *, below: bool, strict: bool) -> NumericCheck:
    word = "bigger" if below else "smaller"
    problem = (
        f"must be {word} than {limit}" if strict else f"must be {word} than or equal to {limit}"
    )

    def check(value: Any) -> str | None:
        number = _number(value)
        if below:
            ok = number > limit if strict else number >= limit
        else:
            ok = number < limit if strict else number <= limit
        return None if ok else problem

    return check


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


# --- The validator of one schema -------------------------------------------------------


def _exact_multiple_of(
    validator: Any, divisor: Any, instance: Any, schema: Any
) -> Iterator[jsonschema.ValidationError]:
    """jsonschema's ``multipleOf``, in exact decimal arithmetic (its own divides floats)."""
    if _is_number(instance) and not is_multiple(instance, divisor):
        yield jsonschema.ValidationError(f"{instance!r} is not a multiple of {divisor}")


def _exact_validator(schema: Mapping[str, Any], dialect: Dialect) -> jsonschema.protocols.Validator:
    extend = cast("Callable[..., type[jsonschema.protocols.Validator]]", dialects.extend)
    return extend(dialect.validator, {"multipleOf": _exact_multiple_of})(schema)


@dataclass(frozen=True)
class _Checks:
    """How records of one schema are checked: compiled code plus exact numeric checks, or
    jsonschema alone (``exact``)."""

    compiled: Callable[[Any], Any] | None
    numeric: Mapping[str, tuple[tuple[str, NumericCheck], ...]]
    exact: jsonschema.protocols.Validator | None


def _plan(schema: Mapping[str, Any], dialect: Dialect) -> _Checks:
    properties = schema.get("properties") or {}
    fields = {name: sub for name, sub in properties.items() if isinstance(sub, Mapping)}
    top = set(map(id, fields.values()))
    deep_numeric = any(
        key in sub for sub in _subschemas(schema) if id(sub) not in top for key in _NUMERIC
    )
    unknown = any(_UNKNOWN_TO_FAST & sub.keys() for sub in _subschemas(schema))
    if deep_numeric or unknown or dialect.validator is jsonschema.Draft3Validator:
        return _Checks(None, {}, _exact_validator(schema, dialect))
    stripped = copy.deepcopy(dict(schema))
    if dialect.draft4:
        stripped["$schema"] = DRAFT4
    numeric = {}
    for name, sub in fields.items():
        checks = numeric_checks(sub, dialect.draft4)
        if checks:
            numeric[name] = tuple(checks)
            for key in _NUMERIC:
                stripped["properties"][name].pop(key, None)
    try:
        plain = _float_numbers(stripped)
    except _NotExactError:  # e.g. `enum: [0.1]`: compiled code would compare binary floats
        return _Checks(None, {}, _exact_validator(schema, dialect))
    compiled = fastjsonschema.compile(plain, use_default=False, use_formats=False)
    return _Checks(compiled, numeric, None)


class _NotExactError(Exception):
    """A number in the schema that a float literal in compiled code would not equal."""


def _float_numbers(value: Any) -> Any:
    """The schema with its Decimals as ints or floats (fastjsonschema writes them into code)."""
    if isinstance(value, Mapping):
        return {key: _float_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_float_numbers(item) for item in value]
    if isinstance(value, Decimal):
        if value == value.to_integral_value():
            return int(value)
        if Decimal(float(value)) != value:
            raise _NotExactError
        return float(value)
    return value


class Validators:
    """Compiled checks per distinct schema, for one run.

    Compiling costs milliseconds and the SDK makes a new sink (and asks for a validator)
    on every SCHEMA message that changes, so each distinct schema is compiled once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._plans: dict[str, _Checks] = {}

    def validator(
        self, stream: str, schema: Mapping[str, Any], where: Callable[[], str]
    ) -> RecordValidator:
        """The validator for a stream's schema; an invalid schema fails naming the stream."""
        dialect = dialect_of(schema)
        try:
            dialect.validator.check_schema(dict(schema))
        except jsonschema.SchemaError as error:
            at = "/".join(str(p) for p in error.absolute_path) or "the top level"
            msg = (
                f"The SCHEMA message of stream {stream!r} is not a valid JSON Schema "
                f"({dialect.validator.__name__.removesuffix('Validator')}): at {at}, "
                f"{error.message}. Fix the tap's schema, or set validate_records: false."
            )
            raise InvalidJSONSchema(msg) from None
        key = json.dumps(schema, sort_keys=True, default=str)
        with self._lock:
            plan = self._plans.get(key)
            if plan is None:
                plan = self._plans[key] = _plan(schema, dialect)
        return RecordValidator(schema, plan, where)


class RecordValidator(BaseJSONSchemaValidator):
    """Checks one stream's records; ``where`` names the record in messages."""

    def __init__(
        self, schema: Mapping[str, Any], checks: _Checks, where: Callable[[], str]
    ) -> None:
        super().__init__(dict(schema))
        self._checks = checks
        self._where = where

    def validate(self, record: dict[str, Any]) -> None:
        """Raise ``InvalidRecord`` naming the stream, record number, field and problem."""
        checks = self._checks
        if checks.exact is not None:
            self._validate_exactly(checks.exact, record)
            return
        assert checks.compiled is not None
        try:
            checks.compiled(record)
        except fastjsonschema.JsonSchemaValueException as exc:
            path = exc.name or "data"
            field = path.removeprefix("data").lstrip(".")
            problem = exc.message.removeprefix(path).strip()
            self._invalid(
                record, field, problem, exc.value, rule=exc.rule, object_schema=exc.definition
            )
        except Exception as exc:
            raise self._crash(exc, _fast_crash_site(self.schema, record)) from exc
        for name, field_checks in checks.numeric.items():
            value = record.get(name)
            if not _is_number(value):
                continue
            for keyword, check in field_checks:
                try:
                    broken = check(value)
                except (ArithmeticError, InvalidOperation) as exc:
                    raise self._crash(exc, (name, keyword)) from exc
                if broken:
                    self._invalid(record, name, broken, value)

    def _validate_exactly(
        self, validator: jsonschema.protocols.Validator, record: dict[str, Any]
    ) -> None:
        try:
            error = jsonschema.exceptions.best_match(validator.iter_errors(record))
        except Exception as exc:
            raise self._crash(exc, _exact_crash_site(validator, record)) from exc
        if error is not None:
            field = ".".join(str(p) for p in error.absolute_path)
            self._invalid(
                record,
                field,
                error.message,
                error.instance,
                rule=error.validator,
                object_schema=error.schema,
            )

    def _invalid(
        self,
        record: dict[str, Any],
        field: str,
        problem: str,
        value: Any,
        *,
        rule: Any = None,
        object_schema: Any = None,
    ) -> None:
        named = _named_fields(field, rule, object_schema, value)
        if named is not None:
            field, problem = named
            shown = ""
        else:
            shown = f" (value {value!r:.80})"
        msg = (
            f"{self._where()}, field {field or '(the record)'}: {problem}{shown}. "
            "Fix the tap's output or its schema, or set validate_records: false."
        )
        raise InvalidRecord(msg, record)

    def _crash(self, exc: BaseException, site: tuple[str, str] | None) -> ValidatorCrashError:
        field, keyword = site or ("(unknown)", "(unknown)")
        return ValidatorCrashError(
            f"{self._where()}, field {field}: checking the value against schema keyword "
            f"{keyword!r} failed ({type(exc).__name__}: {exc}). This is a bug in "
            "target-anaplan, not in the record: please report it; set validate_records: false "
            "to load without validation meanwhile."
        )


def _named_fields(field: str, rule: Any, object_schema: Any, value: Any) -> tuple[str, str] | None:
    """For a missing or unexpected field, its own name and the problem: the object that
    holds it (the whole record, often) tells a reader little."""
    if not isinstance(value, Mapping) or not isinstance(object_schema, Mapping):
        return None
    prefix = f"{field}." if field else ""
    if rule == "required":
        missing = [name for name in object_schema.get("required") or () if name not in value]
        if missing:
            return prefix + ", ".join(map(str, missing)), "is required but missing"
    if rule == "additionalProperties":
        known = object_schema.get("properties") or {}
        patterns = list(object_schema.get("patternProperties") or ())
        extra = [
            str(name)
            for name in value
            if name not in known and not any(re.search(p, str(name)) for p in patterns)
        ]
        if extra:
            return prefix + ", ".join(extra), "is not in the schema, which allows no other fields"
    return None


def _field_keywords(
    schema: Mapping[str, Any], record: dict[str, Any]
) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(field, keyword, one-keyword schema) for every keyword of every field in ``record``."""
    for name, sub in (schema.get("properties") or {}).items():
        if name in record and isinstance(sub, Mapping):
            for keyword, value in sub.items():
                yield name, keyword, {"properties": {name: {keyword: value}}}


def _fast_crash_site(schema: Mapping[str, Any], record: dict[str, Any]) -> tuple[str, str] | None:
    """The field and keyword on which compiled code crashes, found one keyword at a time."""
    for name, keyword, single in _field_keywords(schema, record):
        try:
            fastjsonschema.compile(single, use_default=False, use_formats=False)(record)
        except fastjsonschema.JsonSchemaException:
            continue
        except Exception:
            return name, keyword
    return None


def _exact_crash_site(
    validator: jsonschema.protocols.Validator, record: dict[str, Any]
) -> tuple[str, str] | None:
    """The field and keyword on which jsonschema crashes, found one keyword at a time."""
    schema = validator.schema if isinstance(validator.schema, Mapping) else {}
    for name, keyword, single in _field_keywords(schema, record):
        try:
            list(validator.evolve(schema=single).iter_errors(record))
        except Exception:
            return name, keyword
    return None
