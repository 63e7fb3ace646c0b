"""The page for people (`GET /__sim__/`): what landed in the simulator, at a glance.

Server-rendered HTML with a few lines of CSS, no JavaScript, refreshing itself: each model's
lists and modules, each file's latest upload, the tasks with their counts and dumps, and the
request log. Read-only; big lists, modules and files show their first rows only.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable
from html import escape
from typing import Any

from target_anaplan.simulator.scenario import ModelDef
from target_anaplan.simulator.state import FileState, SimState, Task

REFRESH_S = 5
SHOWN_ROWS = 25
SHOWN_FILE_LINES = 8
SHOWN_REQUESTS = 60
PREVIEW_BYTES = 16_384

CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1d2733; }
h1 { margin: 0; } h2 { border-bottom: 2px solid #0f6fb8; padding-bottom: .2em; }
small, .muted { color: #5c6b7a; font-weight: normal; }
table { border-collapse: collapse; margin: .4em 0 1em; max-width: 100%; }
th, td { border: 1px solid #d0d7de; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #eef3f8; }
pre { background: #f6f8fa; padding: .4em .6em; margin: .2em 0; white-space: pre-wrap; }
pre, .path { overflow-wrap: anywhere; }
.COMPLETE { color: #1a7f37; } .FAILED, .CANCELLED, .s4, .s5 { color: #cf222e; }
.IN_PROGRESS, .NOT_STARTED, .CANCELLING { color: #9a6700; }
"""


def render(state: SimState) -> str:
    """The whole page; the caller holds the state lock."""
    now = _clock_text(state.clock())
    sections = [
        _section("Models", [_model(state, m) for m in state.scenario.models.values()]),
        _section("Files", [_files(state)]),
        _section("Tasks", [_tasks(state)]),
        _section("Requests", [_requests(state)]),
    ]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="{REFRESH_S}">'
        f"<title>Anaplan simulator</title><style>{CSS}</style></head><body>"
        "<h1>Anaplan simulator</h1>"
        f'<p class="muted">Read-only view of what the simulator holds, as of {now} '
        f"(simulator clock; times below are UTC too); refreshes every {REFRESH_S} s. "
        "JSON of the same: <code>/__sim__/models</code>, <code>/files</code>, "
        "<code>/tasks</code>, <code>/requests</code>.</p>"
        f"{''.join(sections)}</body></html>"
    )


# -- models -----------------------------------------------------------------------------------


def _model(state: SimState, model: ModelDef) -> str:
    title = (
        f"<h3>{escape(model.name)} <small>{escape(model.id)} · {escape(model.workspace_name)} · "
        f"{escape(state.model_states[model.id])}</small></h3>"
    )
    parts = [title]
    for lst in model.lists.values():
        items = state.lists[(model.id, lst.name)]
        header = ["Code", "Name", "Parent", *lst.properties]
        rows = (
            [item.code, item.name, item.parent, *(item.properties.get(p) for p in lst.properties)]
            for item in map(items.item, itertools.islice(items.rows.values(), SHOWN_ROWS))
        )
        parts.append(_heading("List", lst.name, len(items), "items"))
        parts.append(_table(header, rows, len(items)))
    for module in model.modules.values():
        cells = state.modules[(model.id, module.name)]
        header = [*module.dimensions, *module.line_items]
        rows = (
            [*key, *(values.get(li) for li in module.line_items)]
            for key, values in itertools.islice(cells.items(), SHOWN_ROWS)
        )
        parts.append(_heading("Module", module.name, len(cells), "rows"))
        parts.append(_table(header, rows, len(cells)))
    return "".join(parts)


def _heading(kind: str, name: str, count: int, noun: str) -> str:
    return (
        f"<h4>{kind} {escape(name)} <small>{count} {noun if count != 1 else noun[:-1]}</small></h4>"
    )


# -- files ------------------------------------------------------------------------------------


def _files(state: SimState) -> str:
    rows = [
        [_text(f.definition.name, f.definition.id), _model_name(state, f.model_id),
         sum(f.uploads.values()), _latest_upload(f)]
        for model_files in state.files.values()
        for f in model_files.values()
    ]  # fmt: skip
    header = ["File", "Model", "Uploads", "Latest upload: first rows"]
    return _table(header, rows, len(rows), raw_columns=(0, 3))


def _latest_upload(file: FileState) -> str:
    if file.last_upload is None:
        return '<span class="muted">nothing uploaded</span>'
    user, when = file.last_upload
    chunks = file.content.get(user)
    if chunks is None:  # deleted, or expired after 48 h
        return f'<span class="muted">{escape(user)}\'s upload is gone</span>'
    size = sum(len(c) for c in chunks)
    about = f"{_size(size)} in {len(chunks)} chunk(s) by {user} at {_time_text(when)}"
    head = _first_bytes(chunks).decode(file.definition.encoding, "replace")
    return f'<span class="muted">{escape(about)}</span>{_preview(head)}'


def _first_bytes(chunks: list[bytes]) -> bytes:
    head = bytearray()
    for chunk in chunks:
        head += chunk[: PREVIEW_BYTES - len(head)]
        if len(head) >= PREVIEW_BYTES:
            break
    return bytes(head)


