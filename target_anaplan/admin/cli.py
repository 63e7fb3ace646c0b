"""``target-anaplan-admin``: log in, look around the model, write and check a config, and
reset change tracking, from the same config the target reads.

Results go to stdout (an aligned table, or JSON with ``--json``); notes and errors to
stderr. An expected failure (a wrong setting, a name Anaplan does not know, a refusal) is
one line and exit code 1, never a traceback; secrets are never printed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from contextlib import closing
from dataclasses import asdict
from typing import Any

from target_anaplan.admin import check, login, reset
from target_anaplan.admin.config import ENV, ENV_PREFIX, read_config, settings_for, with_names
from target_anaplan.admin.init_streams import as_json, as_yaml, propose_streams
from target_anaplan.admin.listing import (
    COLUMNS,
    KINDS,
    describe_file,
    describe_import,
    list_objects,
    model_catalog,
)
from target_anaplan.admin.tap_catalog import TapStream, read_tap_catalog
from target_anaplan.admin.terminal import Terminal
from target_anaplan.errors import TargetAnaplanError, one_line
from target_anaplan.run import build_client
from target_anaplan.settings import Settings

PROG = "target-anaplan-admin"
DESCRIPTION = (
    "The companion of target-anaplan: log in, look around the model, write and check a "
    "config, and reset change tracking, from the same config the target reads."
)
# What each listing needs configured besides the credentials.
_LIST_NEEDS: dict[str, tuple[str, ...]] = {"workspaces": (), "models": ("workspace",)}


def main(argv: Sequence[str] | None = None, terminal: Terminal | None = None) -> int:
    """Console entry point; returns the exit code."""
    terminal = terminal or Terminal()
    args = _parser().parse_args(argv)
    if args.command == "login":
        return login.login(args, terminal)
    try:
        code: int = args.run(args, terminal)
    except TargetAnaplanError as error:
        terminal.say(f"error: {one_line(error)}")
        return 1
    except KeyboardInterrupt:
        terminal.say("Cancelled.")
        return 130
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = _common_options()
    login.add_arguments(commands.add_parser("login", help=login.HELP, description=login.HELP))

    def command(name: str, run: Any, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[common], help=help_text, description=help_text)
        sub.set_defaults(run=run)
        return sub

    listing = command("list", _list, "List the tenant's workspaces, or the model's objects.")
    listing.add_argument("kind", choices=KINDS)
    describe = command("describe", _describe, "Show an import's or a file's CSV layout.")
    describe.add_argument("kind", choices=("import", "file"))
    describe.add_argument("name", help="Name or id.")
    init = command("init", _init, "Print a `streams` block for the given imports.")
    init.add_argument("--imports", nargs="+", required=True, metavar="NAME", help="Names or ids.")
    init.add_argument("--catalog", metavar="FILE", help="The tap's catalog (from --discover).")
    preflight = command(
        "check", _check, "Check everything a run needs, changing nothing in Anaplan."
    )
    preflight.add_argument(
        "--catalog", metavar="FILE", help="The tap's catalog: also check each stream's header."
    )
    resetting = command("reset", _reset, "Forget streams' change tracking: resend every row.")
    resetting.add_argument("streams", nargs="*", metavar="STREAM")
    resetting.add_argument("--all", action="store_true", help="Every configured stream.")
    return parser


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        action="append",
        metavar="FILE",
        help=f"Target config JSON; several are merged left to right ({ENV}: the environment). "
        f"Default: the {ENV_PREFIX}* environment variables.",
    )
    common.add_argument("--json", action="store_true", help="Print JSON instead of a table.")
    common.add_argument("--workspace", help="Workspace name or id, over the config's.")
    common.add_argument("--model", help="Model name or id, over the config's.")
    return common


def _config(args: argparse.Namespace) -> dict[str, Any]:
    return with_names(read_config(args.config), args.workspace, args.model)


def _tap(args: argparse.Namespace) -> dict[str, TapStream] | None:
    return read_tap_catalog(args.catalog) if args.catalog else None


def _list(args: argparse.Namespace, terminal: Terminal) -> int:
    settings = settings_for(_config(args), _LIST_NEEDS.get(args.kind, ("workspace", "model")))
    with closing(build_client(settings)) as client:
        rows = list_objects(client, settings, args.kind)
    terminal.show(rows, COLUMNS[args.kind], as_json=args.json)
    return 0


def _describe(args: argparse.Namespace, terminal: Terminal) -> int:
    settings = settings_for(_config(args))
    describe = describe_import if args.kind == "import" else describe_file
    with closing(build_client(settings)) as client:
        fields = describe(model_catalog(client, settings), args.name)
    terminal.show_one(fields, as_json=args.json)
    return 0


def _init(args: argparse.Namespace, terminal: Terminal) -> int:
    settings = settings_for(_config(args))
    tap = _tap(args)
    with closing(build_client(settings)) as client:
        proposal = propose_streams(model_catalog(client, settings), args.imports, tap)
    for note in proposal.notes:
        terminal.say(f"note: {note}")
    if args.json:
        terminal.result(as_json(proposal.streams))
    else:
        terminal.result(as_yaml(proposal.streams, _init_heading(settings)))
    return 0


def _init_heading(settings: Settings) -> str:
    return (
        f"target-anaplan streams for model {settings.model!r} (workspace {settings.workspace!r}).\n"
        "Put them under the loader's `config:` in meltano.yml. TODO marks a header column\n"
        "that no field of the tap's catalog matched."
    )


def _check(args: argparse.Namespace, terminal: Terminal) -> int:
    report = check.preflight(_config(args), _tap(args))
    rows = [asdict(finding) for finding in report.findings]
    terminal.show(rows, check.COLUMNS, as_json=args.json)
    if report.problems:
        terminal.say(f"{report.problems} problem(s): a run would not start as configured.")
        return 1
    terminal.say("No problems: a run would start.")
    return 0


def _reset(args: argparse.Namespace, terminal: Terminal) -> int:
    settings = settings_for(_config(args))
    streams = reset.chosen_streams(settings, args.streams, args.all)
    terminal.show(reset.reset_streams(settings, streams), reset.COLUMNS, as_json=args.json)
    terminal.say("Their next run sends every row it receives (the tap's own state is unchanged).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
