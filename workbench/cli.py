"""The ``workbench`` command.

Each subcommand lives in ``workbench/commands/<name>.py`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (called with the parsed
arguments, returning the exit code). Subcommands are imported only when registered, so
``workbench --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from importlib import import_module

__all__ = ["main", "COMMANDS"]

#: subcommand modules, in the order ``--help`` lists them
COMMANDS = ("generate", "info", "ingest", "score", "run", "serve", "cluster", "bench")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench",
        description="Smart City Workbench: perceive, analyse and integrate a city's data.",
    )
    from workbench import __version__

    parser.add_argument("--version", action="version", version=f"workbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = import_module(f"workbench.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"workbench.commands.{name}":
                continue  # not built yet
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``workbench`` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
