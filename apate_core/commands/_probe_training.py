"""The arguments of a probe recipe over data sources (``apate train-universal``), and running a recipe with
progress, timing and the saved card read back (also ``apate train-faceswap``)."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Callable


def progress_to_stderr(fraction: float, message: str) -> None:
    print(f"[{fraction:5.1%}] {message}", file=sys.stderr, flush=True)


def add_probe_arguments(parser: argparse.ArgumentParser, default_out: str, views_of: str,
                        sources: tuple[str, ...] = ("detect-data",)) -> None:
    from ..detect.training.probe import DEFAULT_C

    parser.add_argument("--out", default=default_out, help=f"weights path (default {default_out})")
    parser.add_argument("--sources", nargs="+", default=list(sources), help=f"data sources (default {' '.join(sources)})")
    parser.add_argument("--views", type=int, default=2, help=f"views per {views_of}: as is + processed (default 2)")
    parser.add_argument("--C", type=float, default=DEFAULT_C, help=f"inverse L2 strength (default {DEFAULT_C})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default=None, metavar="DIR", help="embedding cache (default <cache dir>/embeddings)")
    parser.add_argument("--json", action="store_true", help="print JSON")


def run_recipe(args: argparse.Namespace, command: str,
               train: Callable[..., Path], options: Any) -> tuple[Path, float, dict[str, Any]]:
    """Run ``train(settings, out, options, cache_dir=, recipe=, progress=)``; (weights, seconds, card)."""
    from ..detect.checkpoints import read_card
    from ..settings import load_settings

    settings = load_settings()
    cache = Path(args.cache) if args.cache else settings.cache_path / "embeddings"
    cache.mkdir(parents=True, exist_ok=True)
    recipe = {"command": f"apate {command} " + " ".join(shlex.quote(a) for a in sys.argv[2:])}
    started = time.perf_counter()
    weights = train(settings, Path(args.out), options, cache_dir=cache, recipe=recipe,
                    progress=(lambda f, m: None) if args.json else progress_to_stderr)
    return weights, round(time.perf_counter() - started, 1), read_card(weights) or {}
