"""``apate corpus OUT_DIR [--holdout FAMILY] [--seed N] ...``: build the in-house training corpus.

Real = augmented crops and re-encodes of photos bundled by scikit-image, scikit-learn and matplotlib;
generated = the same crops re-synthesised by small decoders of several upsampling families, one family
held out for evaluation. Writes OUT_DIR/{train,val,test,heldout}/{real,fake}/*.png and manifest.json.
"""

from __future__ import annotations

import argparse
import sys
import time

from ._output import print_json


def _progress(fraction: float, message: str) -> None:
    print(f"[{fraction:5.1%}] {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    import torch

    from ..detect.training.corpus import CorpusOptions, build_corpus

    torch.set_num_threads(max(1, args.threads))
    options = CorpusOptions(holdout=args.holdout, seed=args.seed, crop=args.crop, crops_train=args.crops_train,
                            crops_eval=args.crops_eval, decoder_variants=args.decoder_variants,
                            decoder_steps=args.decoder_steps)
    started = time.perf_counter()
    summary = build_corpus(args.out_dir, options, progress=_progress if not args.json else lambda f, m: None)
    seconds = round(time.perf_counter() - started, 1)
    if args.json:
        print_json({"out_dir": str(summary.root), "counts": summary.counts, "seconds": seconds,
                    "holdout": args.holdout, "photos": summary.manifest["photos"]})
    else:
        for split, counts in summary.counts.items():
            print(f"{split}: {counts['real']} real, {counts['fake']} fake")
        print(f"corpus written to {summary.root} in {seconds:.0f} s (manifest.json lists photos and decoders)")
    return 0


FAMILIES = ("transposed", "nearest", "bilinear", "pixelshuffle")  # = decoders.FAMILIES (no torch import here)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("corpus", help="build the in-house real/generated training corpus from bundled photos")
    parser.add_argument("out_dir", metavar="OUT_DIR", help="new or empty directory")
    parser.add_argument("--holdout", choices=FAMILIES, default="pixelshuffle",
                        help="decoder family kept out of training, used only for the heldout split")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--crop", type=int, default=128, help="crop side in pixels (multiple of 4)")
    parser.add_argument("--crops-train", type=int, default=48, help="crops per training photo")
    parser.add_argument("--crops-eval", type=int, default=40, help="crops per val/test photo")
    parser.add_argument("--decoder-variants", type=int, default=2, help="decoders (seed/width) per family")
    parser.add_argument("--decoder-steps", type=int, default=240, help="training steps per decoder")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run)
