"""The target's settings, each declared once: its type, default, description and check.

Every field of ``Settings`` (and of ``StreamSettings``, one per configured stream) carries
a ``Spec`` in its metadata. From that one declaration come the JSON Schema that
``--about`` and Meltano see (``CONFIG_SCHEMA``), the parsing and checking of a config
(``Settings.from_config``), and the default. Checks a JSON Schema cannot express (which
credentials belong together, ``http://`` only for loopback, how streams are mapped) run
in ``from_config`` too, so a bad config fails before any record is read, with one message
that names the setting and says how to fix it.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from target_anaplan.anaplan.credentials import (
    BasicCredentials,
    CertificateCredentials,
    Credentials,
    OAuthCredentials,
)
from target_anaplan.anaplan.regions import REGIONS, check_url
from target_anaplan.csv_writer import FORMATS_HELP, parse_format
from target_anaplan.errors import ConfigError

AUTH_METHODS = ("basic", "oauth", "certificate")
STREAM_MODES = ("insert", "upsert", "all")
DELETE_BEHAVIOURS = ("ignore", "delete", "clear")
_PEM_MARKER = "-----BEGIN"
_SPEC = "spec"
_UNSET: Any = object()  # "not in the config": the field's default applies

# Which settings make each auth method (for inference and for "missing" messages).
_CREDENTIALS: dict[str, tuple[str, ...]] = {
    "basic": ("username", "password"),
    "oauth": ("oauth_client_id", "oauth_refresh_token"),
    "certificate": ("certificate", "private_key"),
}
_REQUIRED_CREDENTIALS: dict[str, tuple[str, ...]] = {
    "basic": ("username", "password"),
    "oauth": ("oauth_client_id",),
    "certificate": ("certificate", "private_key"),
}


# --- Declaring a setting ---------------------------------------------------------------


class _Reader:
    """Reads the settings of one object (the config, or one stream's entry) by key.

    ``prefix`` ("streams.orders.") makes every message name the full setting.
    """

    def __init__(self, values: Mapping[str, Any], prefix: str = "") -> None:
        self.values = values
        self.prefix = prefix

    def name(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def invalid(self, key: str, problem: str, fix: str) -> ConfigError:
        return ConfigError(f"Setting `{self.name(key)}` {problem}. {fix}")

    def is_set(self, key: str) -> bool:
        return self.values.get(key) not in (None, "")


ReadFn = Callable[[_Reader, str], Any]


@dataclass(frozen=True)
class Spec:
    """How one setting is documented (JSON Schema, description) and read (``read``)."""

    description: str
    schema: Mapping[str, Any]
    read: ReadFn
    secret: bool = False
    required: bool = False

    def json_schema(self, default: Any) -> dict[str, Any]:
        """The setting's property in the config schema; ``default`` is the field's."""
        prop = {**self.schema, "description": self.description}
        if default is not None and default is not _UNSET:
            prop["default"] = list(default) if isinstance(default, tuple) else default
        if self.secret:
            prop.update(secret=True, writeOnly=True)
        return prop


def _setting(spec: Spec, default: Any = _UNSET, factory: Callable[[], Any] | None = None) -> Any:
    """A dataclass field declaring one setting."""
    metadata = {_SPEC: spec}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    if default is _UNSET:
        return field(metadata=metadata)  # required
    return field(default=default, repr=not spec.secret, metadata=metadata)


def _spec(f: Field[Any]) -> Spec:
    spec: Spec = f.metadata[_SPEC]
    return spec


def _default(f: Field[Any]) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return _UNSET


def _read_all(cls: type, read: _Reader) -> dict[str, Any]:
    """Every declared setting of ``cls`` read from ``read``; unset ones are left out."""
    values = {}
    for f in fields(cls):
        value = _spec(f).read(read, f.name)
        if value is not _UNSET:
            values[f.name] = value
    return values


def properties_of(cls: type) -> dict[str, dict[str, Any]]:
    """The JSON Schema properties of a settings dataclass, in declaration order."""
    return {f.name: _spec(f).json_schema(_default(f)) for f in fields(cls)}


# --- Kinds of settings -----------------------------------------------------------------


def _string(read: _Reader, key: str, *, required: bool = False) -> Any:
    value = read.values.get(key)
    if value in (None, ""):
        if required:
            raise read.invalid(key, "is required", f"Set `{read.name(key)}` to a name or id.")
        return _UNSET
    if not isinstance(value, str):
        raise read.invalid(key, f"must be text, got {value!r}", f'Quote it: "{value}".')
    return value


def text(description: str, *, default: str | None = None, secret: bool = False) -> Any:
    """A string setting (``secret``: never shown, marked writeOnly for Meltano)."""
    return _setting(Spec(description, {"type": "string"}, _string, secret=secret), default)


def object_name(description: str) -> Any:
    """The name or id of an Anaplan object: left out, or non-blank text."""

    def read(reader: _Reader, key: str) -> Any:
        value = reader.values.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise reader.invalid(key, f"is {value!r}", "Give the object's name or id.")
        return _UNSET if value is None else value

    return _setting(Spec(description, {"type": ["string", "null"]}, read), None)


def required_text(description: str) -> Any:
    """A string setting without which nothing can run."""

    def read(reader: _Reader, key: str) -> Any:
        return _string(reader, key, required=True)

    return _setting(Spec(description, {"type": "string"}, read, required=True))


def choice(description: str, choices: tuple[str, ...], default: str | None) -> Any:
    """One of ``choices`` (compared without case and surrounding spaces)."""

    def read(reader: _Reader, key: str) -> Any:
        value = _string(reader, key)
        if value is _UNSET:
            return _UNSET
        normalized = value.strip().lower()
        if normalized not in choices:
            raise reader.invalid(key, f"is {value!r}", f"Use one of: {', '.join(choices)}.")
        return normalized

    return _setting(Spec(description, {"type": "string", "enum": list(choices)}, read), default)


def _as_number(value: Any, *, integer: bool) -> float | None:
    """A number from a JSON number or numeric text (environment variables), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = int(value) if integer else float(value)
        except ValueError:
            return None
    if integer and isinstance(value, float) and value.is_integer():
        value = int(value)
    if integer and not isinstance(value, int):
        return None
    if not isinstance(value, (int, float)) or value != value:  # noqa: PLR0124 (NaN)
        return None
    return value


def integer(
    description: str,
    default: int | None,
    *,
    minimum: int,
    maximum: int | None = None,
    nullable: bool = False,
) -> Any:
    """A whole number within bounds; ``nullable``: null is a meaningful value."""
    schema: dict[str, Any] = {"type": ["integer", "null"] if nullable else "integer"}
    schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum

    def read(reader: _Reader, key: str) -> Any:
        if key not in reader.values:
            return _UNSET
        value = reader.values[key]
        if value is None:
            return None if nullable else _UNSET
        number = _as_number(value, integer=True)
        bounds = f"from {minimum} to {maximum}" if maximum else f"of at least {minimum}"
        null = " (or null)" if nullable else ""
        if number is None or number < minimum or (maximum is not None and number > maximum):
            raise reader.invalid(key, f"is {value!r}", f"Use a whole number {bounds}{null}.")
        return int(number)

    return _setting(Spec(description, schema, read), default)


WARN_ONLY = ("warn", -1)  # what a row threshold accepts for "only warn", besides null


def row_threshold(description: str) -> Any:
    """How many rows Anaplan may fail or ignore: 0 by default; null, -1 or "warn": only warn.

    Meltano cannot store a null and its integer settings take no text, so -1 says it too.
    """
    schema = {
        "anyOf": [
            {"type": "integer", "minimum": -1},
            {"type": "null"},
            {"type": "string", "pattern": r"^\s*(warn|-?[0-9]+)\s*$"},
        ]
    }

    def read(reader: _Reader, key: str) -> Any:
        if key not in reader.values:
            return _UNSET
        value = reader.values[key]
        text_form = str(value).strip().lower() if isinstance(value, str) else value
        if value is None or text_form in WARN_ONLY or text_form == "-1":
            return None
        number = _as_number(value, integer=True)
        if number is None or number < 0:
            raise reader.invalid(
                key,
                f"is {value!r}",
                "Use a whole number of at least 0, or -1 (or warn) to only warn.",
            )
        return int(number)

    return _setting(Spec(description, schema, read), 0)


def seconds(description: str, default: float) -> Any:
    """A duration in seconds, greater than 0."""
    # Numbers from environment variables reach validation as text (the SDK only converts
    # integers), so a numeric string is accepted too.
    schema = {
        "type": ["number", "string"],
        "exclusiveMinimum": 0,
        "pattern": r"^\s*[0-9]*\.?[0-9]+\s*$",
    }

    def read(reader: _Reader, key: str) -> Any:
        value = reader.values.get(key)
        if value in (None, ""):
            return _UNSET
        number = _as_number(value, integer=False)
        if number is None or number <= 0:
            raise reader.invalid(key, f"is {value!r}", "Use a number of seconds greater than 0.")
        return number

    return _setting(Spec(description, schema, read), default)


def url(description: str) -> Any:
    """A base URL (the https / loopback-http rule is ``regions.check_url``'s)."""

    def read(reader: _Reader, key: str) -> Any:
        value = _string(reader, key)
        if value is _UNSET:
            return _UNSET
        try:
            return check_url(reader.name(key), value)
        except ValueError as error:
            raise ConfigError(str(error)) from None

    return _setting(Spec(description, {"type": "string"}, read), None)


def _existing_file(reader: _Reader, key: str) -> Any:
    value = _string(reader, key)
    if value is not _UNSET and not os.path.isfile(os.path.expanduser(value)):
        raise reader.invalid(key, f"names no file: {value!r}", "Give the path of an existing file.")
    return value


def file_path(description: str) -> Any:
    """The path of a file that must exist."""
    return _setting(Spec(description, {"type": "string"}, _existing_file), None)


def pem_or_path(description: str, *, secret: bool = False) -> Any:
    """PEM text (kept as is) or the path of an existing file."""

    def read(reader: _Reader, key: str) -> Any:
        value = reader.values.get(key)
        if isinstance(value, str) and _PEM_MARKER in value:
            return value
        return _existing_file(reader, key)

    return _setting(Spec(description, {"type": "string"}, read, secret=secret), None)


def boolean(description: str, default: bool) -> Any:
    """true or false (also the texts Meltano and environment variables give)."""

    def read(reader: _Reader, key: str) -> Any:
        value = reader.values.get(key)
        if value is None or value == "":
            return _UNSET
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes", "on"):
            return True
        if text in ("false", "0", "no", "off"):
            return False
        raise reader.invalid(key, f"is {value!r}", "Use true or false.")

    return _setting(Spec(description, {"type": ["boolean", "string"]}, read), default)


def fraction(description: str, default: float | None) -> Any:
    """A share from 0 to 1."""

    def read(reader: _Reader, key: str) -> Any:
        value = reader.values.get(key)
        if value in (None, ""):
            return _UNSET
        number = _as_number(value, integer=False)
        if number is None or not 0 <= number <= 1:
            raise reader.invalid(key, f"is {value!r}", "Use a number from 0 to 1, e.g. 0.5.")
        return float(number)

    schema = {"type": ["number", "string"], "minimum": 0, "maximum": 1}
    return _setting(Spec(description, schema, read), default)


def names(description: str) -> Any:
    """A list of Anaplan object names or ids."""

    def read(reader: _Reader, key: str) -> Any:
        value = reader.values.get(key)
        if value is None:
            return _UNSET
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise reader.invalid(
                key, f"is {value!r}", 'Use a list of names or ids, e.g. ["Import 1"].'
            )
        return tuple(value)

    schema = {"type": "array", "items": {"type": "string"}}
    return _setting(Spec(description, schema, read), ())


def text_map_read(reader: _Reader, key: str, example: str = "text -> text") -> Any:
    """An object of non-empty text values, or _UNSET."""
    value = reader.values.get(key)
    if value is None:
        return _UNSET
    if not isinstance(value, Mapping) or not all(isinstance(v, str) and v for v in value.values()):
        raise reader.invalid(key, f"is {value!r}", f"Use an object of {example}.")
    return {str(k): v for k, v in value.items()}


def text_map(description: str, *, example: str) -> Any:
    """An object of text to text (header name -> field, ...)."""

    def read(reader: _Reader, key: str) -> Any:
        return text_map_read(reader, key, example)

    schema = {"type": "object", "additionalProperties": {"type": "string"}}
    return _setting(Spec(description, schema, read), factory=dict)


def column_formats(description: str) -> Any:
    """Header name -> format (``csv_writer.parse_format``); each one checked here."""

    def read(reader: _Reader, key: str) -> Any:
        value = text_map_read(reader, key)
        for column, spec in ({} if value is _UNSET else value).items():
            try:
                parse_format(spec)
            except ValueError:
                raise reader.invalid(
                    f"{key}.{column}", f"is {spec!r}, which is not a format", FORMATS_HELP
                ) from None
        return value

    schema = {"type": "object", "additionalProperties": {"type": "string"}}
    return _setting(Spec(description, schema, read), factory=dict)


def zone_name(description: str, default: str | None) -> Any:
    """An IANA time zone name (``Europe/Paris``, ``UTC``)."""

    def read(reader: _Reader, key: str) -> Any:
        value = _string(reader, key)
        if value is _UNSET:
            return _UNSET
        try:
            ZoneInfo(value.strip())
        except (ValueError, ZoneInfoNotFoundError):
            raise reader.invalid(
                key, f"is {value!r}", "Use an IANA time zone name, e.g. UTC or Europe/Paris."
            ) from None
        return value.strip()

    return _setting(Spec(description, {"type": "string"}, read), default)


@dataclass(frozen=True)
class RunAction:
    """A process or import to run once after every stream committed (``after_load``)."""

    name: str
    workspace: str | None = None  # default: the top-level workspace and model
    model: str | None = None


def run_actions(description: str) -> Any:
    """A list of process or import names, each text or {"name", "workspace", "model"}."""

    def read(reader: _Reader, key: str) -> Any:
        value = reader.values.get(key)
        if value is None:
            return _UNSET
        if not isinstance(value, list):
            raise reader.invalid(key, f"is {value!r}", 'Use a list, e.g. ["Recalculate"].')
        return tuple(_run_action(reader, f"{key}[{n}]", item) for n, item in enumerate(value))

    schema = {
        "type": "array",
        "items": {
            "anyOf": [
                {"type": "string"},
                {
                    "type": "object",
                    "required": ["name"],
                    "additionalProperties": False,
                    "properties": {k: {"type": "string"} for k in ("name", "workspace", "model")},
                },
            ]
        },
    }
    return _setting(Spec(description, schema, read), ())


def _run_action(reader: _Reader, key: str, item: Any) -> RunAction:
    if isinstance(item, str) and item.strip():
        return RunAction(item)
    fields_ok = isinstance(item, Mapping) and set(item) <= {"name", "workspace", "model"}
    if (
        fields_ok
        and all(isinstance(v, str) and v.strip() for v in item.values())
        and "name" in item
    ):
        return RunAction(item["name"], item.get("workspace"), item.get("model"))
    raise reader.invalid(
        key,
        f"is {item!r}",
        'Give a process or import name or id, or {"name": "...", "model": "...", '
        '"workspace": "..."} for one in another model.',
    )


# --- One stream's mapping ----------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class StreamSettings:
    """Where one stream goes: its data source, what runs after upload, and column names."""

    workspace: str | None = object_name(
        "Workspace of this stream's model (name or id). Default: the top-level workspace."
    )
    model: str | None = object_name(
        "Model this stream loads into (name or id). Default: the top-level model."
    )
    file: str | None = object_name(
        "Name or id of the Anaplan import data source (file). Default: the data source of the "
        "stream's imports, else the stream name, matched with or without an extension."
    )
    imports: tuple[str, ...] = names("Imports (names or ids) to run after the file is uploaded.")
    processes: tuple[str, ...] = names(
        "Processes (names or ids) to run after the file is uploaded."
    )
    mode: Literal["insert", "upsert", "all"] = choice(
        "`all`: every row received, one file imported once at the end of input. `insert`: "
        "rows whose key was never loaded, a batch at a time. `upsert`: rows new or changed "
        "since they were last loaded, a batch at a time.",
        STREAM_MODES,
        "all",
    )
    key: tuple[str, ...] = names(
        "Record fields that identify a row, for change tracking and deletes. Default: the "
        "stream's key_properties."
    )
    deletes: Literal["ignore", "delete", "clear"] = choice(
        "Rows that leave the source: `ignore`, `delete` the list items, or `clear` the "
        "module row (its cells become empty).",
        DELETE_BEHAVIOURS,
        "ignore",
    )
    full_snapshot: bool = boolean(
        "Every run sends the whole table: keys missing when the input ends normally have "
        "left the source.",
        False,
    )
    delete_list: str | None = object_name(
        "The list to delete items from (name or id). Default: the list the stream's import loads."
    )
    delete_action: str | None = object_name(
        "A delete-from-list-using-selection action (name or id) to delete through, instead of "
        "the list API; needs `delete_flag_import`."
    )
    delete_flag_import: str | None = object_name(
        "The import that sets the delete action's Boolean flag: its file gets the item codes "
        "in its first column and true in the others."
    )
    max_delete_fraction: float | None = fraction(
        "Largest share of the stream's known keys one run may delete. Default: the top-level "
        "max_delete_fraction.",
        None,
    )
    columns: Mapping[str, str] = text_map(
        "Anaplan header name -> record field, for columns whose name differs from the field. "
        "Unlisted columns read the field of the same name.",
        example='header name -> field, e.g. {"Code": "id"}',
    )
    formats: Mapping[str, str] = column_formats(
        "Anaplan header name -> how its values are written: `date` (a date-time becomes "
        "YYYY-MM-DD), `date:<strftime pattern>` (e.g. date:%d/%m/%Y), `boolean:<true>/<false>` "
        "(e.g. boolean:TRUE/FALSE), `number:<decimal places>` (rounded half-even)."
    )
    time_zone: str | None = zone_name(
        "Time zone in which `date` formats take a date-time's date. Default: the top-level "
        "time_zone.",
        None,
    )

    @classmethod
    def from_entry(cls, name: str, entry: Any) -> StreamSettings:
        """One entry of ``streams``; unknown keys are refused with the nearest known one."""
        where = f"streams.{name}"
        if entry is None:
            entry = {}
        if not isinstance(entry, Mapping):
            raise ConfigError(
                f'Setting `{where}` must be an object. Use {{"file": "...", "imports": ["..."]}}.'
            )
        known = [f.name for f in fields(cls)]
        for key in entry:
            if key not in known:
                near = difflib.get_close_matches(str(key), known, n=1)
                hint = f"Did you mean `{near[0]}`? " if near else ""
                raise ConfigError(
                    f"Setting `{where}.{key}` is unknown. {hint}Known keys: {', '.join(known)}."
                )
        read = _Reader(entry, prefix=f"{where}.")
        settings = cls(**_read_all(cls, read))
        if settings.mode != "all" and not (settings.imports or settings.processes):
            raise read.invalid(
                "mode",
                f"is `{settings.mode}` but the stream runs no import or process",
                "Each batch replaces the file, so earlier batches would never reach the model: "
                "add `imports` (or `processes`), or use mode `all`.",
            )
        if bool(settings.delete_action) != bool(settings.delete_flag_import):
            raise read.invalid(
                "delete_action" if settings.delete_flag_import else "delete_flag_import",
                "is missing",
                "A delete action deletes the items a flag import marked: set both "
                "`delete_action` and `delete_flag_import`, or neither (the list API is used).",
            )
        return settings


def _streams(read: _Reader, key: str) -> Any:
    raw = read.values.get(key)
    if raw in (None, ""):
        return _UNSET
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as error:
            raise read.invalid(
                key, f"is not valid JSON ({error})", "Give an object keyed by stream name."
            ) from None
    if not isinstance(raw, Mapping):
        raise read.invalid(key, "must be an object", 'Use {"<stream>": {"file": "...", ...}}.')
    return {str(name): StreamSettings.from_entry(str(name), entry) for name, entry in raw.items()}


def _streams_setting() -> Any:
    schema = {
        "type": ["object", "string"],
        "additionalProperties": {
            "type": "object",
            "additionalProperties": False,
            "properties": properties_of(StreamSettings),
        },
    }
    description = (
        "Stream name -> where its records go (workspace, model, file, imports, processes, mode, "
        "columns, formats, time_zone, key, deletes, full_snapshot, delete_list, delete_action, "
        "delete_flag_import, max_delete_fraction). May be given as JSON text."
    )
    return _setting(Spec(description, schema, _streams), factory=dict)


# --- Credentials -------------------------------------------------------------------------


def _auth_method(read: _Reader, key: str) -> str:
    """The explicit auth method, or the one whose credentials are set; its credentials complete."""
    explicit = _string(read, key)
    if explicit is not _UNSET and explicit.strip().lower() not in AUTH_METHODS:
        raise read.invalid(key, f"is {explicit!r}", f"Use one of: {', '.join(AUTH_METHODS)}.")
    present = {m for m, keys in _CREDENTIALS.items() if any(read.is_set(k) for k in keys)}
    if explicit is not _UNSET:
        method = explicit.strip().lower()
    elif len(present) == 1:
        method = present.pop()
    elif not present:
        raise ConfigError(
            "No Anaplan credentials are set. Set `username` and `password` (basic), "
            "`oauth_client_id` and `oauth_refresh_token` (OAuth), or `certificate` and "
            "`private_key` (certificate authentication)."
        )
    else:
        found = "; ".join(
            f"{m}: {', '.join(k for k in _CREDENTIALS[m] if read.is_set(k))}"
            for m in AUTH_METHODS
            if m in present
        )
        raise ConfigError(
            f"Credentials for more than one auth method are set ({found}). Set `auth_method` "
            f"to one of {', '.join(sorted(present))}, or remove the other credentials."
        )
    missing = [k for k in _REQUIRED_CREDENTIALS[method] if not read.is_set(k)]
    if missing:
        listed = " and ".join(f"`{k}`" for k in missing)
        raise ConfigError(f"{method} authentication needs {listed}. Set {listed}.")
    return str(method)


def _auth_method_setting() -> Any:
    description = (
        "basic, oauth or certificate. Default: inferred from the credentials set "
        "(username+password, oauth_client_id/oauth_refresh_token, certificate+private_key)."
    )
    schema = {"type": "string", "enum": list(AUTH_METHODS)}
    return _setting(Spec(description, schema, _auth_method, required=False))


# --- All settings ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Every setting, typed; build with ``from_config`` so the cross-field rules hold."""

    region: str = choice(
        "Anaplan region; picks the API, auth and OAuth hosts.", tuple(REGIONS), "us1"
    )
    api_base_url: str | None = url(
        "Overrides the Integration API root, including /2/0 (e.g. https://api.anaplan.com/2/0). "
        "http:// only for loopback hosts."
    )
    auth_base_url: str | None = url(
        "Overrides the authentication host (e.g. https://auth.anaplan.com)."
    )
    oauth_base_url: str | None = url(
        "Overrides the OAuth 2.0 host (e.g. https://us1a.app.anaplan.com)."
    )
    auth_method: Literal["basic", "oauth", "certificate"] = _auth_method_setting()
    username: str | None = text("Anaplan user (email) for basic authentication.")
    password: str | None = text("Password for basic authentication.", secret=True)
    oauth_client_id: str | None = text("Client id of the Anaplan OAuth 2.0 client.")
    oauth_client_secret: str | None = text(
        "Client secret (authorization-code clients only; device-grant clients have none).",
        secret=True,
    )
    oauth_refresh_token: str | None = text(
        "Refresh token to start from. Rotated tokens are kept in oauth_token_store.", secret=True
    )
    oauth_token_store: str | None = text(
        "File that keeps the newest OAuth refresh token. "
        "Default: ~/.target-anaplan/tokens/<client id>.json."
    )
    oauth_refresh_token_lifespan_s: int | None = integer(
        "Refresh token lifespan configured on a rotatable OAuth client, in seconds; used to warn "
        "before it runs out.",
        None,
        minimum=1,
        nullable=True,
    )
    certificate: str | None = pem_or_path(
        "CA certificate for certificate authentication: path or PEM text."
    )
    private_key: str | None = pem_or_path(
        "Private key of the certificate: path or PEM text.", secret=True
    )
    private_key_passphrase: str | None = text(
        "Passphrase of an encrypted private key.", secret=True
    )
    certificate_data_format: Literal["v2", "v1"] = choice(
        "encodedDataFormat sent with certificate authentication.", ("v2", "v1"), "v2"
    )
    ca_bundle: str | None = file_path(
        "Path to a CA bundle used to verify TLS certificates (verification is always on)."
    )
    workspace: str = required_text("Workspace name or id.")
    model: str = required_text("Model name or id.")
    streams: Mapping[str, StreamSettings] = _streams_setting()
    load_order: tuple[str, ...] = names(
        "Streams in the order their commits must happen. Default: streams loading lists (parent "
        "lists first) before the others, else the order of `streams`. Unlisted streams follow."
    )
    after_load: tuple[RunAction, ...] = run_actions(
        "Processes or imports (names or ids) to run once, in order, after every stream has "
        "committed, when anything was committed in the run."
    )
    unmapped_streams: Literal["error", "ignore"] = choice(
        "What to do with a stream not listed in `streams`: `error` fails the run, `ignore` "
        "drops its records.",
        ("error", "ignore"),
        "error",
    )
    import_concurrency: Literal["parallel", "sequential"] = choice(
        "Run a commit's imports and processes in `parallel` or one after another.",
        ("parallel", "sequential"),
        "parallel",
    )
    chunk_size_mb: int = integer(
        "Upload chunk size in MB (10^6 bytes, before gzip).", 25, minimum=1, maximum=50
    )
    poll_interval_s: float = seconds("Seconds between task status polls.", 5)
    import_timeout_s: float = seconds(
        "Seconds an import or process may run before the run fails.", 3600
    )
    encoding_errors: Literal["fail", "replace"] = choice(
        "Characters the data source's encoding cannot hold: `fail` the run, or `replace` them "
        "with '?' (one warning per stream).",
        ("fail", "replace"),
        "fail",
    )
    max_failed_rows: int | None = row_threshold(
        "Rows an import may fail before the run fails; -1 (or warn, or null) = only warn."
    )
    max_ignored_rows: int | None = row_threshold(
        "Rows an import may ignore before the run fails; -1 (or warn, or null) = only warn."
    )
    failure_dump_dir: str = text(
        "Directory for Anaplan's failure dumps of imports with failed rows.",
        default="./anaplan-failure-dumps",
    )
    dry_run: bool = boolean(
        "Do everything up to the upload (resolve, check, validate and format every record, "
        "look up change tracking), write each stream's CSV to dry_run_dir instead, and change "
        "nothing in Anaplan or the change store; no STATE is emitted.",
        False,
    )
    dry_run_dir: str = text(
        "Where a dry run writes each stream's CSV.", default="./anaplan-dry-run"
    )
    progress_interval_s: float = seconds(
        "Seconds between progress lines while a stream is read or an import runs.", 30
    )
    run_report_path: str | None = text(
        "Write the run summary as JSON to this file (for orchestrators), success or failure."
    )
    change_store: str | None = text(
        "SQLAlchemy URL of the change store (what each data source already holds). Default: "
        "a SQLite file per model under ~/.local/share/target-anaplan/changes; "
        "postgresql://... for runs on machines whose disk does not survive.",
        secret=True,
    )
    max_delete_fraction: float = fraction(
        "Largest share of a stream's known keys one run may delete; more fails the run "
        "before anything is deleted.",
        0.5,
    )
    retry_max_attempts: int = integer(
        "Attempts per request on transient errors (429, 5xx, dropped connections).",
        8,
        minimum=1,
    )
    time_zone: str = zone_name(
        "Time zone in which `date` formats take a date-time's date (IANA name).", "UTC"
    )
    retry_deadline_s: float = seconds("Total seconds to keep retrying one request.", 600)
    request_timeout_s: float = seconds(
        "Seconds to wait for one HTTP response (busy models answer slowly).", 300
    )
    connect_timeout_s: float = seconds(
        "Seconds to wait for a connection to an Anaplan host. Until a host has answered in a "
        "run, a few quick tries only: a host that cannot be reached then is most likely a "
        "wrong setting.",
        5,
    )

    @property
    def chunk_size_bytes(self) -> int:
        """Chunk size in bytes (Anaplan's MB are 10^6 bytes)."""
        return self.chunk_size_mb * 1_000_000

    def stream(self, name: str) -> StreamSettings | None:
        """The mapping configured for a stream, or None if it is not listed."""
        return self.streams.get(name)

    def credentials(self) -> Credentials:
        """The credentials of ``auth_method`` (``from_config`` checked they are complete)."""
        if self.auth_method == "basic":
            return BasicCredentials(username=str(self.username), password=str(self.password))
        if self.auth_method == "oauth":
            return OAuthCredentials(
                client_id=str(self.oauth_client_id),
                client_secret=self.oauth_client_secret,
                refresh_token=self.oauth_refresh_token,
                token_store=self.oauth_token_store,
                refresh_token_lifespan_s=self.oauth_refresh_token_lifespan_s,
            )
        return CertificateCredentials(
            certificate=str(self.certificate),
            private_key=str(self.private_key),
            passphrase=self.private_key_passphrase,
            data_format=self.certificate_data_format,
        )

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        """Parse and check a config mapping; unknown keys (the SDK's built-ins) are ignored.

        Settings left unset take their declared defaults.
        """
        settings = cls(**_read_all(cls, _Reader(_plain_numbers(config))))
        unknown = [name for name in settings.load_order if name not in settings.streams]
        if unknown:
            raise ConfigError(
                f"Setting `load_order` names streams that are not in `streams`: "
                f"{', '.join(map(repr, unknown))}. Known streams: "
                f"{', '.join(map(repr, settings.streams)) or 'none'}."
            )
        return settings


def unknown_settings(config: Mapping[str, Any], known: Collection[str]) -> list[str]:
    """A warning for each top-level setting that is not one (a typo is otherwise silent).

    ``load_method`` is refused: it is the SDK's generic setting, and here a stream's ``mode``
    says how it loads.
    """
    if "load_method" in config:
        raise ConfigError(
            "Setting `load_method` does nothing in target-anaplan: each stream's `mode` says "
            "how it loads (all, insert or upsert). Remove `load_method` and set "
            "`streams.<stream>.mode`."
        )
    warnings = []
    for key in config:
        if key not in known:
            near = difflib.get_close_matches(str(key), list(known), n=1)
            hint = f"; did you mean `{near[0]}`?" if near else "."
            warnings.append(f"Setting `{key}` is not a target-anaplan setting and is ignored{hint}")
    return warnings


def meltano_settings(properties: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The loader's ``settings`` for meltano.yml, from the config schema ``--about`` shows
    (``properties``): kind, description, sensitivity, options and default of each.
    ``scripts/meltano-settings`` writes them into meltano.yml and a test keeps them equal."""
    out = []
    for name, schema in properties.items():
        entry: dict[str, Any] = {"name": name, "kind": _meltano_kind(schema)}
        entry["description"] = " ".join(str(schema.get("description") or name).split())
        if schema.get("secret"):
            entry["sensitive"] = True
        if "enum" in schema:
            entry["options"] = [{"label": str(v), "value": v} for v in schema["enum"]]
        if schema.get("default") not in (None, [], {}):
            entry["value"] = schema["default"]
        out.append(entry)
    return out


def _meltano_kind(schema: Mapping[str, Any]) -> str:
    if "enum" in schema:
        return "options"
    if "anyOf" in schema:  # the row thresholds: Meltano sets them as whole numbers
        return "integer"
    declared = schema.get("type", "string")
    types = declared if isinstance(declared, list) else [declared]
    for json_type, kind in (
        ("object", "object"),
        ("array", "array"),
        ("boolean", "boolean"),
        ("integer", "integer"),
        ("number", "decimal"),
    ):
        if json_type in types:
            return kind
    return "string"


def _plain_numbers(value: Any) -> Any:
    """Config read from ``--config`` files holds JSON floats as Decimal (the SDK's reader)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {key: _plain_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain_numbers(item) for item in value]
    return value


CONFIG_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": [f.name for f in fields(Settings) if _spec(f).required],
    "properties": properties_of(Settings),
}
