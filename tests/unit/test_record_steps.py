"""The record paths copy the SDK's per-record steps: an SDK upgrade that changes them fails here.

``records.take_plain_record`` makes the steps of ``Target._process_record_message`` that do
something for a plain sink, one record at a time, and the typed path makes the same ones a
batch at a time. Both were written against the SDK version named in records.py; this test
reads the SDK's method and compares its calls, in order, with ``SDK_RECORD_STEPS``.
"""

from __future__ import annotations

import ast
import importlib.metadata
import inspect
import textwrap
from typing import Any

from singer_sdk.target_base import Target

from target_anaplan import records

CHECKED_AGAINST = "0.54.9"


def calls_in_order(function: Any) -> list[str]:
    """The names of the functions and methods ``function`` calls, in source order."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)]
    calls.sort(key=lambda node: (node.lineno, node.col_offset))
    names = []
    for call in calls:
        target = call.func
        if isinstance(target, ast.Attribute):
            names.append(target.attr)
        elif isinstance(target, ast.Name):
            names.append(target.id)
    return names


def test_the_sdk_makes_the_record_steps_the_fast_paths_copy():
    installed = importlib.metadata.version("singer-sdk")
    assert calls_in_order(Target._process_record_message) == [
        name for name, _ in records.SDK_RECORD_STEPS
    ], (
        f"singer-sdk {installed} changed Target._process_record_message (checked against "
        f"{CHECKED_AGAINST}): update records.SDK_RECORD_STEPS, take_plain_record and the "
        "typed path's bookkeeping to match"
    )
    assert CHECKED_AGAINST in inspect.getsource(records)


def test_the_plain_path_makes_the_kept_steps_in_the_sdks_order():
    kept = [name for name, keep in records.SDK_RECORD_STEPS if keep]
    made = calls_in_order(records.take_plain_record)
    assert [name for name in made if name in kept] == kept
    left_out = {name for name, keep in records.SDK_RECORD_STEPS if not keep}
    assert not left_out & set(made)


def test_the_typed_path_makes_the_kept_bookkeeping_steps_for_a_batch():
    made = calls_in_order(records.RecordPath._load) + calls_in_order(records.RecordPath._count)
    made += calls_in_order(records.RecordPath._load_batch)
    for step in ("_get_context", "tally_record_read", "increment", "drain_one", "info"):
        assert step in made, step
    assert "_handle_max_record_age" in made
