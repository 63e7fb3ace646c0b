"""The generated pages match the code: the configuration reference, the troubleshooting page
(every expected error message, explained) and meltano.yml's settings (test_settings.py)."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


@pytest.mark.parametrize(
    ("script", "page"),
    [("docs-config", "configuration.md"), ("docs-troubleshooting", "troubleshooting.md")],
)
def test_a_generated_page_is_up_to_date(script, page):
    render = runpy.run_path(str(ROOT / "scripts" / script))["render"]
    assert (ROOT / "docs" / page).read_text(encoding="utf-8") == render(), (
        f"run .venv/bin/python scripts/{script}"
    )


def test_every_expected_error_message_is_on_the_troubleshooting_page():
    error_messages = runpy.run_path(str(ROOT / "scripts" / "error_messages.py"))
    page = " ".join((ROOT / "docs" / "troubleshooting.md").read_text(encoding="utf-8").split())
    found = list(error_messages["messages"]())
    assert len(found) > 80  # the scan still finds the package's messages
    for message in found:
        for fragment in message.fragments:
            assert " ".join(fragment.split()) in page, (message.where, fragment)
