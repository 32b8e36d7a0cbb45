"""Evaluation of a detector on DATA_DIR/{real,fake}: ROC-AUC, AP, accuracy, EER, ECE, ROC curve PNG.

Scores are logits (P(fake) = sigmoid(logit)); a video's score is the mean logit of its frames sampled
at `fps`. ECE: 15 equal-width bins of the top-label confidence max(p, 1-p), weighted gap between mean
confidence and accuracy (Guo et al. 2017). Temperature scaling divides logits by T > 0 fitted by
minimising the negative log-likelihood on a calibration split (at training time: the val split; the
card stores it as "temperature").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ...errors import InputRefused
from ...progress import CancelToken, ProgressCallback, check_cancelled, no_progress

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi", ".gif")
ECE_BINS = 15


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------


def sigmoid(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    return np.where(logits >= 0, 1.0 / (1.0 + np.exp(-np.abs(logits))), np.exp(-np.abs(logits)) / (1.0 + np.exp(-np.abs(logits))))


def expected_calibration_error(labels: Sequence[int], probs: Sequence[float], bins: int = ECE_BINS) -> float:
    """Top-label ECE with `bins` equal-width confidence bins over [0.5, 1] ... i.e. [0, 1] split evenly."""
    labels = np.asarray(labels, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    if len(labels) == 0:
        return float("nan")
    predicted = (probs >= 0.5).astype(np.int64)
    confidence = np.where(predicted == 1, probs, 1.0 - probs)
    correct = (predicted == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            ece += mask.mean() * abs(confidence[mask].mean() - correct[mask].mean())
    return float(ece)


def equal_error_rate(labels: Sequence[int], scores: Sequence[float]) -> tuple[float, float]:
    """(EER, threshold): where the false-positive rate equals the false-negative rate (interpolated)."""
    from sklearn.metrics import roc_curve

    fpr, tpr, thresholds = roc_curve(labels, scores)
    fnr = 1.0 - tpr
    diff = fpr - fnr
    i = int(np.argmax(diff >= 0))  # first point where fpr >= fnr (diff goes from -1 to +1)
    if i == 0:
        return float(fpr[0]), float(thresholds[0])
    d0, d1 = diff[i - 1], diff[i]
    t = d0 / (d0 - d1) if d1 != d0 else 0.0
    eer = fpr[i - 1] + t * (fpr[i] - fpr[i - 1])
    thr = thresholds[i - 1] + t * (thresholds[i] - thresholds[i - 1]) if np.isfinite(thresholds[i - 1]) else thresholds[i]
    return float(eer), float(thr)


def nll(labels: np.ndarray, logits: np.ndarray) -> float:
    """Mean binary cross-entropy of sigmoid(logits) (numerically stable)."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    return float(np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))))


def fit_temperature(labels: Sequence[int], logits: Sequence[float], smoothing: float = 0.01) -> float:
    """T minimising the NLL of sigmoid(logits / T), searched over log T in [-4, 4].

    Targets are smoothed by `smoothing` (1 -> 0.99, 0 -> 0.01): on a perfectly separated calibration
    split the plain NLL keeps falling as T -> 0 (infinitely confident); smoothing stops that at a
    confidence of about 99% instead.
    """
    from scipy.optimize import minimize_scalar

    y = np.asarray(labels, dtype=np.float64)
    z = np.asarray(logits, dtype=np.float64)
    if len(np.unique(y)) < 2:
        raise InputRefused("Temperature scaling needs both real and fake examples")
    target = y * (1.0 - 2.0 * smoothing) + smoothing
    result = minimize_scalar(lambda log_t: nll(target, z / math.exp(log_t)), bounds=(-4.0, 4.0), method="bounded",
                             options={"xatol": 1e-4})
    return float(math.exp(result.x))


