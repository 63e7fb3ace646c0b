"""The target's config, read the way the target reads it: ``--config`` files merged left to
right (as the SDK merges them), or else the ``TARGET_ANAPLAN_*`` environment variables that
Meltano sets for a plugin (so the commands work under ``meltano invoke``).

Environment values follow the SDK's rules: the setting's name upper-cased after the prefix,
lists and objects as JSON text. Everything else stays text: the settings table reads
numbers and booleans from text itself, and also takes what the SDK's own parser cannot
(``TARGET_ANAPLAN_MAX_FAILED_ROWS=warn``). A ``.env`` file is not read.

Meltano exports an object setting flattened, its nested keys joined by dots
(``{"orders.imports": [...], "orders.columns.Code": "id"}``), so ``streams`` is put back
together: a stream's name ends before its first part that is a stream setting.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from target_anaplan.errors import ConfigError
from target_anaplan.settings import CONFIG_SCHEMA, Settings, StreamSettings

ENV_PREFIX = "TARGET_ANAPLAN_"
ENV = "ENV"  # as with the SDK, `--config ENV` reads the environment at that point
# `list workspaces` needs only credentials (`list models` no model), but the settings
# table requires both; these stand in for the ones the command never reads.
_UNUSED = "(not used by this command)"
_STREAM_SETTINGS = frozenset(f.name for f in fields(StreamSettings))


def read_config(
    paths: Sequence[str] | None, environ: Mapping[str, str] = os.environ
) -> dict[str, Any]:
    """The merged config of ``paths`` (``ENV`` for the environment); none: the environment."""
    config: dict[str, Any] = {}
    for path in paths or [ENV]:
        config.update(from_environment(environ) if path == ENV else _read_file(path))
    return config


def from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """The settings set by ``TARGET_ANAPLAN_<NAME>`` variables (empty ones count as unset)."""
    config = {}
    for name, schema in CONFIG_SCHEMA["properties"].items():
        variable = ENV_PREFIX + name.upper()
        if environ.get(variable):
            config[name] = _env_value(variable, environ[variable], schema)
    if "streams" in config:
        config["streams"] = _nested_streams(config["streams"])
    return config


def _nested_streams(text: str) -> Any:
    """``streams`` as Meltano flattened it, nested again (nested entries are kept). Text
    that is not a JSON object is left for the settings table to refuse."""
    try:
        flat = json.loads(text)
    except json.JSONDecodeError:
        return text
    if not isinstance(flat, dict):
        return text
    streams: dict[str, Any] = {}
    for key, value in flat.items():
        parts = key.split(".")
        at = next((n for n in range(1, len(parts)) if parts[n] in _STREAM_SETTINGS), None)
        if at is None:
            streams[key] = value
            continue
        stream = streams.setdefault(".".join(parts[:at]), {})
        setting, rest = parts[at], ".".join(parts[at + 1 :])
        if rest:  # a key of `columns` or `formats` (which may hold dots)
            stream.setdefault(setting, {})[rest] = value
        else:
            stream[setting] = value
    return streams


def _env_value(variable: str, text: str, schema: Mapping[str, Any]) -> Any:
    declared = schema.get("type")
    types = declared if isinstance(declared, list) else [declared]
    if "array" not in types and types != ["object"]:
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(
            f"Environment variable {variable} is not valid JSON ({error}). Give the list as "
            'JSON text, e.g. ["first", "second"].'
        ) from None


def read_json(option: str, path: str) -> Any:
    """The JSON in the file an option names; ConfigError naming both if it cannot be read."""
    try:
        return json.loads(Path(path).expanduser().read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"Cannot read {option} {path}: {error.strerror or error}.") from None
    except json.JSONDecodeError as error:
        raise ConfigError(f"{option} {path} is not valid JSON ({error}).") from None


def _read_file(path: str) -> dict[str, Any]:
    config = read_json("--config", path)
    if not isinstance(config, dict):
        raise ConfigError(f"--config {path} must hold a JSON object of settings.")
    return config


def with_names(
    config: Mapping[str, Any], workspace: str | None, model: str | None
) -> dict[str, Any]:
    """The config with the command line's ``--workspace`` and ``--model`` over its own."""
    chosen = {"workspace": workspace, "model": model}
    return {**config, **{name: value for name, value in chosen.items() if value}}


def settings_for(
    config: Mapping[str, Any], needs: Sequence[str] = ("workspace", "model")
) -> Settings:
    """``Settings.from_config`` for a command that reads only ``needs`` of the workspace
    and model."""
    filled = dict(config)
    for name in ("workspace", "model"):
        if name not in needs and not filled.get(name):
            filled[name] = _UNUSED
    return Settings.from_config(filled)
