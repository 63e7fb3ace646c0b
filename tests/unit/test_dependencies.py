"""What target_anaplan/ imports is what pyproject.toml declares, and nothing more.

A module that is imported but not declared works only while another package happens to
pull it in (SQLAlchemy came with singer-sdk): a fresh install, or that package's next
release, breaks the target at import. A declared distribution that nothing imports is dead
weight, and was once worse: the stale `backoff` silently overwrote singer-sdk's
`python-backoff`, and `pip check` did not notice.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

from target_anaplan.change_store import ChangeStore
from target_anaplan.changes import ChangeStoreError

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: pytest and mypy depend on tomli there
    import tomli as tomllib
if sys.version_info >= (3, 11):
    from importlib.metadata import packages_distributions
else:  # 3.10's reads only top_level.txt, which most wheels no longer ship; singer-sdk depends
    # on the importlib_metadata backport there, which infers modules from installed files.
    from importlib_metadata import packages_distributions

ROOT = Path(__file__).parents[2]
PACKAGE = ROOT / "target_anaplan"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]

# Extras for the test tiers and the e2e stack: tools, never imported by target_anaplan/.
TOOLING_EXTRAS = {"test", "e2e"}
# Extras that target_anaplan/ never imports itself: SQLAlchemy imports the driver named in
# a `change_store` URL. extra -> (that URL's dialect+driver, the module SQLAlchemy imports).
DRIVER_EXTRAS = {"postgres": ("postgresql+psycopg", "psycopg")}


def imported_modules() -> dict[str, set[str]]:
    """Each top-level third-party module target_anaplan/ imports -> the files importing it
    (imports inside functions and TYPE_CHECKING blocks included)."""
    found: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.partition(".")[0]
                if top not in sys.stdlib_module_names and top != "target_anaplan":
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def requirements(texts: list[str]) -> list[Requirement]:
    return [Requirement(text) for text in texts]


def installs(requirement: Requirement) -> set[NormalizedName]:
    """The distributions a requirement brings by name: itself, and what each extra it
    asks for adds (``singer-sdk[msgspec]`` declares msgspec), never plain transitive ones."""
    names = {canonicalize_name(requirement.name)}
    for extra in requirement.extras:
        for text in importlib.metadata.requires(requirement.name) or []:
            dependency = Requirement(text)
            marker = dependency.marker
            if marker is not None and "extra" in str(marker) and marker.evaluate({"extra": extra}):
                names.add(canonicalize_name(dependency.name))
    return names


def declared() -> dict[NormalizedName, str]:
    """Every distribution [project].dependencies brings by name -> the line declaring it."""
    return {
        name: str(requirement)
        for requirement in requirements(PROJECT["dependencies"])
        for name in installs(requirement)
    }


def providers(module: str) -> set[NormalizedName]:
    """The installed distributions that install the top-level ``module``."""
    found = packages_distributions().get(module, [])
    return {canonicalize_name(name) for name in found}


def test_every_imported_module_comes_only_from_a_declared_distribution():
    allowed = declared()
    problems = []
    for module, files in sorted(imported_modules().items()):
        found = providers(module)
        if not found:
            problems.append(f"{module} (imported by {sorted(files)}) is not installed")
        elif not found & allowed.keys():
            problems.append(
                f"{module} (imported by {sorted(files)}) comes from {sorted(found)}, which "
                "[project].dependencies does not declare"
            )
        elif found - allowed.keys():
            # Two distributions installing one module overwrite each other's files.
            problems.append(
                f"{module} is installed by {sorted(found)}; only {sorted(found & allowed.keys())}"
                " is declared, and the other overwrites it"
            )
    assert not problems, "\n".join(problems)


def test_every_declared_distribution_is_imported():
    imported = {name for module in imported_modules() for name in providers(module)}
    unused = {line for name, line in declared().items() if name not in imported}
    assert not unused, f"declared in [project].dependencies but never imported: {sorted(unused)}"


def test_every_extra_is_tooling_or_a_driver_sqlalchemy_loads():
    assert set(PROJECT["optional-dependencies"]) == TOOLING_EXTRAS | DRIVER_EXTRAS.keys()


@pytest.mark.parametrize("extra", sorted(DRIVER_EXTRAS))
def test_a_driver_extra_installs_the_module_sqlalchemy_imports_for_its_url(extra, monkeypatch):
    """The driver is imported by SQLAlchemy, not by us, so the import scan cannot see it:
    check instead that the extra declares exactly the module SQLAlchemy asks for."""
    scheme, module = DRIVER_EXTRAS[extra]
    names = {
        canonicalize_name(requirement.name)
        for requirement in requirements(PROJECT["optional-dependencies"][extra])
    }
    assert names == {canonicalize_name(module)}
    if importlib.util.find_spec(module) is not None:
        assert providers(module) == names
    # Without the driver, a change store at that URL fails on importing exactly that module,
    # with a hint naming the extra.
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ChangeStoreError) as caught:
        ChangeStore(f"{scheme}://user@127.0.0.1:1/db")
    message = str(caught.value)
    assert f"import of {module} halted" in message
    assert f"pip install target-anaplan[{extra}]" in message