def binary_metrics(labels: Sequence[int], logits: Sequence[float], threshold: float = 0.5,
                   temperature: Optional[float] = None) -> dict[str, Any]:
    """Metrics of P(fake) = sigmoid(logits) against labels (1 = fake)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    y = np.asarray(labels, dtype=np.int64)
    z = np.asarray(logits, dtype=np.float64)
    probs = sigmoid(z)
    if len(np.unique(y)) < 2:
        raise InputRefused("Metrics need both real and fake examples")
    predicted = probs >= threshold
    eer, eer_threshold = equal_error_rate(y, z)
    out = {
        "n_real": int((y == 0).sum()), "n_fake": int((y == 1).sum()),
        "roc_auc": float(roc_auc_score(y, z)),
        "average_precision": float(average_precision_score(y, z)),
        "threshold": float(threshold),
        "accuracy": float((predicted == (y == 1)).mean()),
        "tpr": float(predicted[y == 1].mean()), "fpr": float(predicted[y == 0].mean()),
        "eer": eer, "eer_threshold_probability": float(sigmoid(np.array([eer_threshold]))[0]),
        "ece": expected_calibration_error(y, probs),
        "nll": nll(y, z),
    }
    if temperature is not None:
        scaled = z / float(temperature)
        out.update(temperature=float(temperature), ece_temperature_scaled=expected_calibration_error(y, sigmoid(scaled)),
                   nll_temperature_scaled=nll(y, scaled),
                   accuracy_temperature_scaled=float(((sigmoid(scaled) >= threshold) == (y == 1)).mean()))
    return out


def cross_fitted_temperature_ece(labels: Sequence[int], logits: Sequence[float], seed: int = 0) -> tuple[float, float]:
    """(median T, ECE) with T fitted on one half and applied to the other (2 folds), when no card T exists."""
    y = np.asarray(labels, dtype=np.int64)
    z = np.asarray(logits, dtype=np.float64)
    order = np.random.default_rng(seed).permutation(len(y))
    halves = [order[::2], order[1::2]]
    scaled = np.empty_like(z)
    temps = []
    for fit, apply in ((halves[0], halves[1]), (halves[1], halves[0])):
        t = fit_temperature(y[fit], z[fit]) if len(np.unique(y[fit])) == 2 else 1.0
        temps.append(t)
        scaled[apply] = z[apply] / t
    return float(np.median(temps)), expected_calibration_error(y, sigmoid(scaled))


def save_roc_png(labels: Sequence[int], logits: Sequence[float], path: str | Path, title: str = "ROC") -> Path:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure
    from sklearn.metrics import roc_auc_score, roc_curve

    fpr, tpr, _ = roc_curve(labels, logits)
    fig = Figure(figsize=(4.2, 4.2), dpi=110)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(fpr, tpr, lw=2, label=f"AUC = {roc_auc_score(labels, logits):.4f}")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
    ax.set(xlabel="false-positive rate (real called fake)", ylabel="true-positive rate", title=title,
           xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def save_roc_curves_png(curves: dict[str, tuple[Sequence[int], Sequence[float]]], path: str | Path,
                        title: str = "ROC") -> Path:
    """Several named (labels, logits) ROC curves on one plot."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure
    from sklearn.metrics import roc_auc_score, roc_curve

    fig = Figure(figsize=(4.6, 4.4), dpi=110)
    ax = fig.add_subplot(1, 1, 1)
    for name, (labels, logits) in curves.items():
        fpr, tpr, _ = roc_curve(labels, logits)
        ax.plot(fpr, tpr, lw=2, label=f"{name}: AUC {roc_auc_score(labels, logits):.4f}")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
    ax.set(xlabel="false-positive rate", ylabel="true-positive rate", title=title, xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def media_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES)


def collect_labelled(data_dir: str | Path) -> tuple[list[Path], list[Path]]:
    """(real files, fake files) of DATA_DIR/real and DATA_DIR/fake; refuses what cannot be evaluated."""
    root = Path(data_dir)
    if not root.is_dir():
        raise InputRefused(f"{root} is not a directory", accepted="DATA_DIR holding real/ and fake/")
    for label in ("real", "fake"):
        if not (root / label).is_dir():
            raise InputRefused(f"{root} has no {label}/ folder", accepted="DATA_DIR holding real/ and fake/ "
                               f"with images ({', '.join(IMAGE_SUFFIXES)}) or videos ({', '.join(VIDEO_SUFFIXES)})")
    found = {}
    for label in ("real", "fake"):
        folder = root / label
        found[label] = media_files(folder)
        if not found[label]:
            raise InputRefused(f"{folder} holds no images or videos",
                               accepted=f"{', '.join(IMAGE_SUFFIXES + VIDEO_SUFFIXES)} files")
    return found["real"], found["fake"]


