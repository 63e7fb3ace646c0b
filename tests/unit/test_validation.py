"""Record validation in every dialect taps write, exact for Decimal values."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import fastjsonschema
import jsonschema
import pytest
from singer_sdk.contrib.msgspec import decoder
from singer_sdk.exceptions import InvalidJSONSchema, InvalidRecord

from target_anaplan import validation
from target_anaplan.validation import ValidatorCrashError, Validators, dialect_of, is_multiple

WHERE = "Line 3 of the input, stream 'products', record 2"
# A numeric(10,2) column as pipelinewise-tap-postgres writes it (draft-4, no $schema).
PRICE_DRAFT4 = {
    "type": ["null", "number"],
    "exclusiveMaximum": True,
    "maximum": 100000000,
    "exclusiveMinimum": True,
    "minimum": -100000000,
    "multipleOf": 0.01,
}


def as_tap_sends(value: object) -> object:
    """Through JSON and the target's reader: JSON floats arrive as Decimal, in the schema too."""
    return decoder.decode(json.dumps(value))


def validator(properties: dict, **schema: object):
    full = as_tap_sends({"type": "object", "properties": properties, **schema})
    return Validators().validator("products", full, lambda: WHERE)


def problem(check, record_json: str) -> str | None:
    """The validation message for a record given as JSON text, or None when it is valid."""
    try:
        check.validate(decoder.decode(record_json))
    except InvalidRecord as error:
        return str(error)
    return None


@pytest.mark.parametrize("price", ["19.99", "0.1", "1e-2", "2", "99999999.99", "-5", "null", "7"])
def test_draft4_boolean_bounds_and_multiple_of_accept_valid_decimals(price):
    assert problem(validator({"price": PRICE_DRAFT4}), f'{{"price": {price}}}') is None


@pytest.mark.parametrize(
    ("price", "words"),
    [
        ("100000000", "must be smaller than 100000000"),
        ("-100000000", "must be bigger than -100000000"),
        ("19.995", "must be multiple of 0.01"),
        ("0.001", "must be multiple of 0.01"),
        ('"19.99"', "price"),
    ],
)
def test_draft4_rejections_name_the_field_and_rule(price, words):
    message = problem(validator({"price": PRICE_DRAFT4}), f'{{"price": {price}}}')
    assert message is not None
    assert WHERE in message
    assert "field price" in message
    assert words in message


def test_the_dialect_comes_from_dollar_schema_or_is_inferred():
    assert dialect_of({"$schema": "http://json-schema.org/draft-04/schema#"}).draft4
    assert dialect_of({"properties": {"p": {"exclusiveMinimum": True, "minimum": 0}}}).draft4
    assert not dialect_of({"properties": {"p": {"exclusiveMinimum": 0}}}).draft4
    assert not dialect_of({"$schema": "https://json-schema.org/draft/2020-12/schema"}).draft4


def test_an_explicit_draft4_schema_reads_boolean_bounds_the_draft4_way():
    check = validator(
        {"n": {"type": "number", "minimum": 0, "exclusiveMinimum": True}},
        **{"$schema": "http://json-schema.org/draft-04/schema#"},
    )
    assert problem(check, '{"n": 0.5}') is None
    assert "must be bigger than 0" in problem(check, '{"n": 0}')


def test_draft7_numeric_exclusive_bounds():
    check = validator({"n": {"type": "number", "exclusiveMaximum": 10, "exclusiveMinimum": 0}})
    assert problem(check, '{"n": 9.99}') is None
    assert "must be smaller than 10" in problem(check, '{"n": 10}')
    assert "must be bigger than 0" in problem(check, '{"n": 0}')


@pytest.mark.parametrize(
    ("uri", "dialect"),
    [
        ("http://json-schema.org/draft-06/schema#", jsonschema.Draft6Validator),
        ("http://json-schema.org/draft-07/schema#", jsonschema.Draft7Validator),
    ],
)
def test_an_explicit_draft6_or_draft7_schema_has_numeric_exclusive_bounds(uri, dialect):
    assert dialect_of({"$schema": uri}).validator is dialect
    check = validator(
        {"n": {"type": "number", "exclusiveMaximum": 10, "exclusiveMinimum": 0}}, **{"$schema": uri}
    )
    assert problem(check, '{"n": 9.99}') is None
    assert problem(check, '{"n": 0.01}') is None
    assert "must be smaller than 10" in problem(check, '{"n": 10}')
    assert "must be bigger than 0" in problem(check, '{"n": 0}')
    # The dialect named wins over inference: a draft-4 style boolean bound is an invalid schema
    # there, not read the draft-4 way.
    with pytest.raises(InvalidJSONSchema, match=r"properties/n/exclusiveMaximum.*not of type"):
        validator({"n": {"maximum": 10, "exclusiveMaximum": True}}, **{"$schema": uri})


def test_a_draft3_schema_is_checked_exactly_in_draft3():
    """fastjsonschema knows no draft-3 (``required: true`` on a property, ``divisibleBy``,
    type ``any``): such a schema is checked by jsonschema."""
    check = validator(
        {
            "id": {"type": "integer", "required": True},
            "price": {"type": "number", "divisibleBy": 0.25},
            "anything": {"type": "any"},
        },
        **{"$schema": "http://json-schema.org/draft-03/schema#"},
    )
    assert problem(check, '{"id": 1, "price": 19.75, "anything": [1, {"a": null}]}') is None
    assert "field id: 'id' is a required property" in problem(check, '{"price": 19.75}')
    assert "field id" in problem(check, '{"id": "x"}')
    assert "not a multiple of 0.25" in problem(check, '{"id": 1, "price": 19.8}')


