"""Collect one table row per fault case; print the table and write it to $FAULT_TABLE."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.kit.faultkit import Table

_TABLE = Table()


@pytest.fixture(scope="session")
def fault_table() -> Table:
    """The session's table; each fault test appends its row."""
    return _TABLE


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _TABLE.rows:
        return
    text = _TABLE.markdown()
    terminalreporter.section("fault injection")
    terminalreporter.write(text)
    target = os.environ.get("FAULT_TABLE")
    if target:
        Path(target).write_text(text, encoding="utf-8")
        terminalreporter.write_line(f"table written to {target}")