def load_frames(path: Path, fps: float = 1.0, max_frames: int = 64) -> list[np.ndarray]:
    """An image's pixels, or a video's frames sampled at fps (first frame for a still GIF)."""
    from ...media.images import decode_image

    if path.suffix.lower() in IMAGE_SUFFIXES:
        return [decode_image(path, max_pixels=80_000_000, accepted=("jpeg", "png", "webp")).rgb]
    from ...media.video import iter_frames

    frames = []
    try:
        for frame in iter_frames(path, fps):
            frames.append(frame.image)
            if len(frames) >= max_frames:
                break
    except InputRefused:
        if path.suffix.lower() != ".gif":
            raise
    if not frames and path.suffix.lower() == ".gif":
        from PIL import Image

        with Image.open(path) as im:
            frames = [np.asarray(im.convert("RGB")).copy()]
    if not frames:
        raise InputRefused(f"{path.name}: no frames could be decoded")
    return frames


def image_logits(detector, images: Sequence[np.ndarray], batch_size: int = 16) -> np.ndarray:
    """Logit per image, as the Detect pipeline scores it: batched by shape, and native-resolution models
    see the whole image (in tiles of at most config.tile px when larger: the mean of the tile logits)."""
    return detector.logits(images, batch_size=batch_size)


def score_files(detector, files: Sequence[Path], fps: float = 1.0, progress: ProgressCallback = no_progress,
                cancel: Optional[CancelToken] = None) -> np.ndarray:
    """Mean logit per file (one frame for images, frames at fps for videos)."""
    scores = np.empty(len(files), dtype=np.float64)
    for i, path in enumerate(files):
        check_cancelled(cancel)
        scores[i] = float(image_logits(detector, load_frames(path, fps)).mean())
        progress((i + 1) / len(files), f"scored {i + 1}/{len(files)}")
    return scores


# --------------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------------


@dataclass
class EvalReport:
    data_dir: str
    model: str
    metrics: dict[str, Any]
    roc_png: Optional[str] = None
    files: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self, with_files: bool = False) -> dict[str, Any]:
        out = {"data_dir": self.data_dir, "model": self.model, "metrics": self.metrics, "roc_png": self.roc_png}
        if with_files:
            out["files"] = self.files
        return out


def evaluate_detector(detector, data_dir: str | Path, *, out_dir: Optional[str | Path] = None, fps: float = 1.0,
                      temperature: Optional[float] = None, threshold: float = 0.5, title: Optional[str] = None,
                      temperature_source: str = "argument", progress: ProgressCallback = no_progress,
                      cancel: Optional[CancelToken] = None) -> EvalReport:
    """Score DATA_DIR/{real,fake}, compute the metrics, write roc.png under out_dir when given."""
    real, fake = collect_labelled(data_dir)
    files = real + fake
    labels = np.array([0] * len(real) + [1] * len(fake))
    logits = score_files(detector, files, fps, progress, cancel)
    source = temperature_source
    if temperature is None:
        temperature = detector.card_temperature
        source = "model card (fitted on the training calibration split)"
    metrics = binary_metrics(labels, logits, threshold, temperature)
    if temperature is None:
        t, ece = cross_fitted_temperature_ece(labels, logits)
        metrics.update(temperature=t, ece_temperature_scaled=ece)
        source = "cross-fitted on this data (2 folds; no temperature in the model card)"
    metrics["temperature_source"] = source
    roc = None
    if out_dir is not None:
        roc = str(save_roc_png(labels, logits, Path(out_dir) / "roc.png", title or f"{detector.name} on {Path(data_dir).name}"))
    per_file = [{"file": str(p), "label": "fake" if y else "real", "logit": float(z), "p_fake": float(sigmoid(z))}
                for p, y, z in zip(files, labels, logits)]
    return EvalReport(str(data_dir), detector.name, metrics, roc, per_file)


def real_only_report(detector, folder: str | Path, fps: float = 1.0, threshold: float = 0.5,
                     temperature: Optional[float] = None) -> dict[str, Any]:
    """False-positive rate on a folder of real media only (e.g. camera photos kept out of training)."""
    root = Path(folder)
    files = media_files(root) if root.is_dir() else []
    if not files:
        raise InputRefused(f"{root} holds no images or videos", accepted=", ".join(IMAGE_SUFFIXES + VIDEO_SUFFIXES))
    logits = score_files(detector, files, fps)
    t = temperature if temperature is not None else detector.temperature
    probs = sigmoid(logits / t)
    return {"folder": str(root), "n_real": len(files), "threshold": threshold,
            "false_positive_rate": float((probs >= threshold).mean()), "mean_p_fake": float(probs.mean()),
            "max_p_fake": float(probs.max()), "temperature": t,
            "files": {p.name: round(float(q), 4) for p, q in zip(files, probs)}}
