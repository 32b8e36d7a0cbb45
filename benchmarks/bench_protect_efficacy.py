"""Protect efficacy with the shipped generators on the real photos of ../shared/testdata.

Usage::

    APATE_TESTDATA=../shared/testdata python benchmarks/bench_protect_efficacy.py [--eps 0.05] [--iters 10] \
        [--families F ...] [--plain-only] [--bound] [--update-cards]

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
import json
import os
import statistics
import sys
from datetime import date
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
    parser.add_argument("--update-cards", action="store_true",
                        help="write the figures into each shipped model card (the Protect page shows them)")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    folder = Path(os.environ.get("APATE_TESTDATA", "../shared/testdata"))
    settings = load_settings()
    images, skipped = photos(folder, settings)
    print(f"photos: {', '.join(i.name for i in images)}; skipped: {skipped or 'none'}")
    print(f"PGD-{args.iters}, eps {args.eps}, every target condition of each shipped generator\n")
    print(f"{'family':12} {'mode':8} {'pairs':>5} {'disrupted':>10} {'& SSIM>=.9':>11} {'SSIM min':>9} "
          f"{'SSIM mean':>10} {'after JPEG75':>13} {'MSE median':>11}")
    shipped = [c for c in available_generators(settings) if c.source == "shipped"]
    for choice in (c for c in shipped if args.families is None or c.family in args.families):
        efficacy = {"measured_on": date.today().isoformat(), "attack": f"PGD-{args.iters}, eps {args.eps:g}, one "
                    "perturbation for all targets", "photos": [i.name for i in images], "skipped": skipped}
        for robust in (False,) if args.plain_only else (False, True):
            params = ProtectParams(epsilon=args.eps, iterations=args.iters, targets=("all",), robust=robust)
            rows = list(pairs(run_protect_job(images, choice, params, settings), robust))
            share = lambda keep: sum(1 for r in rows if keep(r)) / len(rows)  # noqa: E731
            ssims = [r[2] for r in rows]
            figures = {"pairs": len(rows), "disrupted": share(lambda r: r[0]),
                       "disrupted_ssim_0.90": share(lambda r: r[0] and r[2] >= 0.90), "ssim_min": min(ssims),
                       "ssim_mean": sum(ssims) / len(ssims), "after_jpeg75": share(lambda r: r[1]),
                       "mse_median": statistics.median(r[3] for r in rows)}
            print(f"{choice.family:12} {'robust' if robust else 'plain':8} {figures['pairs']:5d} "
                  f"{figures['disrupted']:10.0%} {figures['disrupted_ssim_0.90']:11.0%} {figures['ssim_min']:9.3f} "
                  f"{figures['ssim_mean']:10.3f} {figures['after_jpeg75']:13.0%} {figures['mse_median']:11.4f}",
                  flush=True)
            if robust:
                efficacy["robust_after_jpeg75"] = figures["after_jpeg75"]
            else:
                efficacy.update(figures)
        if args.bound:
            mses = faithful_bound(images, choice, args.eps, args.iters)
            efficacy["faithful_bound"] = sum(m > DISRUPTION_THRESHOLD for m in mses) / len(mses)
            print(f"{choice.family:12} {'faithful':8} {len(mses):5d} {efficacy['faithful_bound']:10.0%} "
                  f"{'':11} {'':9} {'':10} {'':13} {statistics.median(mses):11.4f}", flush=True)
        if args.update_cards:
            card_path = Path(choice.path).with_suffix(".json")
            card = json.loads(card_path.read_text())
            card["efficacy"] = {k: round(v, 4) if isinstance(v, float) else v for k, v in efficacy.items()}
            card_path.write_text(json.dumps(card, indent=2) + "\n")


if __name__ == "__main__":
    main()
