"""``check``: everything a run needs, checked before a run, without loading anything.

Each check adds a finding (ok, problem or note) and the checks go on after a problem where
they can, so one ``check`` lists everything to fix. Checks that depend on an earlier one
(the streams of a model that cannot be used, the load plan while names are wrong) are
skipped with a note. Nothing is uploaded or run and the change store is only read; like
every run, the check logs in, which renews a rotatable OAuth client's refresh token.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from target_anaplan.admin.tap_catalog import TapStream
from target_anaplan.anaplan.catalog import Catalog, resolve_model
from target_anaplan.anaplan.client import AnaplanClient
from target_anaplan.anaplan.credentials import OAuthCredentials
from target_anaplan.anaplan.models import DataSourceTarget, ModelRef
from target_anaplan.anaplan.oauth import duration_text, lifespan_margin_s
from target_anaplan.anaplan.token_store import TokenStore
from target_anaplan.change_store import default_store_url, probe_store
from target_anaplan.csv_writer import check_columns
from target_anaplan.errors import TargetAnaplanError, one_line
from target_anaplan.loading import check_key
from target_anaplan.plan import describe_plan
from target_anaplan.reader import InputPosition
from target_anaplan.run import Run, build_client
from target_anaplan.settings import Settings, StreamSettings

Status = Literal["ok", "problem", "note"]
COLUMNS = ("status", "check", "detail")
# activeState values in which a model refuses a run's work (ARCHIVED fails resolution).
_STATE_PROBLEMS = {
    "LOCKED": "is locked: Anaplan refuses imports into it (HTTP 423). Unlock it in Anaplan.",
    "MAINTENANCE": "is offline (maintenance mode): Anaplan refuses all work on it (HTTP 424). "
    "Bring it online in Anaplan.",
    "PRODUCTION_MAINTENANCE": "is offline (maintenance mode): Anaplan refuses all work on it "
    "(HTTP 424). Bring it online in Anaplan.",
}


@dataclass(frozen=True)
class Finding:
    """One line of the check's report."""

    status: Status
    check: str
    detail: str


@dataclass
class Report:
    """The findings so far, in the order they were made."""

    findings: list[Finding] = field(default_factory=list)

    def add(self, status: Status, check: str, detail: str) -> None:
        self.findings.append(Finding(status, check, detail))

    @property
    def problems(self) -> int:
        return sum(1 for f in self.findings if f.status == "problem")


def preflight(
    config: Mapping[str, Any],
    tap: Mapping[str, TapStream] | None = None,
    *,
    clock: Callable[[], float] = time.time,
) -> Report:
    """Check a config, and with a tap's catalog every stream's header, as a run would."""
    report = Report()
    try:
        settings = Settings.from_config(config)
    except TargetAnaplanError as error:
        report.add("problem", "config", one_line(error))
        return report
    streams = ", ".join(settings.streams) or "none"
    report.add("ok", "config", f"{len(settings.streams)} stream(s): {streams}")
    credentials = settings.credentials()
    if isinstance(credentials, OAuthCredentials):
        _token_life(credentials, report, clock)
    try:
        client = build_client(settings)  # loads a certificate and its key
    except TargetAnaplanError as error:
        report.add("problem", "credentials", one_line(error))
        return report
    try:
        _Preflight(settings, client, tap, report).run()
    finally:
        client.close()
    return report


