"""Train the fingerprint detector on DATA_DIR and ship it as safetensors + model card.

DATA_DIR is either a corpus from ``apate corpus`` (train/, val/, and optionally test/ and heldout/,
each with real/ and fake/) or a plain folder with real/ and fake/ (a seeded 15% of it becomes val).
Training sees random `patch` x `patch` crops with flips at native resolution; the checkpoint with
the lowest validation loss is kept; a temperature is fitted on val and stored in the card. When
test/ and heldout/ exist they are evaluated (same code as ``apate evaluate``) and the metrics go
into the card, with ROC curves saved beside the weights.
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
import math
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from torch import nn

from ...errors import InputRefused
from ...progress import CancelToken, ProgressCallback, check_cancelled, no_progress
from ..checkpoints import save_detector
from ..registry import create_detector
from . import evaluate as ev
from .network import ARCHITECTURE


@dataclass(frozen=True)
class TrainOptions:
    epochs: int = 12
    batch_size: int = 32
    patch: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    width: int = 16
    seed: int = 0
    max_minutes: Optional[float] = None  # stop early (after the current epoch) past this wall time
    val_fraction: float = 0.15  # only for a plain real/fake DATA_DIR

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class TrainResult:
    weights: Path
    card: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def _load_images(files: Sequence[Path]) -> list[np.ndarray]:
    frames = []
    for path in files:
        frames.extend(ev.load_frames(path, fps=1.0, max_frames=4))
    return frames


def _split_files(data_dir: Path, options: TrainOptions) -> tuple[dict[str, list[Path]], dict[str, list[Path]], str]:
    """(train {real, fake}, val {real, fake}, layout)."""
    if (data_dir / "train").is_dir():
        real, fake = ev.collect_labelled(data_dir / "train")
        train = {"real": real, "fake": fake}
        if (data_dir / "val").is_dir():
            vreal, vfake = ev.collect_labelled(data_dir / "val")
            return train, {"real": vreal, "fake": vfake}, "corpus"
        data = train
    else:
        real, fake = ev.collect_labelled(data_dir)
        data = {"real": real, "fake": fake}
    rng = np.random.default_rng(options.seed)
    train, val = {}, {}
    for label, files in data.items():
        order = rng.permutation(len(files))
        n_val = max(1, int(round(len(files) * options.val_fraction))) if len(files) > 1 else 0
        val[label] = [files[i] for i in sorted(order[:n_val])]
        train[label] = [files[i] for i in sorted(order[n_val:])]
    if not val["real"] or not val["fake"]:
        raise InputRefused(f"{data_dir} is too small to hold out a validation split",
                           accepted="at least 2 real and 2 fake files")
    return train, val, "split"


def _batch(images: Sequence[np.ndarray], labels: np.ndarray, idx: np.ndarray, patch: int,
           rng: np.random.Generator, mean: torch.Tensor, std: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    out = np.empty((len(idx), patch, patch, 3), dtype=np.uint8)
    for j, i in enumerate(idx):
        img = images[i]
        h, w = img.shape[:2]
        top, left = int(rng.integers(h - patch + 1)), int(rng.integers(w - patch + 1))
        crop = img[top:top + patch, left:left + patch]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        if rng.random() < 0.5:
            crop = crop[::-1]
        out[j] = crop
    x = torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255.0)
    return (x - mean) / std, torch.from_numpy(labels[idx].astype(np.float32))


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


def _val_logits(detector, images: Sequence[np.ndarray]) -> np.ndarray:
    detector.module.eval()
    return ev.image_logits(detector, images, batch_size=32)


def train_detector(data_dir: str | Path, out_path: str | Path, options: TrainOptions = TrainOptions(), *,
                   name: str = "apate", eval_real: Optional[str | Path] = None, recipe: Optional[dict] = None,
                   progress: ProgressCallback = no_progress, cancel: Optional[CancelToken] = None) -> TrainResult:
    """Train, calibrate, evaluate and save; returns the weights path and the card written beside it."""
    started = time.perf_counter()
    data_dir = Path(data_dir)
    train_files, val_files, layout = _split_files(data_dir, options)
    real_imgs, fake_imgs = _load_images(train_files["real"]), _load_images(train_files["fake"])
    images = real_imgs + fake_imgs
    labels = np.array([0] * len(real_imgs) + [1] * len(fake_imgs))
    small = [img.shape[:2] for img in images if min(img.shape[:2]) < options.patch]
    if small:
        raise InputRefused(f"{len(small)} training images are smaller than the {options.patch} px patch",
                           accepted=f"images at least {options.patch} px on each side")
    v_real, v_fake = _load_images(val_files["real"]), _load_images(val_files["fake"])
    v_images, v_labels = v_real + v_fake, np.array([0] * len(v_real) + [1] * len(v_fake))

    torch.manual_seed(options.seed)
    rng = np.random.default_rng(options.seed)
    detector = create_detector(ARCHITECTURE, width=options.width)
    module = detector.module
    mean = torch.tensor(detector.config.mean).view(1, 3, 1, 1)
    std = torch.tensor(detector.config.std).view(1, 3, 1, 1)
    steps_per_epoch = max(1, math.ceil(len(images) / options.batch_size))
    total_steps = steps_per_epoch * options.epochs
    opt = torch.optim.AdamW(module.parameters(), lr=options.lr, weight_decay=options.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=options.lr, total_steps=total_steps, pct_start=0.15)
    loss_fn = nn.BCEWithLogitsLoss()
    best = (float("inf"), None, -1)
    history = []
    for epoch in range(options.epochs):
        module.train()
        order = rng.permutation(len(images))
        losses = []
        for s in range(steps_per_epoch):
            check_cancelled(cancel)
            idx = order[s * options.batch_size:(s + 1) * options.batch_size]
            if len(idx) < 2:
                continue
            x, y = _batch(images, labels, idx, options.patch, rng, mean, std)
            loss = loss_fn(module(x)[:, 0], y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched.last_epoch < total_steps - 1:
                sched.step()
            losses.append(loss.item())
        z = _val_logits(detector, v_images)
        val_loss = ev.nll(v_labels, z)
        from sklearn.metrics import roc_auc_score

        record = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)) if losses else None, "val_loss": val_loss,
                  "val_auc": float(roc_auc_score(v_labels, z)), "seconds": round(time.perf_counter() - started, 1)}
        history.append(record)
        if val_loss < best[0]:
            best = (val_loss, copy.deepcopy(module.state_dict()), epoch + 1)
        progress((epoch + 1) / options.epochs, f"epoch {epoch + 1}: train loss {record['train_loss']:.4f}, "
                                               f"val loss {val_loss:.4f}, val AUC {record['val_auc']:.4f}")
        if options.max_minutes and time.perf_counter() - started > options.max_minutes * 60:
            break
    module.load_state_dict(best[1])
    module.eval()
    z = _val_logits(detector, v_images)
    temperature = ev.fit_temperature(v_labels, z)
    detector.card["temperature"] = temperature
    train_seconds = time.perf_counter() - started

    out_path = Path(out_path)
    if out_path.suffix.lower() != ".safetensors":
        out_path = out_path.with_name(out_path.name + ".safetensors")
    metrics: dict[str, Any] = {"val": ev.binary_metrics(v_labels, z, temperature=temperature)}
    curves = {}
    for split in ("test", "heldout"):
        if (data_dir / split).is_dir() and layout == "corpus":
            report = ev.evaluate_detector(detector, data_dir / split, temperature=temperature,
                                          temperature_source="fitted on the val split at training time")
            metrics[split] = report.metrics
            curves[split] = ([0 if f["label"] == "real" else 1 for f in report.files], [f["logit"] for f in report.files])
    if eval_real is not None:
        metrics["eval_real"] = {k: v for k, v in ev.real_only_report(detector, eval_real).items()}
    manifest = _manifest(data_dir)
    trained_on = {
        "data_dir": str(data_dir), "layout": layout,
        "n_train": {"real": len(real_imgs), "fake": len(fake_imgs)},
        "n_val": {"real": len(v_real), "fake": len(v_fake)},
    }
    if manifest:
        trained_on.update(summary=corpus_summary(manifest), corpus_options=manifest.get("options"),
                          families=manifest.get("families"), photos=manifest.get("photos"),
                          decoders=manifest.get("decoders"), corpus_seconds=manifest.get("seconds"))
    detector.card.update(
        history=history, best_epoch=best[2], train_seconds=round(train_seconds, 1),
        software={"python": platform.python_version(), "torch": torch.__version__},
        threshold=0.5, roc_png=None,
    )
    full_recipe = {"train_options": options.to_dict(), **(recipe or {})}
    if curves:
        png = out_path.with_name(out_path.stem + "-roc.png")
        ev.save_roc_curves_png(curves, png, title=f"{name}: in distribution vs held-out family")
        detector.card["roc_png"] = png.name
    weights = save_detector(detector, out_path, trained_on=trained_on, metrics=metrics, recipe=full_recipe,
                            date=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d"), name=name)
    card = json.loads(weights.with_suffix(".json").read_text(encoding="utf-8"))
    return TrainResult(weights=weights, card=card, history=history, seconds=time.perf_counter() - started)


def corpus_summary(manifest: dict) -> str:
    """What an ``apate corpus`` corpus is, in one sentence (<= 240 characters) for the card and the dashboard."""
    photos = sum(len(names) for names in (manifest.get("photos") or {}).values())
    families = manifest.get("families") or {}
    options = manifest.get("options") or {}
    codecs = "/".join(name for name, key in (("JPEG", "jpeg_prob"), ("H.264", "h264_prob")) if options.get(key))
    return (f"Crops of {photos} photos bundled with scikit-image, scikit-learn and matplotlib (real), those crops "
            f"re-synthesised by {'/'.join(families.get('train') or [])} decoders (fake)"
            f"{f', both {codecs} re-encoded' if codecs else ''}; {families.get('heldout')} held out; "
            "no GAN or diffusion model seen.")


def _manifest(data_dir: Path) -> Optional[dict]:
    path = data_dir / "manifest.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    data.pop("records", None)
    return data