# -- tasks ------------------------------------------------------------------------------------


def _tasks(state: SimState) -> str:
    rows = [
        [_time_text(t.created_ms / 1000), _action_name(state, t), t.kind, t.user,
         f'<span class="{_state_class(t)}">{escape(t.state)}</span>', t.polls,
         _result(state, t), _dumps(state, t)]
        for t in list(state.tasks.values())[-SHOWN_ROWS:]
    ]  # fmt: skip
    header = ["Created", "Action", "Kind", "User", "State", "Polls", "Result", "Dumps"]
    return _table(header, rows, len(state.tasks), raw_columns=(4, 6, 7))


def _state_class(task: Task) -> str:
    if task.state == "COMPLETE" and task.result and not task.result["successful"]:
        return "FAILED"
    return task.state


def _result(state: SimState, task: Task) -> str:
    if task.result is None:
        return ""
    results = task.result.get("nestedResults") or [task.result]
    return "<br>".join(_one_result(state, task.model_id, r) for r in results)


def _one_result(state: SimState, model_id: str, result: dict[str, Any]) -> str:
    details = result.get("details") or [{}]
    values = details[0].get("values") or []
    counts = dict(zip(values[::2], values[1::2], strict=False))
    name = escape(_import_name(state, model_id, result.get("objectId", "")))
    if not result["successful"] or "successRowCount" not in counts:
        return f"{name}: failed: {escape(str(details[0].get('localMessageText', '')))}"
    return (
        f"{name}: {counts['successRowCount']} ok ({counts.get('successCreateCount', 0)} created, "
        f"{counts.get('successUpdateCount', 0)} updated), {counts.get('failedCount', 0)} failed, "
        f"{counts.get('ignoredCount', 0)} ignored"
    )


def _dumps(state: SimState, task: Task) -> str:
    parts = []
    for object_id, dump in task.dumps.items():
        title = f"{_import_name(state, task.model_id, object_id)}: {_size(len(dump))}"
        parts.append(escape(title) + _preview(dump[:PREVIEW_BYTES].decode("utf-8", "replace")))
    return "".join(parts)


# -- requests ---------------------------------------------------------------------------------


def _requests(state: SimState) -> str:
    newest = list(reversed(state.requests[-SHOWN_REQUESTS:]))
    rows = [
        [_time_text(r["time"]), r["method"], f'<span class="path">{escape(_target(r))}</span>',
         f'<span class="s{str(r["status"])[:1]}">{r["status"] or "dropped"}</span>']
        for r in newest
    ]  # fmt: skip
    header = ["Time", "Method", "Path", "Status"]
    note = '<p class="muted">Newest first; control calls are not logged.</p>'
    return note + _table(header, rows, len(state.requests), raw_columns=(2, 3))


def _target(logged: dict[str, Any]) -> str:
    return str(logged["path"]) + (f"?{logged['query']}" if logged["query"] else "")


# -- shared pieces ----------------------------------------------------------------------------


def _section(title: str, parts: Iterable[str]) -> str:
    return f'<section id="{title.lower()}"><h2>{title}</h2>{"".join(parts)}</section>'


def _table(
    header: list[str], rows: Iterable[list[Any]], total: int, raw_columns: tuple[int, ...] = ()
) -> str:
    """A table of escaped cells (but `raw_columns`, already HTML), saying what it leaves out."""
    if total == 0:
        return '<p class="muted">none</p>'
    rows = list(rows)
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{cell if i in raw_columns else escape(_cell(cell))}</td>"
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    left_out = total - len(rows)
    more = f'<p class="muted">… and {left_out} more</p>' if left_out else ""
    return f"<table><tr>{head}</tr>{body}</table>{more}"


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def _text(name: str, detail: str) -> str:
    return f"{escape(name)} <small>{escape(detail)}</small>"


def _preview(text: str) -> str:
    lines = text.splitlines()
    more = "\n…" if len(lines) > SHOWN_FILE_LINES else ""
    return f"<pre>{escape(chr(10).join(lines[:SHOWN_FILE_LINES]) + more)}</pre>"


def _model_name(state: SimState, model_id: str) -> str:
    model = state.model(model_id)
    return model.name if model else model_id


def _action_name(state: SimState, task: Task) -> str:
    model = state.scenario.models[task.model_id]
    action = model.imports.get(task.action_id) or model.processes.get(task.action_id)
    return action.name if action else task.action_id


def _import_name(state: SimState, model_id: str, object_id: str) -> str:
    model = state.scenario.models[model_id]
    imp = model.imports.get(object_id)
    return imp.name if imp else object_id


def _size(count: int) -> str:
    return f"{count:,} bytes"


def _clock_text(epoch_s: float) -> str:
    stamp = dt.datetime.fromtimestamp(epoch_s, tz=dt.timezone.utc)
    return stamp.strftime("%Y-%m-%d %H:%M:%S UTC")


def _time_text(epoch_s: float) -> str:
    return dt.datetime.fromtimestamp(epoch_s, tz=dt.timezone.utc).strftime("%H:%M:%S")
