"""Can own-scale crops be made robust to JPEG by training on JPEG views of both classes? (README, Models)

Own-scale crops (DetectorConfig.native_side) fail the camera-JPEG shortcut test: generated images re-encoded as
camera JPEGs read real. This embeds every detect-data file four ways at the product's own preprocessing
(``native_side`` N, default 384): as is, one processed view, and each of those through a JPEG at quality 70-98
(both classes alike). For four training sets (the recipe's two views, the processed view alone, the JPEG'd
views alone, all four) it prints, with sources held out, ROC-AUC / TPR at 5 % FPR on the
files as is, processed and JPEG'd; then, on ../shared/testdata/generated (11 generated, 2 real; the probe fitted
on all of detect-data, calibrated like the recipe), the ROC-AUC, how many generated files are flagged, and which
flagged ones the shortcut test's camera JPEG turns to 0.4 or below::

    APATE_DETECT_DATA=/work/shared/detect-data python scripts/probe_jpeg_views_experiment.py [N]

About 7 minutes of embedding on two cores (cached in /tmp/jpegallN.npz), then about 6 minutes of fits.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the shortcut test's own camera JPEG

from apate_core.detect import create_detector  # noqa: E402
from apate_core.detect.clip_vit import probe_features  # noqa: E402
from apate_core.detect.training.datasets import load_data_source  # noqa: E402
from apate_core.detect.training.embeddings import EmbeddingSet, view_seed, views_of  # noqa: E402
from apate_core.detect.training.evaluate import fit_temperature  # noqa: E402
from apate_core.detect.training.probe import DEFAULT_C, fit_probe, operating_shift, tpr_at_fpr  # noqa: E402
from apate_core.detect.training.processing import encode  # noqa: E402
from test_detect_shortcuts import _camera_jpeg  # noqa: E402

BLOCKS = tuple(range(2, 9))  # the shipped probe's blocks (0-based)
VIEWS = ("asis", "asis_j", "proc", "proc_j")
TRAINING_SETS = (("asis", "proc"), ("proc",), ("asis_j", "proc_j"), VIEWS)
CAMERA_JPEGS = ((92, 1.0), (80, 0.75), (70, 0.5))  # quality, scale: as the shortcut test


class Features:
    def __init__(self, native_side: int) -> None:
        self.detector = create_detector("clip_probe", layers=",".join(map(str, BLOCKS)), use_embedding=False,
                                        native_side=native_side)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            _, tokens = self.detector.module.fast_encoder(self.detector.preprocess([image]), BLOCKS)
        return probe_features(None, tokens, use_embedding=False).numpy()[0]


def jpeg(image: np.ndarray, seed: int) -> np.ndarray:
    return encode(image, "jpeg", int(np.random.default_rng(seed).integers(70, 99)))


def embed(features: Features, cache: Path) -> dict[str, np.ndarray]:
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as data:
            return dict(data)
    out: dict[str, list] = {k: [] for k in (*VIEWS, "y", "family", "source", "path")}
    started = time.perf_counter()
    for n, row in enumerate(load_data_source("detect-data")):
        (as_is, _), (processed, _) = views_of(row, 2, 0)
        out["asis"].append(features(as_is))
        out["asis_j"].append(features(jpeg(as_is, view_seed(row.path, 7, 0))))
        out["proc"].append(features(processed))
        out["proc_j"].append(features(jpeg(processed, view_seed(row.path, 8, 0))))
        for key, value in (("y", row.label), ("family", row.family), ("source", row.source), ("path", str(row.path))):
            out[key].append(value)
        if n % 300 == 299:
            print(f"  {n + 1} files, {time.perf_counter() - started:.0f} s", flush=True)
    data = {k: np.asarray(v) for k, v in out.items()}
    np.savez(cache, **data)
    return data


def stacked(data: dict[str, np.ndarray], views: tuple[str, ...]) -> EmbeddingSet:
    def rep(a: np.ndarray) -> np.ndarray:
        return np.concatenate([a] * len(views))

    X = np.concatenate([data[v] for v in views])
    return EmbeddingSet(X=X, y=rep(data["y"]), family=rep(data["family"]), source=rep(data["source"]),
                        path=rep(data["path"]), view=np.repeat(np.arange(len(views)), len(data["y"])),
                        steps=np.array(["-"] * len(X)))


def held_out(data: dict[str, np.ndarray], train: tuple[str, ...], test: str) -> tuple[np.ndarray, np.ndarray]:
    """Labels and source-held-out logits of the ``test`` view, each source's probe fitted on the ``train`` views."""
    E, T = stacked(data, train), stacked(data, (test,))
    z = np.full(len(T), np.nan)
    for source in np.unique(T.source):
        z[T.source == source] = fit_probe(E.subset(E.source != source), DEFAULT_C).logits(T.X[T.source == source])
    return T.y, z


def dev_set(features: Features, data, train, temperature: float, shift: float, folder: Path) -> str:
    from sklearn.metrics import roc_auc_score

    probe = fit_probe(stacked(data, train), DEFAULT_C)

    def p_fake(image: Image.Image) -> float:
        z = probe.logits(features(np.asarray(image.convert("RGB")))[None])[0] + shift
        return float(1.0 / (1.0 + np.exp(-z / temperature)))

    labels, scores, flips = [], [], []
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp")):
        with Image.open(path) as image:
            label, p = int("fake" in path.parts), p_fake(image)
            labels.append(label)
            scores.append(p)
            if label and p >= 0.6:
                after = min(p_fake(_camera_jpeg(image, q, s)) for q, s in CAMERA_JPEGS)
                if after <= 0.4:
                    flips.append(f"{path.name} {p:.2f} -> {after:.2f}")
    flagged = sum(s >= 0.6 for s, y in zip(scores, labels) if y)
    return (f"dev ROC-AUC {roc_auc_score(labels, scores):.3f}, flagged {flagged}/{sum(labels)}; "
            f"turned real by a camera JPEG: {flips or 'none'}")


def main() -> None:
    from sklearn.metrics import roc_auc_score

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("native_side", nargs="?", type=int, default=384)
    parser.add_argument("--dev", type=Path, default=ROOT.parent / "shared" / "testdata" / "generated")
    args = parser.parse_args()
    features = Features(args.native_side)
    data = embed(features, Path(f"/tmp/jpegall{args.native_side}.npz"))
    for train in TRAINING_SETS:
        parts = [f"trained on {' + '.join(train)}"]
        for test in ("asis", "proc", "asis_j"):
            y, z = held_out(data, train, test)
            parts.append(f"{test}: ROC-AUC {roc_auc_score(y, z):.3f} TPR@5% {tpr_at_fpr(y, z):.3f}")
            if test == "asis":  # calibrated as the recipe: temperature, then 5 % of real files at 0.6
                temperature = fit_temperature(y, z)
                shift = operating_shift(y, z, temperature, 0.6, 0.05)
        parts.append(dev_set(features, data, train, temperature, shift, args.dev))
        print(" | ".join(parts), flush=True)


if __name__ == "__main__":
    main()
