"""``apate train DATA_DIR [--out PATH] ...``: train Apate's fingerprint detector (safetensors + model card).

DATA_DIR: a corpus from ``apate corpus`` (train/ val/ [test/ heldout/]) or a folder with real/ and fake/.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time

from ._output import print_json

DEFAULT_OUT = "assets/models/apate-fingerprint.safetensors"


def _progress(fraction: float, message: str) -> None:
    print(f"[{fraction:5.1%}] {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    import torch

    from ..detect.training.train import TrainOptions, train_detector

    torch.set_num_threads(max(1, args.threads))
    options = TrainOptions(epochs=args.epochs, batch_size=args.batch_size, patch=args.patch, lr=args.lr,
                           width=args.width, seed=args.seed, max_minutes=args.max_minutes)
    recipe = {"command": "apate train " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if len(sys.argv) > 2
              else "apate train", "threads": args.threads}
    if args.corpus_command:
        recipe["corpus_command"] = args.corpus_command
    started = time.perf_counter()
    result = train_detector(args.data_dir, args.out, options, name=args.name, eval_real=args.eval_real,
                            recipe=recipe, progress=_progress if not args.json else lambda f, m: None)
    seconds = round(time.perf_counter() - started, 1)
    if args.readme:
        from pathlib import Path

        from ..detect.training.card import render_readme

        Path(args.readme).write_text(render_readme(result.card, result.weights.name, result.weights.stat().st_size),
                                     encoding="utf-8")
    metrics = result.card.get("metrics", {})
    if args.json:
        print_json({"weights": str(result.weights), "seconds": seconds, "metrics": metrics,
                    "temperature": result.card.get("temperature")})
        return 0
    print(f"saved {result.weights} (+ {result.weights.with_suffix('.json').name}) in {seconds:.0f} s")
    for split, m in metrics.items():
        if "roc_auc" in m:
            print(f"  {split}: ROC-AUC {m['roc_auc']:.4f}  AP {m['average_precision']:.4f}  acc {m['accuracy']:.4f}  "
                  f"EER {m['eer']:.4f}  ECE {m['ece']:.4f} -> {m.get('ece_temperature_scaled', float('nan')):.4f}")
        elif "false_positive_rate" in m:
            print(f"  {split}: false-positive rate {m['false_positive_rate']:.3f} on {m['n_real']} real files")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("train", help="train Apate's fingerprint detector on DATA_DIR (see apate corpus)")
    parser.add_argument("data_dir", metavar="DATA_DIR")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"weights path (default {DEFAULT_OUT})")
    parser.add_argument("--name", default="apate", help="model name in the card (default apate)")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--patch", type=int, default=64, help="training crop side (native resolution)")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--width", type=int, default=16, help="channels of the first stage")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-minutes", type=float, default=None, help="stop after the epoch that passes this")
    parser.add_argument("--eval-real", default=None, metavar="DIR",
                        help="folder of real photos/videos never trained on: false-positive rate goes in the card")
    parser.add_argument("--readme", default=None, metavar="PATH", help="also write the card as Markdown here")
    parser.add_argument("--corpus-command", default=None, help="the apate corpus command, recorded in the card")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run)
