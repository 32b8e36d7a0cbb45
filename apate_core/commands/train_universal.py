"""``apate train-universal [--out PATH] [--sources detect-data ...]``: train Apate's default detector.

A linear probe on frozen CLIP ViT-B/16 embeddings (recipe: apate_core/detect/training/universal.py).
Reads the data sources through settings (APATE_DETECT_DATA); embeddings are cached under
``--cache`` (npz, no pickle) so a rerun only embeds what is new.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ._output import print_json
from ._probe_training import add_probe_arguments, run_recipe


def run(args: argparse.Namespace) -> int:
    from ..detect.training.universal import UniversalOptions, train_universal

    options = UniversalOptions(sources=tuple(args.sources), views=args.views, C=args.C, seed=args.seed,
                               layers=args.layers, use_embedding=args.embedding, native_side=args.native_side)
    weights, seconds, card = run_recipe(args, "train-universal", train_universal, options)
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
    from ..detect.training.universal import DEFAULT_LAYERS, DEFAULT_NATIVE_SIDE, SHIPPED_FILE, UniversalOptions

    parser = sub.add_parser("train-universal", help="train Apate's default detector (CLIP ViT-B/16 linear probe)")
    add_probe_arguments(parser, f"assets/models/{SHIPPED_FILE}", "image", UniversalOptions().sources)
    parser.add_argument("--layers", default=DEFAULT_LAYERS,
                        help=f"CLIP blocks (0-based) whose class tokens the probe reads (default {DEFAULT_LAYERS})")
    parser.add_argument("--embedding", action="store_true", help="also read CLIP's projected embedding")
    parser.add_argument("--native-side", type=int, default=DEFAULT_NATIVE_SIDE,
                        help="the centre crop sees pixels at their own scale up to this shorter side, px "
                             f"(default {DEFAULT_NATIVE_SIDE}; 0 resizes the shorter side to 224)")
    parser.add_argument("--readme", default=None, metavar="PATH", help="also write the card as Markdown here")
    parser.set_defaults(handler=run)
