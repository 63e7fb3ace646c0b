"""The package's two walls (design.md, README's Layout) hold.

- ``simulator/`` imports nothing from the rest of target_anaplan: it is a stand-in for
  Anaplan, and a test passing because the fake shares code with the target proves nothing.
- ``anaplan/`` knows nothing of Singer: no ``singer_sdk``, and of the target only
  ``errors.py`` (the one base class, which itself imports nothing), so the client can be
  driven with plain values (the admin CLI does) and tested on its own.

Each wall is checked in the source (every import statement, also inside functions and
TYPE_CHECKING blocks, named by file and line) and by importing the room in a fresh
interpreter (what it pulls in transitively).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PACKAGE = ROOT / "target_anaplan"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path) -> Iterator[tuple[int, str]]:
    """(line, dotted name) for every import in the file."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    yield from imports_in(path.read_text(encoding="utf-8"), package)


def imports_in(source: str, package: list[str]) -> Iterator[tuple[int, str]]:
    """(line, dotted name) for every import in code of ``package``, relative ones made
    absolute; ``from a import b`` gives ``a.b`` (b may be a module or a name in a)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            for alias in node.names:
                yield node.lineno, f"{module}.{alias.name}"


def within(name: str, *roots: str) -> bool:
    return any(name == root or name.startswith(root + ".") for root in roots)


def violations(room: str, allowed_own: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    """Imports in ``room`` of target_anaplan outside ``allowed_own``, or of ``forbidden``."""
    found = []
    for path in sorted((PACKAGE / room).rglob("*.py")):
        for line, name in imported_names(path):
            ours_elsewhere = within(name, "target_anaplan") and not within(name, *allowed_own)
            if ours_elsewhere or within(name, *forbidden):
                found.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    return found


def loaded_by(room: str) -> list[str]:
    """The target_anaplan and singer_sdk modules a fresh interpreter holds after importing
    every module of ``room``."""
    names = [module_name(path) for path in sorted((PACKAGE / room).rglob("*.py"))]
    script = (
        "import importlib, json, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules\n"
        "                        if m.split('.')[0] in ('target_anaplan', 'singer_sdk'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def test_the_scan_sees_imports_of_every_form():
    """Relative, absolute, nested and `from package import module` imports are all found."""
    source = (
        "import json, target_anaplan.run\n"
        "from . import routes\n"
        "from ..errors import ConfigError\n"
        "from target_anaplan import settings\n"
        "def later():\n"
        "    import singer_sdk.sinks\n"
    )
    names = [name for _, name in imports_in(source, ["target_anaplan", "simulator"])]
    assert names == [
        "json",
        "target_anaplan.run",
        "target_anaplan.simulator.routes",
        "target_anaplan.errors.ConfigError",
        "target_anaplan.settings",
        "singer_sdk.sinks",
    ]
    assert not within("target_anaplan.errors.ConfigError", "target_anaplan.simulator")
    upload = {name for _, name in imported_names(PACKAGE / "anaplan" / "upload.py")}
    assert "target_anaplan.anaplan.client.AnaplanClient" in upload


def test_the_simulator_imports_nothing_from_the_rest_of_target_anaplan():
    assert violations("simulator", ("target_anaplan.simulator",), ()) == []


def test_the_anaplan_client_imports_nothing_of_singer_nor_of_the_target():
    own = ("target_anaplan.anaplan", "target_anaplan.errors")
    assert violations("anaplan", own, ("singer_sdk",)) == []
    # errors.py, the one module of the target the client may use, imports nothing of either.
    errors = [
        name
        for _, name in imported_names(PACKAGE / "errors.py")
        if within(name, "target_anaplan", "singer_sdk")
    ]
    assert errors == []


@pytest.mark.parametrize(
    ("room", "allowed"),
    [
        ("simulator", ("target_anaplan.simulator",)),
        ("anaplan", ("target_anaplan.anaplan", "target_anaplan.errors")),
    ],
)
def test_importing_a_room_loads_nothing_beyond_its_wall(room, allowed):
    beyond = [
        name for name in loaded_by(room) if name != "target_anaplan" and not within(name, *allowed)
    ]
    assert beyond == []
