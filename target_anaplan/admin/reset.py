"""``reset``: forget what the change store knows of some streams' data sources, so that
their next run sends every row it receives again (Hightouch's "resync full query").

The stream's data source is resolved the way a run resolves it, so the store forgets
exactly what the run would look up. The tap's own state is untouched: an incremental tap
still sends only rows past its bookmark (clear it too, e.g. ``meltano state clear``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from target_anaplan.change_store import ChangeStore, default_store_url
from target_anaplan.changes import source_id
from target_anaplan.errors import ConfigError
from target_anaplan.reader import InputPosition
from target_anaplan.run import Run
from target_anaplan.settings import Settings

COLUMNS = ("stream", "file", "model", "forgotten")


def chosen_streams(settings: Settings, streams: Sequence[str], every: bool) -> list[str]:
    """The streams named on the command line (``--all``: every configured one)."""
    known = list(settings.streams)
    if every:
        return known
    if not streams:
        raise ConfigError("Name the streams to reset, or give --all for every configured one.")
    unknown = [s for s in streams if s not in settings.streams]
    if unknown:
        raise ConfigError(
            f"Not in `streams`: {', '.join(map(repr, unknown))}. Configured streams: "
            f"{', '.join(map(repr, known)) or 'none'}."
        )
    return list(dict.fromkeys(streams))


def reset_streams(settings: Settings, streams: Sequence[str]) -> list[dict[str, Any]]:
    """Forget each stream's tracked keys; one row a stream with how many were forgotten."""
    run = Run(settings, InputPosition())
    stores: dict[str, ChangeStore] = {}
    try:
        resolution = run.resolve()
        rows = []
        for stream in streams:
            model = resolution.rules[stream].model
            source = resolution.data_sources[stream]
            url = settings.change_store or default_store_url(model.model_id)
            if url not in stores:
                stores[url] = ChangeStore(url)
            forgotten = stores[url].forget(source_id(model.model_id, source.file_id))
            rows.append(
                {
                    "stream": stream,
                    "file": source.file_name,
                    "model": model.model_name,
                    "forgotten": forgotten,
                }
            )
        return rows
    finally:
        for store in stores.values():
            store.close()
        run.close()
