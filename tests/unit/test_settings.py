"""Settings: the schema documents the example config; from_config types it and explains mistakes."""

from __future__ import annotations

import dataclasses
import json

import jsonschema
import pytest

from target_anaplan.settings import CONFIG_SCHEMA, ConfigError, Settings, StreamSettings

BASE = {"workspace": "Finance", "model": "Plan", "username": "u@example.com", "password": "pw"}

EXAMPLE_CONFIG = {
    "region": "eu3",
    "username": "loader@example.com",
    "password": "secret",
    "workspace": "Finance",
    "model": "FP&A Plan",
    "streams": {
        "public-employees": {
            "file": "Employees.csv",
            "imports": ["Employees from Employees.csv"],
            "mode": "all",
            "columns": {"Sales Region": "region", "Code": "id"},
        },
        "public-orders": {"imports": ["Orders"], "processes": ["Recalc"], "mode": "insert"},
    },
    "unmapped_streams": "ignore",
    "import_concurrency": "sequential",
    "chunk_size_mb": 10,
    "poll_interval_s": 0.5,
    "import_timeout_s": 1800,
    "encoding_errors": "replace",
    "max_failed_rows": None,
    "max_ignored_rows": 100,
    "failure_dump_dir": "/tmp/dumps",
    "retry_max_attempts": 5,
    "retry_deadline_s": 120,
    "request_timeout_s": 60,
    # SDK built-ins are not ours but must pass through.
    "batch_size_rows": 50000,
    "validate_records": True,
}


def settings(**overrides: object) -> Settings:
    return Settings.from_config({**BASE, **overrides})


def error_of(**overrides: object) -> str:
    with pytest.raises(ConfigError) as caught:
        Settings.from_config({**BASE, **overrides})
    return str(caught.value)


def test_schema_is_valid_and_accepts_the_example_config():
    jsonschema.Draft202012Validator.check_schema(CONFIG_SCHEMA)
    jsonschema.Draft202012Validator(CONFIG_SCHEMA).validate(EXAMPLE_CONFIG)


def test_schema_rejects_a_typo_inside_a_stream_and_a_bad_enum():
    validator = jsonschema.Draft202012Validator(CONFIG_SCHEMA)
    assert not validator.is_valid({**BASE, "streams": {"s": {"import": ["x"]}}})
    assert not validator.is_valid({**BASE, "region": "mars1"})
    assert not validator.is_valid({**BASE, "chunk_size_mb": 51})


def test_schema_marks_secrets():
    properties = CONFIG_SCHEMA["properties"]
    for name in (
        "password",
        "oauth_client_secret",
        "oauth_refresh_token",
        "private_key",
        "private_key_passphrase",
    ):
        assert properties[name]["secret"] is True
        assert properties[name]["writeOnly"] is True
    assert "secret" not in properties["username"]


def test_schema_documents_every_setting_and_nothing_else():
    # The SDK adds its built-ins to the Target's schema in place, so only ours are checked.
    ours = {f.name for f in dataclasses.fields(Settings)}
    properties = CONFIG_SCHEMA["properties"]
    assert ours <= set(properties)
    assert all(properties[name].get("description") for name in ours)
    assert not {"batch_size_rows", "validate_records", "stream_maps"} & ours


def test_schema_defaults_are_the_settings_defaults():
    for f in dataclasses.fields(Settings):
        schema = CONFIG_SCHEMA["properties"][f.name]
        if "default" in schema and f.name != "streams":
            default = list(f.default) if isinstance(f.default, tuple) else f.default
            assert schema["default"] == default, f.name


def test_example_config_is_parsed_into_typed_settings():
    parsed = Settings.from_config(EXAMPLE_CONFIG)
    assert parsed.auth_method == "basic"
    assert parsed.region == "eu3"
    assert parsed.chunk_size_bytes == 10_000_000
    assert parsed.poll_interval_s == 0.5
    assert parsed.max_failed_rows is None
    assert parsed.max_ignored_rows == 100
    assert parsed.stream("public-employees") == StreamSettings(
        file="Employees.csv",
        imports=("Employees from Employees.csv",),
        mode="all",
        columns={"Sales Region": "region", "Code": "id"},
    )
    orders = parsed.stream("public-orders")
    assert orders is not None
    assert orders.file is None
    assert orders.imports == ("Orders",)
    assert orders.processes == ("Recalc",)
    assert orders.mode == "insert"
    assert parsed.stream("unknown") is None


