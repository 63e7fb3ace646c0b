"""The optional dependencies some tiers need (pyproject.toml's extras), and why they skip."""

from __future__ import annotations

import importlib.util
import os


def missing_extra(extra: str, *modules: str) -> str:
    """Why tests that import `modules` cannot run here, or "" when they can.

    Outside CI a module that is not installed is a reason to skip, naming it and the extra
    that installs it. In CI (CI set) nothing is skipped: the extras are installed there, and
    a missing one fails the run where it is imported.
    """
    if os.environ.get("CI"):
        return ""
    absent = [module for module in modules if importlib.util.find_spec(module) is None]
    if not absent:
        return ""
    return (
        f"needs the {extra} extra ({', '.join(absent)} not installed): pip install -e '.[{extra}]'"
    )
