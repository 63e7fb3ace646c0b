"""The `anaplan-simulator` console script."""

from __future__ import annotations

import re

import requests

from target_anaplan.simulator import cli


def test_console_script_prints_its_port_and_answers(simulator_process) -> None:
    url = simulator_process.url
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url), url
    assert requests.get(f"{url}/2/0/workspaces", timeout=5).status_code == 401
    assert simulator_process.tasks() == []


def test_console_script_prints_the_page_url(simulator_process) -> None:
    assert simulator_process.page_url == f"{simulator_process.url}/__sim__/"
    page = requests.get(simulator_process.page_url, timeout=5)
    assert page.headers["Content-Type"].startswith("text/html")
    assert "Demo Model" in page.text


def test_invalid_scenario_is_one_clear_message(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"workspaces": [{"name": "no id"}]}')
    assert cli.main(["--scenario", str(bad), "--port", "0"]) == 1
    err = capsys.readouterr().err
    assert "invalid scenario" in err
    assert "missing required key 'id'" in err
    assert "Traceback" not in err


def test_missing_scenario_file(tmp_path, capsys) -> None:
    assert cli.main(["--scenario", str(tmp_path / "nope.json")]) == 1
    assert "cannot read scenario file" in capsys.readouterr().err


def test_wrongly_typed_value_is_a_message_not_a_traceback(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"workspaces": [{"id": "w", "name": "W", "models": [{"id": "M", "name": "M",'
                   ' "files": [{"id": "1", "name": "f", "headerRow": "first"}]}]}]}')  # fmt: skip
    assert cli.main(["--scenario", str(bad)]) == 1
    assert "malformed scenario" in capsys.readouterr().err
