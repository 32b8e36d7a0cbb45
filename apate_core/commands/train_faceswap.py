"""``apate train-faceswap [--out PATH] [--sbi-per-face N] ...``: train the face-swap detector.

A linear probe on frozen CLIP ViT-B/16 embeddings of MTCNN face crops: real faces against
self-blended fakes (SBI) and the data sources' face swaps (recipe: detect/training/faceswap.py).
Reads the data sources through settings (APATE_DETECT_DATA); face crops and embeddings are cached
under ``--cache`` so a rerun only processes what is new.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from ._output import print_json
from .train_universal import _progress


def _line(name: str, m: dict) -> str:
    return (f"  {name}: ROC-AUC {m['roc_auc']:.4f}  AP {m['ap']:.4f}  TPR@5%FPR {m['tpr_at_5pct_fpr']:.3f}  "
            f"(n real {m['n_real']}, fake {m['n_fake']})")


def run(args: argparse.Namespace) -> int:
    from ..detect.checkpoints import read_card
    from ..detect.training.faceswap import FaceSwapOptions, train_faceswap
    from ..settings import load_settings

    settings = load_settings()
    options = FaceSwapOptions(sources=tuple(args.sources), sbi_per_face=args.sbi_per_face, views=args.views,
                              C=args.C, seed=args.seed)
    cache = Path(args.cache) if args.cache else settings.cache_path / "embeddings"
    recipe = {"command": "apate train-faceswap " + " ".join(shlex.quote(a) for a in sys.argv[2:])}
    started = time.perf_counter()
    weights = train_faceswap(settings, Path(args.out), options, cache_dir=cache, recipe=recipe,
                             progress=(lambda f, m: None) if args.json else _progress)
    seconds = round(time.perf_counter() - started, 1)
    card = read_card(weights) or {}
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

    default_out = f"assets/models/{SHIPPED_FILE}"
    parser = sub.add_parser("train-faceswap", help="train the face-swap detector (SBI + CLIP ViT-B/16 probe)")
    parser.add_argument("--out", default=default_out, help=f"weights path (default {default_out})")
    parser.add_argument("--sources", nargs="+", default=["detect-data"], help="data sources (default detect-data)")
    parser.add_argument("--sbi-per-face", type=int, default=2, help="self-blended fakes per real face (default 2)")
    parser.add_argument("--views", type=int, default=2, help="views per crop: as is + processed (default 2)")
    parser.add_argument("--C", type=float, default=0.5, help="inverse L2 strength of the probe (default 0.5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default=None, metavar="DIR", help="crops and embeddings (default <cache dir>/embeddings)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run)
