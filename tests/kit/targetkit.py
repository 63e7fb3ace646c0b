"""Helpers for driving target-anaplan against the simulator, in-process or as a subprocess."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests

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


# Reading back what landed in the simulator (its control API)


def control(sim: Simulator, path: str) -> Any:
    response = requests.get(f"{sim.url}/__sim__/{path}", timeout=10)
    response.raise_for_status()
    return response.json()


def list_items(sim: Simulator, name: str, model: str = CORE_MODEL) -> dict[str, dict]:
    """A list's items keyed by code."""
    items = control(sim, f"models/{model}/lists/{name}")["items"]
    return {item["code"]: item for item in items}


def module_rows(sim: Simulator, name: str, model: str = CORE_MODEL) -> list[dict]:
    return control(sim, f"models/{model}/modules/{name}")["rows"]


def requests_log(sim: Simulator) -> list[dict]:
    return control(sim, "requests")


def task_starts(sim: Simulator, action_id: str) -> list[dict]:
    return [
        r
        for r in requests_log(sim)
        if r["method"] == "POST" and r["path"].endswith(f"/{action_id}/tasks")
    ]


def completes(sim: Simulator, file_id: str) -> list[dict]:
    """Finished uploads of one file (``POST .../files/{id}/complete``)."""
    return [
        r
        for r in requests_log(sim)
        if r["method"] == "POST" and r["path"].endswith(f"/files/{file_id}/complete")
    ]


def inject(sim: Simulator, fault: dict) -> None:
    requests.post(f"{sim.url}/__sim__/faults", json=fault, timeout=10).raise_for_status()
