"""The target's settings: one JSON Schema to document them, one parser to type and check them.

``CONFIG_SCHEMA`` is the Target's ``config_jsonschema`` (what ``--about`` and Meltano show).
``Settings.from_config`` turns a config mapping into typed values and checks what a JSON
Schema cannot express (which credentials belong together, ``http://`` only for loopback,
how streams are mapped), so a bad config fails before any record is read, with one
message that names the setting and says how to fix it.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

REGIONS = (
    "us1", "us2", "us5", "us7", "us9", "eu1", "eu2", "eu3", "eu4", "eu5",
    "gb1", "ap1", "au1", "ca1", "sg1", "ae1", "in1", "id1", "me1",
)  # fmt: skip
AUTH_METHODS = ("basic", "oauth", "certificate")
STREAM_MODES = ("insert", "all")
DEFAULT_FAILURE_DUMP_DIR = "./anaplan-failure-dumps"
_LOOPBACK_NAMES = ("localhost",)
_PEM_MARKER = "-----BEGIN"

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


class ConfigError(ValueError):
    """A setting is missing, malformed or contradicts another; ``str()`` tells the user the fix."""


# --- JSON Schema -------------------------------------------------------------------------


def _string(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


def _secret(description: str) -> dict[str, Any]:
    return _string(description, secret=True, writeOnly=True)


def _integer(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "integer", "description": description, **extra}


def _seconds(description: str, default: float) -> dict[str, Any]:
    # Numbers from environment variables reach validation as text (the SDK only converts
    # integers), so a numeric string is accepted too.
    return {
        "type": ["number", "string"],
        "exclusiveMinimum": 0,
        "pattern": r"^\s*[0-9]*\.?[0-9]+\s*$",
        "default": default,
        "description": description,
    }


_STREAM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "file": {
            "type": ["string", "null"],
            "description": "Name or id of the Anaplan import data source (file). Default: the "
            "stream name, matched with or without an extension.",
        },
        "imports": {
            "type": "array",
            "items": {"type": "string"},
            "default": [],
            "description": "Imports (names or ids) to run after the file is uploaded.",
        },
        "processes": {
            "type": "array",
            "items": {"type": "string"},
            "default": [],
            "description": "Processes (names or ids) to run after the file is uploaded.",
        },
        "mode": {
            "type": "string",
            "enum": list(STREAM_MODES),
            "default": "all",
            "description": "`all`: the whole stream is one file, imported once at the end of "
            "input. `insert`: every batch is uploaded and imported on its own.",
        },
        "columns": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "default": {},
            "description": "Anaplan header name -> record field, for columns whose name "
            "differs from the field. Unlisted columns read the field of the same name.",
        },
    },
}

CONFIG_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["workspace", "model"],
    "properties": {
        "region": _string(
            "Anaplan region; picks the API, auth and OAuth hosts.",
            enum=list(REGIONS),
            default="us1",
        ),
        "api_base_url": _string(
            "Overrides the Integration API root, including /2/0 "
            "(e.g. https://api.anaplan.com/2/0). http:// only for loopback hosts."
        ),
        "auth_base_url": _string(
            "Overrides the authentication host (e.g. https://auth.anaplan.com)."
        ),
        "oauth_base_url": _string(
            "Overrides the OAuth 2.0 host (e.g. https://us1a.app.anaplan.com)."
        ),
        "auth_method": _string(
            "basic, oauth or certificate. Default: inferred from the credentials set "
            "(username+password, oauth_client_id/oauth_refresh_token, certificate+private_key).",
            enum=list(AUTH_METHODS),
        ),
        "username": _string("Anaplan user (email) for basic authentication."),
        "password": _secret("Password for basic authentication."),
        "oauth_client_id": _string("Client id of the Anaplan OAuth 2.0 client."),
        "oauth_client_secret": _secret(
            "Client secret (authorization-code clients only; device-grant clients have none)."
        ),
        "oauth_refresh_token": _secret(
            "Refresh token to start from. Rotated tokens are kept in oauth_token_store."
        ),
        "oauth_token_store": _string(
            "File that keeps the newest OAuth refresh token. "
            "Default: ~/.target-anaplan/tokens/<client id>.json."
        ),
        "oauth_refresh_token_lifespan_s": _integer(
            "Refresh token lifespan configured on a rotatable OAuth client, in seconds; "
            "used to warn before it runs out.",
            minimum=1,
        ),
        "certificate": _string("CA certificate for certificate authentication: path or PEM text."),
        "private_key": _secret("Private key of the certificate: path or PEM text."),
        "private_key_passphrase": _secret("Passphrase of an encrypted private key."),
        "certificate_data_format": _string(
            "encodedDataFormat sent with certificate authentication.",
            enum=["v2", "v1"],
            default="v2",
        ),
        "ca_bundle": _string(
            "Path to a CA bundle used to verify TLS certificates (verification is always on)."
        ),
        "workspace": _string("Workspace name or id."),
        "model": _string("Model name or id."),
        "streams": {
            "type": ["object", "string"],
            "additionalProperties": _STREAM_SCHEMA,
            "default": {},
            "description": "Stream name -> where its records go (file, imports, processes, "
            "mode, columns). May be given as JSON text.",
        },
        "unmapped_streams": _string(
            "What to do with a stream not listed in `streams`: `error` fails the run, "
            "`ignore` drops its records.",
            enum=["error", "ignore"],
            default="error",
        ),
        "import_concurrency": _string(
            "Run a commit's imports and processes in `parallel` or one after another.",
            enum=["parallel", "sequential"],
            default="parallel",
        ),
        "chunk_size_mb": _integer(
            "Upload chunk size in MB (10^6 bytes, before gzip).",
            minimum=1,
            maximum=50,
            default=25,
        ),
        "poll_interval_s": _seconds("Seconds between task status polls.", 5),
        "import_timeout_s": _seconds(
            "Seconds an import or process may run before the run fails.", 3600
        ),
        "encoding_errors": _string(
            "Characters the data source's encoding cannot hold: `fail` the run, or "
            "`replace` them with '?' (one warning per stream).",
            enum=["fail", "replace"],
            default="fail",
        ),
        "max_failed_rows": _integer(
            "Rows an import may fail before the run fails; null = only warn.",
            type=["integer", "null"],
            minimum=0,
            default=0,
        ),
        "max_ignored_rows": _integer(
            "Rows an import may ignore before the run fails; null = only warn.",
            type=["integer", "null"],
            minimum=0,
            default=0,
        ),
        "failure_dump_dir": _string(
            "Directory for Anaplan's failure dumps of imports with failed rows.",
            default=DEFAULT_FAILURE_DUMP_DIR,
        ),
        "retry_max_attempts": _integer(
            "Attempts per request on transient errors (429, 5xx, dropped connections).",
            minimum=1,
            default=8,
        ),
        "retry_deadline_s": _seconds("Total seconds to keep retrying one request.", 600),
        "request_timeout_s": _seconds("Seconds to wait for one HTTP response.", 300),
    },
}


# --- Typed settings ----------------------------------------------------------------------


@dataclass(frozen=True)
class StreamSettings:
    """Where one stream goes: its data source, what runs after upload, and column names."""

    file: str | None = None
    imports: tuple[str, ...] = ()
    processes: tuple[str, ...] = ()
    mode: Literal["insert", "all"] = "all"
    columns: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Settings:
    """Every setting, typed; build with ``from_config`` so the cross-field rules hold."""

    workspace: str
    model: str
    auth_method: Literal["basic", "oauth", "certificate"]
    region: str = "us1"
    api_base_url: str | None = None
    auth_base_url: str | None = None
    oauth_base_url: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    oauth_client_id: str | None = None
    oauth_client_secret: str | None = field(default=None, repr=False)
    oauth_refresh_token: str | None = field(default=None, repr=False)
    oauth_token_store: str | None = None
    oauth_refresh_token_lifespan_s: int | None = None
    certificate: str | None = None
    private_key: str | None = field(default=None, repr=False)
    private_key_passphrase: str | None = field(default=None, repr=False)
    certificate_data_format: Literal["v2", "v1"] = "v2"
    ca_bundle: str | None = None
    streams: Mapping[str, StreamSettings] = field(default_factory=dict)
    unmapped_streams: Literal["error", "ignore"] = "error"
    import_concurrency: Literal["parallel", "sequential"] = "parallel"
    chunk_size_mb: int = 25
    poll_interval_s: float = 5
    import_timeout_s: float = 3600
    encoding_errors: Literal["fail", "replace"] = "fail"
    max_failed_rows: int | None = 0
    max_ignored_rows: int | None = 0
    failure_dump_dir: str = DEFAULT_FAILURE_DUMP_DIR
    retry_max_attempts: int = 8
    retry_deadline_s: float = 600
    request_timeout_s: float = 300

    @property
    def chunk_size_bytes(self) -> int:
        """Chunk size in bytes (Anaplan's MB are 10^6 bytes)."""
        return self.chunk_size_mb * 1_000_000

    def stream(self, name: str) -> StreamSettings | None:
        """The mapping configured for a stream, or None if it is not listed."""
        return self.streams.get(name)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        """Parse and check a config mapping; unknown keys (the SDK's built-ins) are ignored.

        Settings left unset take the defaults declared on this class.
        """
        read = _Reader(config)
        auth_method = _auth_method(read)
        values: dict[str, Any] = {
            "workspace": read.string("workspace", required=True),
            "model": read.string("model", required=True),
            "auth_method": auth_method,
            "region": read.choice("region", REGIONS, lower=True),
            "api_base_url": _url(read, "api_base_url"),
            "auth_base_url": _url(read, "auth_base_url"),
            "oauth_base_url": _url(read, "oauth_base_url"),
            "username": read.string("username"),
            "password": read.string("password"),
            "oauth_client_id": read.string("oauth_client_id"),
            "oauth_client_secret": read.string("oauth_client_secret"),
            "oauth_refresh_token": read.string("oauth_refresh_token"),
            "oauth_token_store": read.string("oauth_token_store"),
            "oauth_refresh_token_lifespan_s": read.integer(
                "oauth_refresh_token_lifespan_s", minimum=1, nullable=True
            ),
            "certificate": _pem_or_path(read, "certificate"),
            "private_key": _pem_or_path(read, "private_key"),
            "private_key_passphrase": read.string("private_key_passphrase"),
            "certificate_data_format": read.choice("certificate_data_format", ("v2", "v1")),
            "ca_bundle": _existing_file(read, "ca_bundle"),
            "streams": _streams(config.get("streams")),
            "unmapped_streams": read.choice("unmapped_streams", ("error", "ignore")),
            "import_concurrency": read.choice("import_concurrency", ("parallel", "sequential")),
            "chunk_size_mb": read.integer("chunk_size_mb", minimum=1, maximum=50),
            "poll_interval_s": read.seconds("poll_interval_s"),
            "import_timeout_s": read.seconds("import_timeout_s"),
            "encoding_errors": read.choice("encoding_errors", ("fail", "replace")),
            "max_failed_rows": read.integer("max_failed_rows", minimum=0, nullable=True),
            "max_ignored_rows": read.integer("max_ignored_rows", minimum=0, nullable=True),
            "failure_dump_dir": read.string("failure_dump_dir") or _UNSET,
            "retry_max_attempts": read.integer("retry_max_attempts", minimum=1),
            "retry_deadline_s": read.seconds("retry_deadline_s"),
            "request_timeout_s": read.seconds("request_timeout_s"),
        }
        return cls(**{key: value for key, value in values.items() if value is not _UNSET})


# --- Parsing helpers ---------------------------------------------------------------------


def _invalid(key: str, problem: str, fix: str) -> ConfigError:
    return ConfigError(f"Setting `{key}` {problem}. {fix}")


_UNSET: Any = object()  # "not in the config": the dataclass default applies


class _Reader:
    """Reads one top-level setting at a time, with a message naming it on any mistake."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self._config = config

    def is_set(self, key: str) -> bool:
        return self._config.get(key) not in (None, "")

    def string(self, key: str, *, required: bool = False) -> str | None:
        value = self._config.get(key)
        if value in (None, ""):
            if required:
                raise _invalid(key, "is required", f"Set `{key}` to a name or id.")
            return None
        if not isinstance(value, str):
            raise _invalid(key, f"must be text, got {value!r}", f'Quote it: "{value}".')
        return value

    def choice(self, key: str, choices: tuple[str, ...], *, lower: bool = False) -> Any:
        value = self.string(key)
        if value is None:
            return _UNSET
        normalized = value.strip().lower() if lower else value.strip()
        if normalized not in choices:
            raise _invalid(key, f"is {value!r}", f"Use one of: {', '.join(choices)}.")
        return normalized

    def integer(
        self, key: str, *, minimum: int, maximum: int | None = None, nullable: bool = False
    ) -> Any:
        if key not in self._config:
            return _UNSET
        value = self._config[key]
        if value is None:
            return None if nullable else _UNSET
        number = _as_number(value, integer=True)
        bounds = f"from {minimum} to {maximum}" if maximum else f"of at least {minimum}"
        null = " (or null)" if nullable else ""
        if number is None or number < minimum or (maximum is not None and number > maximum):
            raise _invalid(key, f"is {value!r}", f"Use a whole number {bounds}{null}.")
        return int(number)

    def seconds(self, key: str) -> Any:
        value = self._config.get(key)
        if value in (None, ""):
            return _UNSET
        number = _as_number(value, integer=False)
        if number is None or number <= 0:
            raise _invalid(key, f"is {value!r}", "Use a number of seconds greater than 0.")
        return number


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


def _auth_method(read: _Reader) -> str:
    """The explicit auth method, or the one whose credentials are set; its credentials complete."""
    explicit = read.choice("auth_method", AUTH_METHODS)
    present = {m for m, keys in _CREDENTIALS.items() if any(read.is_set(k) for k in keys)}
    if explicit is not _UNSET:
        method = explicit
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
        names = " and ".join(f"`{k}`" for k in missing)
        raise ConfigError(f"{method} authentication needs {names}. Set {names}.")
    return method


def _url(read: _Reader, key: str) -> str | None:
    """A base URL without trailing slash; https, or http for loopback hosts only."""
    value = read.string(key)
    if value is None:
        return None
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _invalid(key, f"is not a URL: {value!r}", "Use https://host[/path].")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise _invalid(
            key,
            f"uses plain http for a non-loopback host: {value!r}",
            "Use https:// (http:// is accepted only for 127.0.0.1, ::1 and localhost).",
        )
    return value.strip().rstrip("/")


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _existing_file(read: _Reader, key: str) -> str | None:
    value = read.string(key)
    if value is not None and not os.path.isfile(os.path.expanduser(value)):
        raise _invalid(key, f"names no file: {value!r}", "Give the path of an existing file.")
    return value


def _pem_or_path(read: _Reader, key: str) -> str | None:
    """PEM text is kept as is; anything else must be the path of an existing file."""
    value = read.string(key)
    if value is not None and _PEM_MARKER in value:
        return value
    return _existing_file(read, key)


# --- Streams -----------------------------------------------------------------------------

_STREAM_KEYS = tuple(_STREAM_SCHEMA["properties"])


def _streams(raw: Any) -> dict[str, StreamSettings]:
    if raw in (None, ""):
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as error:
            raise _invalid(
                "streams", f"is not valid JSON ({error})", "Give an object keyed by stream name."
            ) from None
    if not isinstance(raw, Mapping):
        raise _invalid("streams", "must be an object", 'Use {"<stream>": {"file": "...", ...}}.')
    return {str(name): _stream(str(name), entry) for name, entry in raw.items()}


def _stream(name: str, entry: Any) -> StreamSettings:
    where = f"streams.{name}"
    if entry is None:
        entry = {}
    if not isinstance(entry, Mapping):
        raise _invalid(where, "must be an object", 'Use {"file": "...", "imports": ["..."]}.')
    for key in entry:
        if key not in _STREAM_KEYS:
            near = difflib.get_close_matches(str(key), _STREAM_KEYS, n=1)
            hint = f"Did you mean `{near[0]}`? " if near else ""
            raise _invalid(
                f"{where}.{key}", "is unknown", f"{hint}Known keys: {', '.join(_STREAM_KEYS)}."
            )
    file = entry.get("file")
    if file is not None and (not isinstance(file, str) or not file.strip()):
        raise _invalid(f"{where}.file", f"is {file!r}", "Give the data source's name or id.")
    mode = entry.get("mode") or "all"
    if mode not in STREAM_MODES:
        raise _invalid(f"{where}.mode", f"is {mode!r}", "Use `insert` or `all`.")
    settings = StreamSettings(
        file=file,
        imports=_names(f"{where}.imports", entry.get("imports")),
        processes=_names(f"{where}.processes", entry.get("processes")),
        mode=mode,
        columns=_columns(f"{where}.columns", entry.get("columns")),
    )
    if settings.mode == "insert" and not (settings.imports or settings.processes):
        raise _invalid(
            f"{where}.mode",
            "is `insert` but the stream runs no import or process",
            "Each batch replaces the file, so earlier batches would never reach the model: "
            "add `imports` (or `processes`), or use mode `all`.",
        )
    return settings


def _names(key: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _invalid(key, f"is {value!r}", 'Use a list of names or ids, e.g. ["Import 1"].')
    return tuple(value)


def _columns(key: str, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(v, str) and v for v in value.values()):
        raise _invalid(
            key, f"is {value!r}", 'Use an object of header name -> field, e.g. {"Code": "id"}.'
        )
    return {str(k): v for k, v in value.items()}
