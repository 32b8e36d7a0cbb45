"""The ``apate`` command line. Refused input exits 2 with one ``error:`` line, never a traceback.

Subcommands live in ``apate_core/commands/``, one module each.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from . import __version__
from .commands import command_modules
from .errors import ApateError, Cancelled

EXIT_REFUSED = 2
EXIT_INTERNAL = 1
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="apate", description="Detect AI-generated media; protect photos.")
    parser.add_argument("--version", action="version", version=f"apate {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in command_modules():
        module.register(sub)
    return parser


def run(args: argparse.Namespace) -> int:
    try:
        return args.handler(args)
    except (Cancelled, KeyboardInterrupt):
        print("error: cancelled", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ApateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except Exception as exc:  # noqa: BLE001 - the CLI promises no traceback
        if args.debug:
            raise
        print(f"error: internal error ({type(exc).__name__}: {exc}); rerun with --debug for details", file=sys.stderr)
        return EXIT_INTERNAL


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
