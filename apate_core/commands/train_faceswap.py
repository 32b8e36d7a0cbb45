"""``apate train-faceswap [--out PATH] [--epochs N] ...``: train the face-swap detector.

An ImageNet MobileNetV2 fine-tuned on real faces against self-blends of themselves (SBI), with whole source
repositories held out for the figures it reports (recipe: detect/training/faceswap_cnn.py). Reads the data
sources through settings (APATE_DETECT_DATA); face crops are cached under ``--cache``.
"""

from __future__ import annotations

import argparse

from ._output import print_json
from ._probe_training import run_recipe


def _line(name: str, m: dict) -> str:
    return (f"  {name}: ROC-AUC {m['roc_auc']:.4f}  AP {m['ap']:.4f}  TPR@5%FPR {m['tpr_at_5pct_fpr']:.3f}  "
            f"flagged real {m['flagged_real']:.3f} fake {m['flagged_fake']:.3f}  "
            f"(n real {m['n_real']:.0f}, fake {m['n_fake']:.0f})")


def run(args: argparse.Namespace) -> int:
    from ..detect.training.faceswap_cnn import FaceCnnOptions, train_faceswap

    options = FaceCnnOptions(sources=tuple(args.sources), epochs=args.epochs, side=args.side, seed=args.seed,
                             max_minutes=args.max_minutes, threads=args.threads)
    weights, seconds, card = run_recipe(args, "train-faceswap", train_faceswap, options)
    if args.json:
        print_json({"weights": str(weights), "seconds": seconds, "metrics": card.get("metrics"),
                    "temperature": card.get("temperature"), "trained_on": card.get("trained_on")})
        return 0
    trained = card.get("trained_on") or {}
    print(f"saved {weights} in {seconds:.0f} s; temperature {card.get('temperature', 1.0):.3f}; "
          f"faces {trained.get('faces')} ({trained.get('no_face_found')} images without a usable face)")
    for name, m in (card.get("metrics") or {}).items():
        print(_line(name, m))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from ..detect.training.faceswap_cnn import SHIPPED_FILE, FaceCnnOptions

    default = FaceCnnOptions()
    parser = sub.add_parser("train-faceswap", help="train the face-swap detector (SBI, fine-tuned MobileNetV2)")
    out = f"assets/models/{SHIPPED_FILE}"
    parser.add_argument("--out", default=out, help=f"weights path (default {out})")
    parser.add_argument("--sources", nargs="+", default=list(default.sources), help="data sources (default detect-data)")
    parser.add_argument("--epochs", type=int, default=default.epochs, help=f"default {default.epochs}")
    parser.add_argument("--side", type=int, default=default.side, help=f"crop side in px (default {default.side})")
    parser.add_argument("--max-minutes", type=float, default=default.max_minutes,
                        help=f"stop training after this many minutes (default {default.max_minutes:g})")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default=None, metavar="DIR", help="face-crop cache (default <cache dir>/embeddings)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run)
