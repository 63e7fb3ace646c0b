"""``target-anaplan-auth login``: the first name of ``target-anaplan-admin login``, kept so
that scripts and docs written for it go on working (same options, same output)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from target_anaplan.admin import login
from target_anaplan.admin.terminal import Terminal

__all__ = ["Terminal", "main"]


def main(argv: Sequence[str] | None = None, terminal: Terminal | None = None) -> int:
    """Console entry point; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="target-anaplan-auth",
        description="Obtain OAuth refresh tokens for target-anaplan "
        "(also: target-anaplan-admin login).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    login.add_arguments(commands.add_parser("login", help=login.HELP))
    return login.login(parser.parse_args(argv), terminal or Terminal())


if __name__ == "__main__":
    sys.exit(main())
