"""Perceptual shaping, side by side: today's unshaped attack against the shaped default, on every still photo.

Usage::

    APATE_TESTDATA=../shared/testdata python benchmarks/bench_protect_shaping.py [--limit-side 4096] [--no-gif] \
        [--also-eps 2]

For every still image under $APATE_TESTDATA (``real/``, ``c2pa/`` and ``generated/``, any depth: JPEG, PNG, WebP,
plus the first frame of each GIF) the Protect job runs twice with the default parameters against the shipped
StarGAN stand-in (``available_generators(settings, "stargan")[0]``), every default target at once: once with
``shaping=False`` (the plain sign attack, independent colour noise over the whole ε ball) and once with the
default perceptual shaping. Per photo and per run it prints SSIM and PSNR between the original and the saved 8-bit
PNG, the largest pixel change in 8-bit steps, the share of targets disrupted (output MSE > 0.05 on [-1, 1]) and
the mean output MSE; then one summary row per run. The goal of issue #12: SSIM >= 0.95 on every photo, shaped.
``--also-eps N`` adds a third run: unshaped at ε N/255 (step ε/5), the plain attack made as invisible by a smaller
budget instead of by shaping.

Protect works at full resolution; photos over APATE_MAX_IMAGE_SIDE are admitted here up to ``--limit-side``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import statistics
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apate_core.protect.job import (ImageInput, ProtectParams, available_generators, load_image,  # noqa: E402
                                    run_protect_job)
from apate_core.protect.shaping import Shaping  # noqa: E402
from apate_core.settings import load_settings  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
STILLS = {".jpg", ".jpeg", ".png", ".webp"}


def still_photos(folder: Path, settings, with_gif: bool) -> list[ImageInput]:
    images = []
    for path in sorted(p for sub in ("real", "c2pa", "generated") for p in (folder / sub).rglob("*") if p.is_file()):
        rel = str(path.relative_to(folder))
        if path.suffix.lower() in STILLS:
            image = load_image(path, settings)
            images.append(dataclasses.replace(image, name=rel))
        elif path.suffix.lower() == ".gif" and with_gif:
            with Image.open(path) as im:
                rgb = np.asarray(im.convert("RGB")).copy()  # the first frame
            images.append(ImageInput(f"{rel} (frame 0)", hashlib.sha256(rgb.tobytes()).hexdigest(), rgb))
    return images


def figures(image) -> dict:
    m = image.metrics
    return {"ssim": m["quality"]["ssim"], "psnr": m["quality"]["psnr"], "linf": m["perturbation"]["linf_8bit"],
            "disrupted": m["disrupted_fraction"], "mse": statistics.fmean(o["mse"] for o in m["outputs"])}


def run(images: list[ImageInput], choice, params: ProtectParams, settings) -> tuple[list[dict], float]:
    started, rows = time.perf_counter(), []
    for k in range(0, len(images), settings.max_batch):
        result = run_protect_job(images[k:k + settings.max_batch], choice, params, settings)
        rows += [figures(image) for image in result.images]
    return rows, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit-side", type=int, default=4096, help="longest side admitted (default 4096 px)")
    parser.add_argument("--no-gif", action="store_true", help="leave out the first frames of GIFs")
    parser.add_argument("--also-eps", type=float, metavar="N", help="add an unshaped run at ε N/255 (step ε/5)")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    folder = Path(os.environ.get("APATE_TESTDATA", ROOT.parent / "shared" / "testdata"))
    settings = dataclasses.replace(load_settings(), max_image_side=max(args.limit_side, 1))
    images = still_photos(folder, settings, not args.no_gif)
    if not images:
        sys.exit(f"no still photos under {folder} (set APATE_TESTDATA)")
    choice = available_generators(settings, "stargan")[0]
    base = ProtectParams(with_robustness=False)
    print(f"# Perceptual shaping on {folder} ({len(images)} still photos), {date.today().isoformat()}\n")
    print(f"Generator: {choice.label}. Attack: {base.attack.upper()}-{base.iterations}, ε {base.epsilon:g} "
          f"({base.epsilon * 127.5:.2f}/255), step {base.step_size:g}, random start {base.random_start}, the "
          f"job's default targets at once. Shaping: {Shaping()}.\n")
    runs = {"unshaped": dataclasses.replace(base, shaping=False), "shaped": base}
    if args.also_eps:
        eps = args.also_eps / 127.5
        runs[f"unshaped ε {args.also_eps:g}/255"] = dataclasses.replace(base, shaping=False, epsilon=eps,
                                                                         step_size=eps / 5)
    results = {}
    for label, params in runs.items():
        results[label], seconds = run(images, choice, params, settings)
        print(f"{label}: {seconds:.0f} s", file=sys.stderr, flush=True)
    cols = ("SSIM", "PSNR dB", "L∞/255", "disrupted", "output MSE")
    print("| photo | size | " + " | ".join(f"{c} {label}" for c in cols for label in runs) + " |")
    print("|---|---|" + "---:|" * (len(cols) * len(runs)))
    for i, image in enumerate(images):
        h, w = image.rgb.shape[:2]
        cells = [_cells(results[label][i]) for label in runs]
        print(f"| {image.name} | {w}x{h} | " + " | ".join(c[j] for j in range(len(cols)) for c in cells) + " |")
    print("\n| run | SSIM min | SSIM mean | photos with SSIM ≥ 0.95 | PSNR mean dB | L∞ max /255 | disrupted "
          "(pairs) | output MSE mean |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, rows in results.items():
        ssims = [r["ssim"] for r in rows]
        print(f"| {label} | {min(ssims):.4f} | {statistics.fmean(ssims):.4f} | "
              f"{sum(s >= 0.95 for s in ssims)}/{len(rows)} | {statistics.fmean(r['psnr'] for r in rows):.2f} | "
              f"{max(r['linf'] for r in rows):.0f} | {statistics.fmean(r['disrupted'] for r in rows):.1%} | "
              f"{statistics.fmean(r['mse'] for r in rows):.5f} |")


def _cells(row: dict) -> list[str]:
    return [f"{row['ssim']:.4f}", f"{row['psnr']:.2f}", f"{row['linf']:.0f}", f"{row['disrupted']:.0%}",
            f"{row['mse']:.5f}"]


if __name__ == "__main__":
    main()
