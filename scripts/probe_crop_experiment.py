"""Does the CLIP probe gain from seeing pixels at their own scale? Measured with whole source repositories held out.

The shipped probe sees each image resized (shorter side to 224, bicubic) and centre-cropped, which averages away
the pixel-level traces a generator leaves. UniversalFakeDetect and RINE instead crop 224x224 out of the image at
its own resolution. This script embeds detect-data in the recipe's two views (as is, and one processed view from
the one policy for both classes) under each crop policy, and fits the recipe's probe (blocks 3-9, the probe's own
standardisation, weights and C) on each policy and on pairs of them::

    APATE_DETECT_DATA=/work/shared/detect-data python scripts/probe_crop_experiment.py --cache /tmp/crops

Policies: ``resize`` (shipped); ``native`` (centre 224 crop at the file's own resolution; an image whose shorter
side is under 224 is first enlarged to 224); ``native512`` (area-shrink so the shorter side is at most 512, then
``native``: a bound on how much of a large photo the crop sees, so scale cannot mark a camera photo), likewise
``native384`` and ``native256``; ``grid512`` (the mean features of up to 3x3 crops spread over the image after
the same shrink, so the whole frame is seen); ``grid224`` (the shipped scale, shorter side to 224, with up to 3
crops along the longer side instead of the centre one: the whole frame without own-scale pixels); ``resize_flip``
(the shipped crop and its mirror image, mean features); ``area`` (the shipped single centre crop, shrunk with OpenCV's
area average) and ``bilinear`` (the product's own crop with ``interpolation="bilinear"``: antialiased bilinear
instead of bicubic). Each line ends with the same figures over JPEG files only (real
and generated alike), where the file format cannot separate the classes.

Embedding took about 2.5 minutes per single-crop policy and 17 for ``grid512`` on two cores (2026-12-03); the
figures are in the README (Models), with why own-scale crops are not the default.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apate_core.detect import create_detector  # noqa: E402
from apate_core.detect.clip_vit import probe_features  # noqa: E402
from apate_core.detect.training.datasets import load_data_source  # noqa: E402
from apate_core.detect.training.embeddings import views_of  # noqa: E402
from apate_core.detect.training.probe import source_holdout_summary  # noqa: E402

SIDE = 224
BLOCKS = tuple(range(2, 9))  # the shipped probe's blocks (0-based)
FAMILIES = ("face-swap", "StyleGAN3", "unknown-diffusion", "Gemini/Imagen", "BigGAN")


def shrink_to(image: np.ndarray, side: int) -> np.ndarray:
    """Scale so the shorter side is ``side`` (area when shrinking, bicubic when enlarging)."""
    h, w = image.shape[:2]
    scale = side / min(h, w)
    size = (max(side, round(w * scale)), max(side, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)


def centre(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    top, left = (h - SIDE) // 2, (w - SIDE) // 2
    return image[top:top + SIDE, left:left + SIDE]


def native(image: np.ndarray, most: int = 0) -> np.ndarray:
    short = min(image.shape[:2])
    if short < SIDE:
        image = shrink_to(image, SIDE)
    elif most and short > most:
        image = shrink_to(image, most)
    return centre(image)


def grid(image: np.ndarray, most: int) -> list[np.ndarray]:
    """224 crops spread evenly over the image (shorter side capped at ``most``), at most 3 per axis."""
    short = min(image.shape[:2])
    if short < SIDE or short > most:
        image = shrink_to(image, max(SIDE, min(short, most)))
    h, w = image.shape[:2]
    rows, cols = (np.linspace(0, n - SIDE, min(3, -(-n // SIDE))).round().astype(int) for n in (h, w))
    return [image[t:t + SIDE, l:l + SIDE] for t in rows for l in cols]


POLICIES = {"resize": None, "native": lambda im: [native(im)], "native512": lambda im: [native(im, 512)],
            "native384": lambda im: [native(im, 384)], "native256": lambda im: [native(im, 256)],
            "grid512": lambda im: grid(im, 512), "grid224": lambda im: grid(im, SIDE),
            "resize_flip": lambda im: [im, np.ascontiguousarray(im[:, ::-1])],
            "area": lambda im: [centre(shrink_to(im, SIDE))], "bilinear": None}
# Policies that are the product's own crop under another DetectorConfig.
CONFIG_OVERRIDES = {"bilinear": {"interpolation": "bilinear"}}


def embed(cache: Path, policy: str) -> dict[str, np.ndarray]:
    path = cache / f"{policy}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as data:
            return dict(data)
    detector = create_detector("clip_probe", layers=",".join(map(str, BLOCKS)), use_embedding=False,
                               **CONFIG_OVERRIDES.get(policy, {}))
    crop = POLICIES[policy]
    out: dict[str, list] = {k: [] for k in ("X", "y", "family", "source", "path", "view")}
    started = time.perf_counter()
    for n, row in enumerate(load_data_source("detect-data")):
        for view, (image, _steps) in enumerate(views_of(row, 2, 0)):
            with torch.no_grad():  # several crops: the mean of their features, i.e. of their logits
                pixels = detector.preprocess([image] if crop is None else crop(image))
                _, tokens = detector.module.fast_encoder(pixels, BLOCKS)
            out["X"].append(probe_features(None, tokens, use_embedding=False).numpy().mean(0))
            for key, value in (("y", row.label), ("family", row.family), ("source", row.source),
                               ("path", str(row.path)), ("view", view)):
                out[key].append(value)
        if n % 200 == 199:
            print(f"  {policy}: {n + 1} files, {time.perf_counter() - started:.0f} s", flush=True)
    arrays = {k: np.asarray(v) for k, v in out.items()}
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return arrays


def report(parts: list[dict[str, np.ndarray]]) -> str:
    first = parts[0]
    assert all((p["path"] == first["path"]).all() and (p["view"] == first["view"]).all() for p in parts)
    X = np.concatenate([p["X"] for p in parts], axis=1) / np.sqrt(len(parts))
    jpeg = np.array([p.lower().endswith((".jpg", ".jpeg")) for p in first["path"].tolist()])
    only_jpeg = {k: v[jpeg] for k, v in first.items() if k != "X"}
    return (source_holdout_summary(X, first, FAMILIES)
            + f"; JPEG files only, {source_holdout_summary(X[jpeg], only_jpeg, ())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, required=True, help="folder of per-policy npz files (made once)")
    parser.add_argument("--policies", nargs="+", default=list(POLICIES), choices=list(POLICIES))
    parser.add_argument("--pairs", type=int, default=99, help="at most this many resize + policy pairs")
    args = parser.parse_args()
    data = {p: embed(args.cache, p) for p in args.policies}
    choices = [[p] for p in args.policies] + [["resize", p] for p in args.policies if p != "resize"][:args.pairs]
    for choice in choices:
        if all(p in data for p in choice):
            started = time.perf_counter()
            print(f"{' + '.join(choice)}: {report([data[p] for p in choice])} ({time.perf_counter() - started:.0f} s)",
                  flush=True)


if __name__ == "__main__":
    main()