def test_defaults():
    parsed = settings()
    assert parsed.region == "us1"
    assert parsed.streams == {}
    assert parsed.unmapped_streams == "error"
    assert parsed.import_concurrency == "parallel"
    assert parsed.chunk_size_mb == 25
    assert parsed.poll_interval_s == 5
    assert parsed.import_timeout_s == 3600
    assert parsed.encoding_errors == "fail"
    assert (parsed.max_failed_rows, parsed.max_ignored_rows) == (0, 0)
    assert parsed.failure_dump_dir == "./anaplan-failure-dumps"
    assert (parsed.retry_max_attempts, parsed.retry_deadline_s) == (8, 600)
    assert parsed.request_timeout_s == 300
    assert parsed.certificate_data_format == "v2"
    assert parsed.oauth_token_store is None


def test_secrets_stay_out_of_repr():
    assert "pw" not in repr(settings())


def test_streams_and_numbers_may_arrive_as_text_from_environment_variables():
    parsed = settings(
        streams=json.dumps({"s": {"imports": ["I"], "mode": "insert"}}),
        poll_interval_s="0.05",
        chunk_size_mb="3",
    )
    assert parsed.stream("s") == StreamSettings(imports=("I",), mode="insert")
    assert parsed.poll_interval_s == 0.05
    assert parsed.chunk_size_mb == 3
    jsonschema.Draft202012Validator(CONFIG_SCHEMA).validate(
        {**BASE, "streams": "{}", "poll_interval_s": "0.05"}
    )


@pytest.mark.parametrize(
    ("credentials", "method"),
    [
        ({"username": "u", "password": "p"}, "basic"),
        ({"oauth_client_id": "c", "oauth_refresh_token": "r"}, "oauth"),
        ({"oauth_client_id": "c"}, "oauth"),
        (
            {"certificate": "-----BEGIN CERTIFICATE-----", "private_key": "-----BEGIN KEY-----"},
            "certificate",
        ),
    ],
)
def test_auth_method_is_inferred_from_credentials(credentials, method):
    parsed = Settings.from_config({"workspace": "w", "model": "m", **credentials})
    assert parsed.auth_method == method


def test_no_credentials_explains_every_method():
    with pytest.raises(ConfigError) as caught:
        Settings.from_config({"workspace": "w", "model": "m"})
    message = str(caught.value)
    for name in ("username", "password", "oauth_client_id", "certificate", "private_key"):
        assert f"`{name}`" in message


def test_conflicting_credentials_ask_for_auth_method():
    message = error_of(oauth_client_id="c")
    assert "`auth_method`" in message
    assert "basic: username, password" in message
    assert "oauth: oauth_client_id" in message


def test_explicit_auth_method_settles_a_conflict():
    assert settings(oauth_client_id="c", auth_method="oauth").auth_method == "oauth"


@pytest.mark.parametrize(
    ("config", "missing"),
    [
        ({"username": "u"}, "`password`"),
        ({"oauth_refresh_token": "r"}, "`oauth_client_id`"),
        ({"certificate": "-----BEGIN CERTIFICATE-----"}, "`private_key`"),
        ({"auth_method": "certificate"}, "`certificate` and `private_key`"),
    ],
)
def test_incomplete_credentials_name_the_missing_setting(config, missing):
    with pytest.raises(ConfigError, match=missing):
        Settings.from_config({"workspace": "w", "model": "m", **config})


def test_certificate_paths_must_exist_but_pem_text_is_kept(tmp_path):
    key = tmp_path / "key.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    parsed = Settings.from_config(
        {"workspace": "w", "model": "m", "certificate": "-----BEGIN C", "private_key": str(key)}
    )
    assert parsed.private_key == str(key)
    with pytest.raises(ConfigError, match="`private_key` names no file"):
        Settings.from_config(
            {
                "workspace": "w",
                "model": "m",
                "certificate": "-----BEGIN C",
                "private_key": str(tmp_path / "missing.pem"),
            }
        )


def test_ca_bundle_must_exist(tmp_path):
    assert "`ca_bundle` names no file" in error_of(ca_bundle=str(tmp_path / "nope.pem"))


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"workspace": None}, "`workspace` is required"),
        ({"model": ""}, "`model` is required"),
        ({"region": "mars1"}, "Use one of: us1"),
        ({"chunk_size_mb": 0}, "from 1 to 50"),
        ({"chunk_size_mb": 51}, "from 1 to 50"),
        ({"chunk_size_mb": True}, "`chunk_size_mb`"),
        ({"poll_interval_s": 0}, "greater than 0"),
        ({"poll_interval_s": "soon"}, "`poll_interval_s`"),
        ({"max_failed_rows": -2}, "or -1 (or warn) to only warn"),
        ({"encoding_errors": "ignore"}, "fail, replace"),
        ({"unmapped_streams": "skip"}, "error, ignore"),
        ({"import_concurrency": "2"}, "parallel, sequential"),
        ({"api_base_url": "http://api.anaplan.com/2/0"}, "plain http"),
        ({"auth_base_url": "auth.anaplan.com"}, "is not a URL"),
    ],
)
def test_bad_values_name_the_setting_and_the_fix(overrides, fragment):
    assert fragment in error_of(**overrides)