def _token_life(credentials: OAuthCredentials, report: Report, clock: Callable[[], float]) -> None:
    """How long the stored refresh token has left, read before the check's own login
    renews it: the same reckoning as the run's warning."""
    path = credentials.token_store
    store = TokenStore(path) if path else TokenStore.for_client(credentials.client_id)
    try:
        stored = store.read()
    except TargetAnaplanError as error:
        report.add("problem", "OAuth token", one_line(error))
        return
    lifespan = credentials.refresh_token_lifespan_s
    if stored is None or stored.rotating is False:
        return  # no token yet (the login check says what to do), or one that does not run out
    if not lifespan or stored.issued_at is None:
        report.add(
            "note",
            "OAuth token",
            f"Set oauth_refresh_token_lifespan_s to the client's lifespan to see how long the "
            f"refresh token in {store.path} has left.",
        )
        return
    remaining_s = stored.issued_at + lifespan - clock()
    if remaining_s > lifespan_margin_s(lifespan):
        report.add(
            "ok",
            "OAuth token",
            f"The refresh token in {store.path} has about {duration_text(remaining_s)} left of "
            f"its {duration_text(lifespan)} lifespan; each run renews it.",
        )
        return
    ends = (
        "has probably expired" if remaining_s <= 0 else f"expires in {duration_text(remaining_s)}"
    )
    report.add(
        "problem",
        "OAuth token",
        f"The refresh token in {store.path} {ends} (oauth_refresh_token_lifespan_s={lifespan}). "
        "Run the target more often than its lifespan, or re-authorize with "
        f"`target-anaplan-admin login --client-id {credentials.client_id} --token-store "
        f"{store.path}`.",
    )


ModelKey = tuple[str, str]  # (workspace, model) as configured


