"""Helpers for driving target-anaplan against the simulator, in-process or as a subprocess."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from target_anaplan.simulator import Simulator

SCENARIOS = Path(__file__).parents[1] / "target" / "scenarios"
CORE = SCENARIOS / "core.json"
CORE_MODEL = "75A40874E6B64FA3AE0EB2C4D5E6F7B1"
USER = {"username": "loader@example.com", "password": "loader-password"}


def sim_config(sim: Simulator, *, workspace: str, model: str, **settings: Any) -> dict:
    """A target config pointing at the simulator, with fast polling."""
    return {
        "api_base_url": f"{sim.url}/2/0",
        "auth_base_url": sim.url,
        "oauth_base_url": sim.url,
        **USER,
        "workspace": workspace,
        "model": model,
        "poll_interval_s": 0.01,
        **settings,
    }


def core_config(sim: Simulator, streams: dict, **settings: Any) -> dict:
    return sim_config(
        sim, workspace="Target Tests", model="Core Model", streams=streams, **settings
    )


# Running the target


class Run:
    """What one run of the target produced."""

    def __init__(self, stdout: str, stderr: str, returncode: int = 0) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.returncode = returncode

    @property
    def states(self) -> list[dict]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]


def run_in_process(config: dict, text: str) -> Run:
    """Run the target in this process the way ``listen`` does; exceptions propagate."""
    from target_anaplan.target import TargetAnaplan  # noqa: PLC0415

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            TargetAnaplan(config=config).listen(io.StringIO(text))
        finally:
            captured = out.getvalue()
    return Run(captured, "")


def run_subprocess(config: dict, text: str, tmp_path: Path, **kwargs: Any) -> Run:
    """Run ``target-anaplan --config f.json`` as a real process."""
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))
    done = subprocess.run(
        [sys.executable, "-m", "target_anaplan", "--config", str(config_file)],
        input=text,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        **kwargs,
    )
    return Run(done.stdout, done.stderr, done.returncode)


# Reading back what landed in the simulator (its control API, called in process)


def list_items(sim: Simulator, name: str, model: str = CORE_MODEL) -> dict[str, dict]:
    """A list's items keyed by code."""
    return {item["code"]: item for item in sim.list_items(model, name)}


def module_rows(sim: Simulator, name: str, model: str = CORE_MODEL) -> list[dict]:
    return sim.module_rows(model, name)


def task_starts(sim: Simulator, action_id: str) -> list[dict]:
    """The requests that started a task of the action (``POST .../{id}/tasks``)."""
    return _posts(sim, f"/{action_id}/tasks")


def completes(sim: Simulator, file_id: str) -> list[dict]:
    """Finished uploads of one file (``POST .../files/{id}/complete``)."""
    return _posts(sim, f"/files/{file_id}/complete")


def _posts(sim: Simulator, path_end: str) -> list[dict]:
    return [r for r in sim.requests() if r["method"] == "POST" and r["path"].endswith(path_end)]


def uploads(sim: Simulator, file_id: str) -> int:
    """How many uploads of the file were completed."""
    return _file(sim, file_id)["uploads"]


def last_upload(sim: Simulator, file_id: str) -> str:
    """The text of the file's latest upload."""
    return _content(_file(sim, file_id))


def last_upload_codes(sim: Simulator, file_id: str) -> list[str]:
    """The codes (first column) of the rows in the file's latest upload."""
    return upload_codes(_file(sim, file_id))


def upload_codes(file: dict[str, Any]) -> list[str]:
    """The codes (first column) of the rows in a control-API file record's latest upload."""
    return [row[0] for row in list(csv.reader(io.StringIO(_content(file))))[1:]]


def _file(sim: Simulator, file_id: str) -> dict[str, Any]:
    (file,) = [f for f in sim.files() if f["id"] == file_id]
    return file


def _content(file: dict[str, Any]) -> str:
    """What the one user who uploaded the file sent last."""
    (content,) = file["content"].values()
    return content