def test_a_bound_that_is_no_binary_float_is_compared_exactly():
    # float(19.99) is 19.98999...: compared as a float, 19.99 would exceed its own maximum.
    check = validator({"price": {"type": "number", "maximum": 19.99, "minimum": 0.1}})
    assert problem(check, '{"price": 19.99}') is None
    assert problem(check, '{"price": 0.1}') is None
    assert "must be smaller than or equal to 19.99" in problem(check, '{"price": 19.991}')


def test_numeric_keywords_deep_in_a_schema_are_exact_too():
    nested = {"anyOf": [{"type": "number", "multipleOf": 0.01, "maximum": 19.99}, {"type": "null"}]}
    lines = {"type": "array", "items": {"type": "object", "properties": {"qty": nested}}}
    check = validator({"price": nested, "lines": lines})
    assert problem(check, '{"price": 19.99, "lines": [{"qty": 0.1}, {"qty": null}]}') is None
    assert problem(check, '{"price": 19.995}') is not None
    message = problem(check, '{"price": 1, "lines": [{"qty": 0.015}]}')
    assert "field lines.0.qty" in message


def test_enum_of_decimals_is_exact():
    check = validator({"rate": {"enum": [0.1, 0.25, None]}})
    assert problem(check, '{"rate": 0.1}') is None
    assert problem(check, '{"rate": null}') is None
    assert problem(check, '{"rate": 0.2}') is not None


@pytest.mark.parametrize(
    ("value", "multiple"),
    [("19.99", True), ("0.1", True), ("1e-2", True), ("1E+5", True), ("0.015", False)],
)
def test_multiple_of_uses_decimal_arithmetic(value, multiple):
    assert is_multiple(Decimal(value), Decimal("0.01")) is multiple


def test_type_lists_unions_empty_schemas_and_extra_fields():
    check = validator(
        {
            "name": {"type": ["string", "null"]},
            "code": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            "kind": {"oneOf": [{"type": "string"}, {"type": "boolean"}]},
            "anything": {},
            "when": {"type": "string", "format": "date-time"},
        },
        additionalProperties=False,
    )
    assert problem(check, '{"name": null, "code": 7, "kind": true, "anything": [1, {}]}') is None
    assert problem(check, '{"code": "A1", "when": "not a date: parsed after validation"}') is None
    assert "code" in problem(check, '{"code": 1.5}')
    assert "kind" in problem(check, '{"kind": 3}')
    assert problem(check, '{"extra": 1}') is not None


def test_an_invalid_schema_names_the_stream_and_the_problem():
    with pytest.raises(InvalidJSONSchema) as caught:
        validator({"price": {"type": "decimal"}})
    message = str(caught.value)
    assert "stream 'products'" in message
    assert "properties/price/type" in message


def test_a_validator_crash_names_the_record_field_and_keyword():
    check = validator({"price": {"type": "number", "multipleOf": 0.01}})
    with pytest.raises(ValidatorCrashError) as caught:
        check.validate(decoder.decode('{"price": 1E+999999999999}'))
    message = str(caught.value)
    assert WHERE in message
    assert "field price" in message
    assert "'multipleOf'" in message
    assert "validate_records: false" in message


def test_a_crash_in_the_compiled_validator_names_the_record_field_and_keyword(monkeypatch):
    """Compiled code that raises on a record (here: forced for the `pattern` check of `sku`)
    is a bug: one line naming the field and keyword, never the record's fault."""
    compile_really = fastjsonschema.compile

    def compile_with_a_bug(definition, **options):
        compiled = compile_really(definition, **options)
        buggy = "pattern" in definition.get("properties", {}).get("sku", {})

        def check(record):
            if buggy and "sku" in record:
                raise TypeError("expected string or bytes-like object")
            return compiled(record)

        return check

    monkeypatch.setattr(validation.fastjsonschema, "compile", compile_with_a_bug)
    check = validator(
        {"name": {"type": "string"}, "sku": {"type": "string", "pattern": "^[A-Z]+-[0-9]+$"}}
    )
    assert problem(check, '{"name": "Widget"}') is None
    with pytest.raises(ValidatorCrashError) as caught:
        check.validate(decoder.decode('{"name": "Widget", "sku": "AB-12"}'))
    message = str(caught.value)
    assert WHERE in message
    assert "field sku" in message
    assert "'pattern'" in message
    assert "TypeError" in message
    assert "bug in target-anaplan" in message


# --- real taps' schemas (tests/fixtures/schemas/) ----------------------------------------------

TAP_SCHEMAS = sorted((Path(__file__).parents[1] / "fixtures" / "schemas").glob("*.json"))


def tap_fixture(path: Path) -> dict:
    """A fixture read as the target reads its input: JSON floats as Decimal."""
    return decoder.decode(path.read_bytes())


def tap_validator(fixture: dict):
    message = fixture["schema_message"]
    return Validators().validator(message["stream"], message["schema"], lambda: WHERE)


@pytest.mark.parametrize("path", TAP_SCHEMAS, ids=lambda path: path.stem)
def test_each_taps_valid_records_pass(path):
    fixture = tap_fixture(path)
    check = tap_validator(fixture)
    for record in fixture["valid_records"]:
        check.validate(record)


@pytest.mark.parametrize("path", TAP_SCHEMAS, ids=lambda path: path.stem)
def test_each_taps_invalid_records_fail_on_their_field(path):
    fixture = tap_fixture(path)
    check = tap_validator(fixture)
    for case in fixture["invalid_records"]:
        with pytest.raises(InvalidRecord) as caught:
            check.validate(case["record"])
        top_field = case["field"].split(".")[0].split("[")[0]
        assert f"field {top_field}" in str(caught.value), case["reason"]
