"""Output helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import json
import sys


def print_json(data: object) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def band_arg(text: str) -> tuple[float, float]:
    """``--band LOW,HIGH``: the uncertain band of the verdict."""
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("expected LOW,HIGH, e.g. 0.4,0.6") from None
    return low, high
