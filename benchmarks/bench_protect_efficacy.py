"""Protect efficacy with the shipped generators on the real photos of ../shared/testdata.

Usage::

    APATE_TESTDATA=../shared/testdata python benchmarks/bench_protect_efficacy.py [--eps 0.05] [--iters 10]

For every shipped family and every still photo under $APATE_TESTDATA (``real/`` and ``c2pa/``; a photo over
APATE_MAX_IMAGE_SIDE is skipped and listed), every target
condition of the generator: PGD-10 at ε 0.05 (the reference defaults), once plain and once in robust mode.
Prints the share of (image, target) pairs disrupted (MSE between G(x', c) and G(x, c) > 0.05 on [-1, 1]), the SSIM
between original and protected (min and mean), and, for the robust run, the share still disrupted after JPEG 75.
Targets (issue #4): ≥ 95 % disrupted with SSIM ≥ 0.90; in robust mode ≥ 80 % after JPEG 75.

``--bound`` adds a "faithful" row per family: the same attack on the exact function the shipped model was trained
to imitate (its recipe's edit of the auto-levelled, resized photo) in place of the model. That is what a perfect
model of the shipped task would score: an upper bound set by the task, not by how well the model learnt it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apate_core.errors import ApateError  # noqa: E402
from apate_core.protect.attacks import create_attack  # noqa: E402
from apate_core.protect.job import (ProtectParams, available_generators, default_model_size, load_choice,  # noqa: E402
                                    load_image, run_protect_job)
from apate_core.protect.convert import image_to_tensor  # noqa: E402
from apate_core.protect.metrics import DISRUPTION_THRESHOLD  # noqa: E402
from apate_core.protect.training.train import condition_list, get_recipe, target_for  # noqa: E402
from apate_core.settings import load_settings  # noqa: E402

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


def photos(folder: Path, settings):
    loaded, skipped = [], []
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() not in PHOTO_SUFFIXES:
            continue
        try:
            loaded.append(load_image(path, settings))
        except ApateError as exc:
            skipped.append(f"{path.name}: {exc}")
    return loaded, skipped


def pairs(result, robust: bool):
    """(disrupted, disrupted after JPEG 75, ssim, output MSE) per (image, target) pair."""
    for item in result.images:
        m = item.metrics
        jpeg75 = next(r for r in m["robustness"] if r["transform"] == "jpeg75")
        for plain, after in zip(m["outputs"], jpeg75["targets"]):
            yield plain["disrupted"], after["disrupted"], m["quality"]["ssim"], plain["mse"]


class TrainingTarget(torch.nn.Module):
    """Stands in for a shipped generator: ``generate`` is the exact target its recipe trained it on."""

    def __init__(self, generator) -> None:
        super().__init__()
        self.inner, self.recipe = generator, get_recipe(generator.family)

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.inner, name)

    def generate(self, x: torch.Tensor, c=None) -> torch.Tensor:
        return target_for(self.recipe, x, c)


def faithful_bound(images, choice, eps: float, iters: int) -> list[float]:
    """Output MSE per (image, target) pair when the attack hits the recipe's target function itself."""
    target = TrainingTarget(load_choice(choice))
    conditions = [c for _, c in condition_list(target.recipe)]
    attack = create_attack("pgd", epsilon=eps, iterations=iters, transferable=len(conditions) > 1)
    mses = []
    for image in images:
        x = image_to_tensor(image.rgb)
        size = default_model_size(target.inner, x.shape[-2], x.shape[-1])
        mses += attack.run(target, x, conditions, model_size=size).target_losses
    return mses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eps", type=float, default=0.05)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--families", nargs="+", default=None, help="only these shipped families (default: all)")
    parser.add_argument("--plain-only", action="store_true", help="skip the (slower) robust-mode runs")
    parser.add_argument("--bound", action="store_true", help="also attack each recipe's exact target function")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    folder = Path(os.environ.get("APATE_TESTDATA", "../shared/testdata"))
    settings = load_settings()
    images, skipped = photos(folder, settings)
    print(f"photos: {', '.join(i.name for i in images)}; skipped: {skipped or 'none'}")
    print(f"PGD-{args.iters}, eps {args.eps}, every target condition of each shipped generator\n")
    print(f"{'family':12} {'mode':8} {'pairs':>5} {'disrupted':>10} {'SSIM min':>9} {'SSIM mean':>10} {'after JPEG75':>13} {'MSE median':>11}")
    shipped = [c for c in available_generators(settings) if c.source == "shipped"]
    for choice in (c for c in shipped if args.families is None or c.family in args.families):
        for robust in (False,) if args.plain_only else (False, True):
            params = ProtectParams(epsilon=args.eps, iterations=args.iters, targets=("all",), robust=robust)
            result = run_protect_job(images, choice, params, settings)
            rows = list(pairs(result, robust))
            disrupted = sum(r[0] for r in rows) / len(rows)
            after = sum(r[1] for r in rows) / len(rows)
            ssims = [r[2] for r in rows]
            print(f"{choice.family:12} {'robust' if robust else 'plain':8} {len(rows):5d} {disrupted:10.0%} "
                  f"{min(ssims):9.3f} {sum(ssims) / len(ssims):10.3f} {after:13.0%} "
                  f"{statistics.median(r[3] for r in rows):11.4f}", flush=True)
        if args.bound:
            mses = faithful_bound(images, choice, args.eps, args.iters)
            share = sum(m > DISRUPTION_THRESHOLD for m in mses) / len(mses)
            print(f"{choice.family:12} {'faithful':8} {len(mses):5d} {share:10.0%} {'':9} {'':10} {'':13} "
                  f"{statistics.median(mses):11.4f}", flush=True)


if __name__ == "__main__":
    main()
