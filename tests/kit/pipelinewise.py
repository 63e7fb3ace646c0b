"""pipelinewise-tap-postgres (the PipelineWise / singer-python family) piped into the target.

The tap needs Python < 3.10, so it lives in its own venv on Python 3.9, built once and kept
in `.venv-taps/` between runs. Unlike Meltano's taps it takes a properties file in which the
stream is `selected` and names its `replication-method`; we discover and edit one in code.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from demo import stack
from tests.kit.productkit import decode_messages
from tests.kit.targetkit import simulator_urls

TAP_REQUIREMENT = "pipelinewise-tap-postgres==2.1.0"
TAP_PYTHON = "3.9"
TAP_VENV = stack.REPO_ROOT / ".venv-taps" / "pipelinewise-tap-postgres"
TAP_TIMEOUT_S = 300


def find_python(version: str) -> Path | None:
    """A CPython of `version` (e.g. "3.9"): a pyenv install, else pythonX.Y on PATH."""
    pyenv = Path.home() / ".pyenv" / "versions"
    candidates = sorted(pyenv.glob(f"{version}.*/bin/python"), reverse=True)
    on_path = shutil.which(f"python{version}")
    for candidate in [*candidates, *([Path(on_path)] if on_path else [])]:
        probe = subprocess.run(
            [str(candidate), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.stdout.strip() == version:
            return candidate
    return None


def install_tap(python: Path, venv: Path = TAP_VENV) -> Path:
    """The tap's executable, installed from PyPI into `venv` unless it already holds it."""
    stamp = venv / ".installed"
    executable = venv / "bin" / "tap-postgres"
    if stamp.exists() and stamp.read_text() == TAP_REQUIREMENT and executable.exists():
        return executable
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([str(python), "-m", "venv", str(venv)], check=True, timeout=TAP_TIMEOUT_S)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
         "--disable-pip-version-check", TAP_REQUIREMENT],
        check=True,
        timeout=TAP_TIMEOUT_S,
    )  # fmt: skip
    stamp.write_text(TAP_REQUIREMENT)
    return executable


@dataclass
class PipelinewiseTap:
    """The tap pointed at one PostgreSQL database, with its files in `workdir`."""

    executable: Path
    pg: stack.EmbeddedPostgres
    workdir: Path

    def config_file(self) -> Path:
        path = self.workdir / "tap-config.json"
        config = {
            "host": "127.0.0.1",
            "port": self.pg.port,
            "user": "postgres",
            "password": stack.PG_PASSWORD,
            "dbname": "postgres",
            "filter_schemas": "public",
        }
        path.write_text(json.dumps(config))
        return path

    def command(self, *args: str) -> list[str]:
        return [str(self.executable), "--config", str(self.config_file()), *args]

    def discover(self) -> dict[str, Any]:
        """The catalog `--discover` writes: every table, nothing selected."""
        return json.loads(self._run(self.command("--discover"), "tap-postgres --discover"))

    def properties(self, method: str, replication_key: str | None = None) -> Path:
        """A properties file that selects public.products with this replication method."""
        catalog = self.discover()
        (stream,) = [s for s in catalog["streams"] if s["tap_stream_id"] == stack.STREAM]
        catalog["streams"] = [stream]
        (table,) = [entry for entry in stream["metadata"] if entry["breadcrumb"] == []]
        table["metadata"].update({"selected": True, "replication-method": method})
        if replication_key:
            table["metadata"]["replication-key"] = replication_key
        path = self.workdir / f"properties-{method.lower()}.json"
        path.write_text(json.dumps(catalog))
        return path

    def sync_args(self, properties: Path, state: dict[str, Any] | None) -> list[str]:
        args = ["--properties", str(properties)]
        if state is not None:
            state_file = self.workdir / "tap-state.json"
            state_file.write_text(json.dumps(state))
            args += ["--state", str(state_file)]
        return self.command(*args)

    def sync(self, properties: Path, state: dict[str, Any] | None = None) -> str:
        """Run the tap alone; returns what it wrote to stdout."""
        return self._run(self.sync_args(properties, state), "tap-postgres")

    @staticmethod
    def _run(command: list[str], what: str) -> str:
        """Run the tap; its stdout, or an error with the end of its stderr."""
        result = subprocess.run(
            command, capture_output=True, text=True, check=False, timeout=TAP_TIMEOUT_S
        )
        if result.returncode != 0:
            raise RuntimeError(f"{what} failed:\n{result.stderr[-5000:]}")
        return result.stdout


