"""``apate inspect FILE_OR_URL [--json]``: metadata and provenance of a file or URL."""

from __future__ import annotations

import argparse
import tempfile

from ..settings import load_settings
from ._output import print_json


def _human(report) -> None:
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


def run(args: argparse.Namespace) -> int:
    from ..inspection import inspect_source
    from ..store import open_store

    settings = load_settings()
    with tempfile.TemporaryDirectory(prefix="apate-") as workdir, open_store(settings) as store:
        report = inspect_source(args.source, settings, workdir=workdir, store=store)
        if args.json:
            print_json(report.to_dict())
        else:
            _human(report)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("inspect", help="print a file's or URL's metadata and provenance")
    parser.add_argument("source", metavar="FILE_OR_URL")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run)
