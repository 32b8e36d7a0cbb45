"""The ``apate`` command line. Refused input exits 2 with one ``error:`` line, never a traceback."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from typing import Callable, Optional, Sequence

from . import __version__
from .errors import ApateError, Cancelled
from .settings import load_settings

EXIT_REFUSED = 2
EXIT_INTERNAL = 1


def _print_json(data: object) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def _human_inspect(report) -> None:
    media = report.media
    print(f"{media.name}: {media.kind} ({media.format}), {media.size_bytes:,} bytes, sha256 {media.sha256[:16]}…")
    details = media.video or media.image
    if details is not None:
        for name, value in vars(details).items():
            if name != "tags" and value not in (None, "", {}):
                print(f"  {name}: {value}")
    if report.metadata:
        print("metadata:")
        for name, value in report.metadata.items():
            print(f"  {name}: {value}")
    print("provenance:")
    for line in report.summary:
        print(f"  {line}")


def cmd_inspect(args: argparse.Namespace) -> int:
    from .inspection import inspect_source

    settings = load_settings()
    with tempfile.TemporaryDirectory(prefix="apate-") as workdir:
        report = inspect_source(args.source, settings, workdir=workdir)
        if args.json:
            _print_json(report.to_dict())
        else:
            _human_inspect(report)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="apate", description="Detect AI-generated media; protect photos.")
    parser.add_argument("--version", action="version", version=f"apate {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", required=True)

    inspect = sub.add_parser("inspect", help="print a file's or URL's metadata and provenance")
    inspect.add_argument("source", metavar="FILE_OR_URL")
    inspect.add_argument("--json", action="store_true", help="print JSON")
    inspect.set_defaults(handler=cmd_inspect)
    return parser


def run(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    try:
        return handler(args)
    except Cancelled:
        print("error: cancelled", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except ApateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except Exception as exc:  # noqa: BLE001 - the CLI promises no traceback
        if args.debug:
            raise
        print(f"error: internal error ({type(exc).__name__}: {exc}); rerun with --debug for details", file=sys.stderr)
        return EXIT_INTERNAL


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return run(args.handler, args)


if __name__ == "__main__":
    sys.exit(main())