@dataclass
class PipeRun:
    """What `tap | target` produced: each program's exit code and output."""

    returncode: int
    stdout: str
    stderr: str
    tap_returncode: int
    tap_output: str
    tap_stderr: str

    def report(self) -> str:
        """Both exit codes and the ends of both logs, for assertion messages."""
        return (
            f"tap exited {self.tap_returncode}, target exited {self.returncode}\n"
            f"--- tap stderr ---\n{self.tap_stderr[-3000:]}\n"
            f"--- target stderr ---\n{self.stderr[-5000:]}"
        )

    @property
    def states(self) -> list[dict[str, Any]]:
        """The STATE values the target emitted, in order."""
        return decode_messages(self.stdout)

    @property
    def tap_messages(self) -> list[dict[str, Any]]:
        return decode_messages(self.tap_output)


def run_pipe(
    tap: PipelinewiseTap,
    properties: Path,
    target_config: dict[str, Any],
    state: dict[str, Any] | None = None,
) -> PipeRun:
    """`tap-postgres --properties P | tee | target-anaplan --config C`, as a shell would run it.

    `tee` keeps a copy of the tap's messages for the test to look at.
    """
    config = tap.workdir / "target-config.json"
    config.write_text(json.dumps(target_config))
    tap_copy = tap.workdir / "tap-output.jsonl"
    tap_log = tap.workdir / "tap-stderr.log"
    with tap_log.open("w") as tap_stderr:
        producer = subprocess.Popen(
            tap.sync_args(properties, state), stdout=subprocess.PIPE, stderr=tap_stderr
        )
        tee = subprocess.Popen(
            ["tee", str(tap_copy)], stdin=producer.stdout, stdout=subprocess.PIPE
        )
        assert producer.stdout is not None
        producer.stdout.close()  # the tee owns the read end now
        target = subprocess.run(
            [str(stack.BIN_DIR / "target-anaplan"), "--config", str(config)],
            stdin=tee.stdout,
            capture_output=True,
            text=True,
            cwd=tap.workdir,
            check=False,
            timeout=TAP_TIMEOUT_S,
        )
        assert tee.stdout is not None
        tee.stdout.close()
        tee.wait(timeout=TAP_TIMEOUT_S)
        tap_returncode = producer.wait(timeout=TAP_TIMEOUT_S)
    return PipeRun(
        target.returncode,
        target.stdout,
        target.stderr,
        tap_returncode,
        tap_copy.read_text(),
        tap_log.read_text(),
    )


def target_config(
    sim: stack.SimulatorProcess, failure_dump_dir: Path, **stream_settings: Any
) -> dict[str, Any]:
    """meltano.yml's demo config of the target (the Products stream, target defaults) on this
    simulator, with `stream_settings` (e.g. formats) added to the stream."""
    meltano_yml = yaml.safe_load((stack.REPO_ROOT / "meltano.yml").read_text())
    (demo,) = [env for env in meltano_yml["environments"] if env["name"] == "demo"]
    (loader,) = demo["config"]["plugins"]["loaders"]
    config = copy.deepcopy(loader["config"])
    config["streams"][stack.STREAM].update(stream_settings)
    config.update(
        simulator_urls(sim), password=stack.SIM_PASSWORD, failure_dump_dir=str(failure_dump_dir)
    )
    return config
