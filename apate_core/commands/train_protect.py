"""``apate train-protect FAMILY --out DIR [--steps N] [--seed S]``: train an in-house Protect generator.

Writes ``DIR/FAMILY.safetensors`` and its model card ``DIR/FAMILY.json`` (recipes in
``apate_core/protect/training``; CPU is enough, a few minutes per family).
"""

from __future__ import annotations

import argparse
import sys

FAMILIES = ("cyclegan", "ganimation", "pix2pixhd", "stargan")


def _progress(fraction: float, message: str) -> None:
    print(f"[{fraction:6.1%}] {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from ..errors import ApateError
    from ..protect.training import train_family, write_model

    if args.steps is not None and args.steps < 1:
        raise ApateError("--steps must be at least 1")
    result = train_family(args.family, steps=args.steps, seed=args.seed, threads=args.threads, progress=_progress)
    command = f"apate train-protect {args.family} --out {args.out} --steps {result.steps} --seed {args.seed}"
    command += f" --threads {args.threads}" if args.threads != 2 else ""
    weights, card = write_model(result, args.out, command=command)
    held = result.heldout
    print(f"{args.family}: {result.steps} steps in {result.wall_s:.0f} s, "
          f"final loss {sum(result.losses[-50:]) / len(result.losses[-50:]):.4f}")
    if held:
        print(f"held-out L1 to target: model {held['mean_l1_model']:.4f} vs identity {held['mean_l1_identity']:.4f}")
    print(f"wrote {weights} ({weights.stat().st_size / 1e6:.2f} MB) and {card}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("train-protect", help="train a small in-house Protect generator on synthetic edits")
    parser.add_argument("family", choices=FAMILIES)
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for <family>.safetensors and .json")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the recipe's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.set_defaults(handler=run)
