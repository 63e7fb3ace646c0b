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

import pytest

from target_anaplan.simulator import Simulator
from tests.kit import modelkit

# The core scenario (tests/target/scenarios/core.json) and its loader user.
SCENARIOS, CORE, CORE_MODEL = modelkit.SCENARIOS, modelkit.CORE, modelkit.MODEL
USER = {"username": "loader@example.com", "password": "loader-password"}

# The core scenario's data sources as streams (`streams.<name>` settings), and the schemas of
# records that fill them.
PRODUCTS = {"file": "products.csv", "imports": ["Products from products.csv"]}
SALES = {"file": "sales.csv", "imports": ["Sales from sales.csv"]}
REGIONS = {"file": "regions.txt", "imports": ["Regions from regions.txt"]}
CUSTOMERS = {"file": "customers.csv", "imports": ["Customers from customers.csv"]}
PRODUCT = {
    "Code": {"type": "string"},
    "Name": {"type": "string"},
    "Category": {"type": ["string", "null"]},
    "Price": {"type": ["number", "null"]},
    "Launched": {"type": ["string", "null"], "format": "date"},
    "Active": {"type": ["boolean", "null"]},
}
REGION = {"Code": {"type": "string"}, "Name": {"type": "string"}}
CUSTOMER = {"id": {"type": "string"}, "city": {"type": ["string", "null"]}}


def simulator_urls(sim: Simulator) -> dict[str, str]:
    """The base URLs that point the target at a simulator (in this process or another)."""
    return {"api_base_url": f"{sim.url}/2/0", "auth_base_url": sim.url, "oauth_base_url": sim.url}


def sim_config(sim: Simulator, *, workspace: str, model: str, **settings: Any) -> dict:
    """A target config pointing at the simulator, with fast polling; `settings` add the
    credentials, the streams and the rest."""
    return {
        **simulator_urls(sim),
        "workspace": workspace,
        "model": model,
        "poll_interval_s": 0.01,
        **settings,
    }


def core_config(sim: Simulator, streams: dict, **settings: Any) -> dict:
    """A config on the core scenario's model as its loader user."""
    return sim_config(
        sim,
        workspace="Target Tests",
        model="Core Model",
        **(USER | {"streams": streams} | settings),
    )


def example_config(sim: Simulator, **settings: Any) -> dict:
    """A config on the example scenario's model; `settings` name the credentials."""
    return sim_config(sim, workspace="Demo Workspace", model="Demo Model", **settings)


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
    out = io.StringIO()
    _listen(config, text, out)
    return Run(out.getvalue(), "")


def failing_run_in_process(
    config: dict, text: str, error: type[BaseException], match: str | None = None
) -> Run:
    """Run the target in this process expecting it to raise ``error`` (its message matching
    ``match``). Unlike ``run_in_process``, what it wrote to stdout before failing is kept, so
    a test can check that no STATE got out for rows Anaplan did not take."""
    out = io.StringIO()
    with pytest.raises(error, match=match):
        _listen(config, text, out)
    return Run(out.getvalue(), "", returncode=1)


def _listen(config: dict, text: str, out: io.StringIO) -> None:
    from target_anaplan.target import TargetAnaplan  # noqa: PLC0415

    with contextlib.redirect_stdout(out):
        TargetAnaplan(config=config).listen(io.StringIO(text))


def run_subprocess(config: dict, text: str, tmp_path: Path) -> Run:
    """Run ``target-anaplan --config f.json`` as a real process."""
    done = subprocess.run(
        target_command(write_config(config, tmp_path / "config.json")),
        input=text,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Run(done.stdout, done.stderr, done.returncode)


def start_target(config_file: Path, **popen: Any) -> subprocess.Popen[str]:
    """``target-anaplan --config FILE`` started as a real process, to feed and watch while it
    runs; stdin, stdout and stderr are pipes unless `popen` says otherwise."""
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    return subprocess.Popen(target_command(config_file), text=True, **(pipes | popen))


def target_command(config_file: Path) -> list[str]:
    return [sys.executable, "-m", "target_anaplan", "--config", str(config_file)]


def write_config(config: dict, path: Path) -> Path:
    path.write_text(json.dumps(config))
    return path


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