def test_loopback_http_is_accepted_and_trailing_slash_dropped():
    parsed = settings(
        api_base_url="http://127.0.0.1:8080/2/0/",
        auth_base_url="http://localhost:8080",
        oauth_base_url="https://us1a.app.anaplan.com",
    )
    assert parsed.api_base_url == "http://127.0.0.1:8080/2/0"
    assert parsed.auth_base_url == "http://localhost:8080"
    assert settings(region="EU3").region == "eu3"


@pytest.mark.parametrize(
    ("streams", "fragment"),
    [
        ("{not json", "`streams` is not valid JSON"),
        ([], "`streams` must be an object"),
        ({"s": {"import": ["I"]}}, "`streams.s.import` is unknown. Did you mean `imports`?"),
        ({"s": {"mode": "append"}}, "`streams.s.mode`"),
        ({"s": {"imports": "I"}}, "`streams.s.imports`"),
        ({"s": {"columns": {"Code": 3}}}, "`streams.s.columns`"),
        ({"s": {"file": ""}}, "`streams.s.file`"),
        ({"s": {"mode": "insert"}}, "runs no import or process"),
        ({"s": {"formats": {"Launched": "dat"}}}, "`streams.s.formats.Launched` is 'dat'"),
        ({"s": {"formats": {"Launched": "dat"}}}, "Use date, date:<strftime pattern>"),
        ({"s": {"formats": {"Active": True}}}, "`streams.s.formats`"),
        ({"s": {"time_zone": "Mars/Olympus"}}, "`streams.s.time_zone` is 'Mars/Olympus'"),
    ],
)
def test_bad_stream_mappings_name_the_stream_key(streams, fragment):
    assert fragment in error_of(streams=streams)


@pytest.mark.parametrize("warn_only", [None, -1, "-1", "warn", " WARN "])
def test_a_row_threshold_of_minus_one_or_warn_only_warns(warn_only):
    assert settings(max_failed_rows=warn_only).max_failed_rows is None
    assert settings(max_ignored_rows="7").max_ignored_rows == 7


def test_formats_and_time_zones_are_kept_as_given():
    parsed = settings(
        time_zone="Europe/Paris",
        streams={"s": {"formats": {"Launched": "date:%d/%m/%Y", "Active": "boolean:1/0"}}},
    )
    assert parsed.time_zone == "Europe/Paris"
    assert parsed.stream("s").formats == {"Launched": "date:%d/%m/%Y", "Active": "boolean:1/0"}
    assert settings().time_zone == "UTC"
    assert "`time_zone` is 'Nowhere'" in error_of(time_zone="Nowhere")


def test_a_stream_with_no_settings_uses_defaults():
    assert settings(streams={"s": {}}).stream("s") == StreamSettings()


def test_meltano_yml_declares_the_settings_about_shows():
    """meltano.yml's loader settings are the --about schema's (scripts/meltano-settings)."""
    import copy  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    import yaml  # noqa: PLC0415

    from target_anaplan.settings import meltano_settings  # noqa: PLC0415
    from target_anaplan.target import TargetAnaplan  # noqa: PLC0415

    about = copy.deepcopy(TargetAnaplan.config_jsonschema)
    TargetAnaplan.append_builtin_config(about)
    meltano_yml = yaml.safe_load((Path(__file__).parents[2] / "meltano.yml").read_text())
    (loader,) = meltano_yml["plugins"]["loaders"]
    assert loader["settings"] == meltano_settings(about["properties"]), (
        "run scripts/meltano-settings"
    )
    assert set(loader["capabilities"]) == {str(c) for c in TargetAnaplan.capabilities}
    assert set(about["properties"]) >= set(CONFIG_SCHEMA["properties"])
    assert "load_method" not in about["properties"]
    defaults = {s["name"]: s.get("value") for s in loader["settings"]}
    assert (defaults["region"], defaults["max_failed_rows"], defaults["chunk_size_mb"]) == (
        "us1",
        "0",  # text to Meltano: it also takes "warn"
        25,
    )
