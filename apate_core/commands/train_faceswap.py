"""``apate train-faceswap [--out PATH] [--sbi-per-face N] ...``: train the face-swap detector.

A linear probe on frozen CLIP ViT-B/16 embeddings of MTCNN face crops: real faces against
self-blended fakes (SBI) and the data sources' face swaps (recipe: detect/training/faceswap.py).
Reads the data sources through settings (APATE_DETECT_DATA); face crops and embeddings are cached
under ``--cache`` so a rerun only processes what is new.
"""

from __future__ import annotations

import argparse

from ._output import print_json
from ._probe_training import add_probe_arguments, run_recipe


def _line(name: str, m: dict) -> str:
    return (f"  {name}: ROC-AUC {m['roc_auc']:.4f}  AP {m['ap']:.4f}  TPR@5%FPR {m['tpr_at_5pct_fpr']:.3f}  "
            f"(n real {m['n_real']}, fake {m['n_fake']})")


def run(args: argparse.Namespace) -> int:
    from ..detect.training.faceswap import FaceSwapOptions, train_faceswap

    options = FaceSwapOptions(sources=tuple(args.sources), sbi_per_face=args.sbi_per_face, views=args.views,
                              C=args.C, seed=args.seed)
    weights, seconds, card = run_recipe(args, "train-faceswap", train_faceswap, options)
    if args.json:
        print_json({"weights": str(weights), "seconds": seconds, "metrics": card.get("metrics"),
                    "temperature": card.get("temperature"), "trained_on": card.get("trained_on")})
        return 0
    trained = card.get("trained_on") or {}
    print(f"saved {weights} in {seconds:.0f} s; temperature {card.get('temperature', 1.0):.3f}; "
          f"{trained.get('real')} real faces, {trained.get('self_blends')} self-blends, "
          f"{trained.get('face_swaps')} face swaps ({trained.get('no_face_found')} images without a face)")
    for name, m in (card.get("metrics") or {}).items():
        print(_line(name, m))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from ..detect.training.faceswap import SHIPPED_FILE

    parser = sub.add_parser("train-faceswap", help="train the face-swap detector (SBI + CLIP ViT-B/16 probe)")
    add_probe_arguments(parser, f"assets/models/{SHIPPED_FILE}", "crop")
    parser.add_argument("--sbi-per-face", type=int, default=2, help="self-blended fakes per real face (default 2)")
    parser.set_defaults(handler=run)
