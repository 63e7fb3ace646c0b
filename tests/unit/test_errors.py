"""One error taxonomy: every exception a user can hit derives from TargetAnaplanError.

That base is what the target reports as one line with exit 1; any other exception reaching
the top prints a traceback, as a bug should. A new error class that forgets the base turns
a fixable setting or refusal into a traceback, so every module is imported and searched.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest

from target_anaplan.errors import TargetAnaplanError
from target_anaplan.target import EXPECTED_ERRORS

PACKAGE = Path(__file__).parents[2] / "target_anaplan"

# Exceptions that never leave the module raising them; each is caught there and becomes
# something else. module.class -> what happens to it.
INTERNAL_SIGNALS = {
    "target_anaplan.csv_writer._Unwritable": (
        "caught by the CSV writer, re-raised as UnwritableValueError naming the column"
    ),
    "target_anaplan.validation._NotExactError": (
        "caught in _plan: a schema number no float can hold sends the schema to jsonschema"
    ),
    "target_anaplan.decoding._Unsupported": (
        "caught in typed_record: a schema the typed path does not decide goes the record path"
    ),
}


def modules() -> list[str]:
    """Every module of target_anaplan, except the simulator (a separate program with its own
    errors, importing nothing of the target) and __main__ (importing it runs the target)."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if "simulator" in parts or parts[-1] == "__main__":
            continue
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def exception_classes() -> dict[str, type[BaseException]]:
    """module.class -> class, for every exception class defined in those modules."""
    found = {}
    for name in modules():
        module = importlib.import_module(name)
        for cls in vars(module).values():
            if (
                inspect.isclass(cls)
                and issubclass(cls, BaseException)
                and cls.__module__ == module.__name__
            ):
                found[f"{module.__name__}.{cls.__qualname__}"] = cls
    return found


def test_the_search_covers_the_package():
    found = exception_classes()
    assert "target_anaplan.anaplan.oauth.OAuthError" in found
    assert "target_anaplan.changes.ChangeStoreError" in found
    assert len(modules()) > 30


def test_every_exception_a_user_can_hit_derives_from_the_one_base():
    strays = sorted(
        name
        for name, cls in exception_classes().items()
        if not issubclass(cls, TargetAnaplanError) and name not in INTERNAL_SIGNALS
    )
    assert not strays, (
        f"{strays} do not derive from TargetAnaplanError: a user hitting one gets a traceback. "
        "Derive from it (target_anaplan/errors.py), or list it in INTERNAL_SIGNALS with a reason."
    )


@pytest.mark.parametrize("name", sorted(INTERNAL_SIGNALS))
def test_an_internal_signal_is_private_and_outside_the_taxonomy(name):
    """A listed signal still exists, is module-private, and is not a user's error."""
    cls = exception_classes().get(name)
    assert cls is not None, f"{name} is gone: remove it from INTERNAL_SIGNALS"
    assert cls.__name__.startswith("_")
    assert not issubclass(cls, TargetAnaplanError)


def test_the_base_is_what_the_target_reports_as_one_line():
    assert TargetAnaplanError in EXPECTED_ERRORS
