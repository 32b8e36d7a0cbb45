"""Does the CLIP probe gain from pooled patch tokens? Measured with whole source repositories held out.

The shipped probe reads each block's class token. This script also keeps, per block, the mean and the standard
deviation of the 196 patch tokens (texture statistics a class token may not carry), for detect-data in the
recipe's two views, and fits the recipe's probe (same standardisation, weights and C) on each choice::

    APATE_DETECT_DATA=../shared/detect-data python scripts/probe_pooling_experiment.py --cache /tmp/tokens.npz

Embedding takes about 8 minutes on two CPU cores (once; the cache is reused); each choice about a minute.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apate_core.detect import backbones, create_detector  # noqa: E402
from apate_core.detect.clip_vit import LAYER_OUTPUTS, OnnxClipEncoder, probe_features  # noqa: E402
from apate_core.detect.training.datasets import load_data_source  # noqa: E402
from apate_core.detect.training.embeddings import views_of  # noqa: E402
from apate_core.detect.training.probe import source_holdout_summary  # noqa: E402

POOLS = ("cls", "mean", "std")
CHOICES = {"class tokens (shipped)": ("cls",), "patch mean": ("mean",), "class + patch mean": ("cls", "mean"),
           "class + patch std": ("cls", "std")}
BLOCKS = range(2, 9)  # the shipped probe's blocks (0-based)
FAMILIES = ("face-swap", "StyleGAN3", "unknown-diffusion", "Gemini/Imagen")


def embed(cache: Path) -> dict[str, np.ndarray]:
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as data:
            return dict(data)
    detector = create_detector("clip_probe")
    encoder = OnnxClipEncoder(str(backbones.original_path("clip_vit_b16")))
    out: dict[str, list] = {k: [] for k in (*POOLS, "y", "family", "source", "path", "view")}
    for row in load_data_source("detect-data"):
        for view, (image, _steps) in enumerate(views_of(row, 2, 0)):
            pixels = detector.preprocess([image]).numpy()
            streams = np.concatenate(encoder.session.run(LAYER_OUTPUTS, {"pixel_values": pixels}))  # (12, 197, 768)
            for name, pooled in zip(POOLS, (streams[:, 0], streams[:, 1:].mean(1), streams[:, 1:].std(1))):
                out[name].append(pooled.astype(np.float16))
            for key, value in (("y", row.label), ("family", row.family), ("source", row.source),
                               ("path", str(row.path)), ("view", view)):
                out[key].append(value)
    arrays = {k: np.asarray(v) for k, v in out.items()}
    np.savez(cache, **arrays)
    return arrays


def report(data: dict[str, np.ndarray], pools: tuple[str, ...]) -> str:
    tokens = [torch.from_numpy(data[p][:, b].astype(np.float32)) for p in pools for b in BLOCKS]
    X = probe_features(None, tokens, use_embedding=False).numpy()  # standardised as the probe reads a token
    return source_holdout_summary(X, data, FAMILIES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, required=True, help="npz of pooled tokens (made on the first run)")
    args = parser.parse_args()
    data = embed(args.cache)
    for name, pools in CHOICES.items():
        started = time.perf_counter()
        print(f"{name}: {report(data, pools)} ({time.perf_counter() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
