"""``apate train-universal [--out PATH] [--sources detect-data ...]``: train Apate's default detector.

A linear probe on frozen CLIP ViT-B/16 embeddings (recipe: apate_core/detect/training/universal.py).
Reads the data sources through settings (APATE_DETECT_DATA); embeddings are cached under
``--cache`` (npz, no pickle) so a rerun only embeds what is new.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from ._output import print_json


def _progress(fraction: float, message: str) -> None:
    print(f"[{fraction:5.1%}] {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from ..detect.training.universal import UniversalOptions, train_universal
    from ..settings import load_settings

    settings = load_settings()
    options = UniversalOptions(sources=tuple(args.sources), views=args.views, C=args.C, seed=args.seed,
                               layers=args.layers, use_embedding=args.embedding)
    cache = Path(args.cache) if args.cache else settings.cache_path / "embeddings"
    cache.mkdir(parents=True, exist_ok=True)
    recipe = {"command": "apate train-universal " + " ".join(shlex.quote(a) for a in sys.argv[2:])}
    started = time.perf_counter()
    weights = train_universal(settings, Path(args.out), options, cache_dir=cache, recipe=recipe,
                              progress=(lambda f, m: None) if args.json else _progress)
    seconds = round(time.perf_counter() - started, 1)
    from ..detect.checkpoints import read_card

    card = read_card(weights) or {}
    if args.readme:
        from ..detect.training.universal import render_card

        Path(args.readme).write_text(render_card(card), encoding="utf-8")
    if args.json:
        print_json({"weights": str(weights), "seconds": seconds, "metrics": card.get("metrics"),
                    "temperature": card.get("temperature")})
        return 0
    print(f"saved {weights} in {seconds:.0f} s; temperature {card.get('temperature', 1.0):.3f}")
    for scheme, m in (card.get("metrics") or {}).items():
        print(f"  {scheme}: ROC-AUC {m['roc_auc']:.4f}  AP {m['ap']:.4f}  TPR@5%FPR {m['tpr_at_5pct_fpr']:.3f}  "
              f"flagged fake {m['flagged_fake']:.3f} real {m['flagged_real']:.3f}  ECE {m['ece']:.4f}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from ..detect.training.probe import DEFAULT_C
    from ..detect.training.universal import DEFAULT_LAYERS, SHIPPED_FILE

    default_out = f"assets/models/{SHIPPED_FILE}"
    parser = sub.add_parser("train-universal", help="train Apate's default detector (CLIP ViT-B/16 linear probe)")
    parser.add_argument("--out", default=default_out, help=f"weights path (default {default_out})")
    parser.add_argument("--sources", nargs="+", default=["detect-data"], help="data sources (default detect-data)")
    parser.add_argument("--views", type=int, default=2, help="views per image: as is + processed (default 2)")
    parser.add_argument("--layers", default=DEFAULT_LAYERS,
                        help=f"CLIP blocks (0-based) whose class tokens the probe reads (default {DEFAULT_LAYERS})")
    parser.add_argument("--embedding", action="store_true", help="also read CLIP's projected embedding")
    parser.add_argument("--C", type=float, default=DEFAULT_C, help=f"inverse L2 strength (default {DEFAULT_C})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default=None, metavar="DIR", help="embedding cache (default <cache dir>/embeddings)")
    parser.add_argument("--readme", default=None, metavar="PATH", help="also write the card as Markdown here")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run)