class _Preflight:
    """The checks that talk to Anaplan, in the order a run needs them."""

    def __init__(
        self,
        settings: Settings,
        client: AnaplanClient,
        tap: Mapping[str, TapStream] | None,
        report: Report,
    ) -> None:
        self.settings = settings
        self.client = client
        self.tap = tap
        self.report = report
        self.models: dict[ModelKey, tuple[ModelRef, Catalog]] = {}
        # Names that did not resolve (or a store that cannot open): the plan would fail on them.
        self.blocking = 0

    def run(self) -> None:
        if not self._credentials():
            return
        keys = self._model_keys()
        several_workspaces = len({workspace for workspace, _ in keys}) > 1
        for key in keys:
            # Named by model, and by workspace too where models of several are checked, so
            # that no two rows of the report share a name.
            self._model(key, f"model {key[1]}" + (f" in {key[0]}" if several_workspaces else ""))
        for stream, stream_settings in self.settings.streams.items():
            self._stream(stream, stream_settings)
        for item in self.settings.after_load:
            self._after_load(item.name, self._key(item.workspace, item.model))
        self._change_stores()
        self._plan()

    def _block(self, check: str, problem: TargetAnaplanError | str) -> None:
        """A problem the load plan could not be built past."""
        self.blocking += 1
        self.report.add(
            "problem", check, problem if isinstance(problem, str) else one_line(problem)
        )

    def _key(self, workspace: str | None, model: str | None) -> ModelKey:
        return (workspace or self.settings.workspace, model or self.settings.model)

    def _model_keys(self) -> list[ModelKey]:
        """The models the streams and after_load use (the top-level one when none)."""
        settings = self.settings
        keys = [self._key(s.workspace, s.model) for s in settings.streams.values()]
        keys += [self._key(a.workspace, a.model) for a in settings.after_load]
        return list(dict.fromkeys(keys)) or [self._key(None, None)]

    def _credentials(self) -> bool:
        settings = self.settings
        try:
            self.client.auth.header()
        except TargetAnaplanError as error:
            self.report.add("problem", "credentials", one_line(error))
            return False
        who = {
            "basic": f"user {settings.username}",
            "oauth": f"OAuth client {settings.oauth_client_id}",
            "certificate": "the certificate",
        }[settings.auth_method]
        self.report.add("ok", "credentials", f"Anaplan accepted {who}.")
        return True

    def _model(self, key: ModelKey, check: str) -> None:
        try:
            ref = resolve_model(self.client, *key)
            entry = self.client.request("GET", f"/models/{ref.model_id}").get("model") or {}
        except TargetAnaplanError as error:
            self._block(check, error)
            return
        state = str(entry.get("activeState") or "unknown")
        named = f"Model {ref.model_name!r} ({ref.model_id})"
        if state in _STATE_PROBLEMS:
            self._block(check, f"{named} {_STATE_PROBLEMS[state]}")
            return
        where = f"workspace {ref.workspace_name!r} ({ref.workspace_id})"
        self.report.add("ok", check, f"{named} in {where}: {state}.")
        self.models[key] = (ref, Catalog(self.client, ref))

    def _stream(self, stream: str, stream_settings: StreamSettings) -> None:
        check = f"stream {stream}"
        found = self.models.get(self._key(stream_settings.workspace, stream_settings.model))
        if found is None:
            self.report.add("note", check, "Not checked: its model cannot be used (see above).")
            return
        try:
            source = found[1].data_source(
                stream,
                file=stream_settings.file,
                imports=stream_settings.imports,
                processes=stream_settings.processes,
            )
        except TargetAnaplanError as error:
            self._block(check, error)
            return
        actions = ", ".join(a.label for a in source.actions) or "no import (file upload only)"
        self.report.add(
            "ok", check, f"File {source.file_name!r} ({source.file_id}), then {actions}."
        )
        if self.tap is not None:
            self._header(stream, stream_settings, source, self.tap)

    def _header(
        self,
        stream: str,
        stream_settings: StreamSettings,
        source: DataSourceTarget,
        tap: Mapping[str, TapStream],
    ) -> None:
        check = f"stream {stream} header"
        tap_stream = tap.get(stream)
        if tap_stream is None:
            self.report.add(
                "note",
                check,
                f"Not in the catalog (its streams: {', '.join(tap) or 'none'}); the run checks "
                "it when the stream's SCHEMA arrives.",
            )
            return
        header = source.layout.header_names
        try:
            unused = check_columns(
                stream,
                header,
                stream_settings.columns,
                list(tap_stream.properties),
                formats=stream_settings.formats,
            )
        except TargetAnaplanError as error:
            self.report.add("problem", check, one_line(error))
            return
        fed = ", ".join(f"{c} <- {stream_settings.columns.get(c, c)}" for c in header)
        unloaded = f" Fields not loaded: {', '.join(unused)}." if unused else ""
        self.report.add("ok", check, f"Every column is fed: {fed}.{unloaded}")
        self._stream_key(stream, stream_settings, tap_stream)

    def _stream_key(
        self, stream: str, stream_settings: StreamSettings, tap_stream: TapStream
    ) -> None:
        """The key change tracking and deletes will use, checked as the run checks it."""
        check = f"stream {stream} key"
        key = tuple(stream_settings.key) or tap_stream.key
        try:
            check_key(stream, stream_settings, key, list(tap_stream.properties))
        except TargetAnaplanError as error:
            self.report.add("problem", check, one_line(error))
            return
        if key:
            self.report.add("ok", check, f"{', '.join(key)} (mode {stream_settings.mode}).")

    def _after_load(self, name: str, key: ModelKey) -> None:
        check = f"after_load {name}"
        found = self.models.get(key)
        if found is None:
            self.report.add("note", check, "Not checked: its model cannot be used (see above).")
            return
        try:
            action = found[1].action(name)
        except TargetAnaplanError as error:
            self._block(check, error)
            return
        self.report.add("ok", check, f"Runs the {action.label}.")

    def _change_stores(self) -> None:
        """The stores the run would use: ``change_store`` if set, else the default store
        of each model whose streams track changes."""
        settings = self.settings
        if settings.change_store:
            urls = [settings.change_store]
        else:
            tracking = [
                self._key(s.workspace, s.model)
                for s in settings.streams.values()
                if s.mode != "all" or s.deletes != "ignore"
            ]
            refs = [self.models[key][0] for key in tracking if key in self.models]
            urls = [default_store_url(ref.model_id) for ref in refs]
        for url in dict.fromkeys(urls):
            try:
                self.report.add("ok", "change store", probe_store(url))
            except TargetAnaplanError as error:
                self._block("change store", error)

    def _plan(self) -> None:
        """The load plan, resolved the way the run resolves it (once the names are right)."""
        if self.blocking:
            self.report.add("note", "load plan", "Not built: fix the problems above first.")
            return
        run = Run(self.settings, InputPosition())
        try:
            resolution = run.resolve()
        except TargetAnaplanError as error:
            self.report.add("problem", "load plan", one_line(error))
            return
        finally:
            run.close()
        for line in describe_plan(resolution.order, resolution.data_sources):
            self.report.add("ok", "load plan", line)
        for item in resolution.after_load:
            self.report.add("ok", "load plan", f"then {item.action.label}")
