"""Recipe of ``apate-faceswap``: an ImageNet MobileNetV2 fine-tuned on self-blended faces (SBI).

    apate train-faceswap --out assets/models/apate-faceswap.safetensors

A linear probe on frozen CLIP embeddings of face crops did not detect real face swaps (held out by
source: ROC-AUC 0.57). SBI's evidence is local and low-level (a blending boundary, a colour and
sharpness mismatch inside a face-shaped mask), which is what the SBI paper fine-tunes a CNN to see.
This recipe does that at a CPU size:

1. Faces: every real image of the data sources (and scikit-image's astronaut) where MTCNN finds a face
   with P(face) >= ``min_face_prob`` and a box side >= ``min_face_px``; its largest face is kept as a
   context crop (box + ``CONTEXT`` on every side, longest side <= ``context_side``) with the box and the
   five landmarks in crop pixels, written once as PNG and indexed in ``faces.jsonl`` (no pickle).
   Face swaps (family ``face-swap``) are cropped alike, for evaluation only: they are never trained on.
2. Training pairs, drawn afresh every epoch: each real face gives itself and a self-blend of itself
   (``self_blend``, a new seed each time), both cropped to the box + a jittered margin around
   ``FACE_MARGIN`` (face mode's crop), both through the one processing policy (JPEG, WebP, H.264,
   downscale, grey), then resized to ``side``. Same content, same processing: only the blend differs.
3. Whole source repositories are held out: the real faces of ``holdout_sources`` are never trained on,
   and the figures reported are theirs: held-out real faces against the face swaps (never trained on),
   within each held-out repository that holds both, and against self-blends of held-out faces.
   ``calibration_sources`` are also left out of training; the temperature and the operating point are
   fitted on their real faces and self-blends, never on the reported faces.
4. The shipped model is the one so trained and measured (nothing is refitted on the held-out faces).
"""

from __future__ import annotations

import datetime as _dt
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ...progress import CancelToken, ProgressCallback, check_cancelled, no_progress
from ...settings import Settings
from .datasets import GENERATED, REAL, LabelledImage, load_data_source
from .processing import process

ARCHITECTURE = "mobilenet_v2"
SHIPPED_NAME = "apate-faceswap"
SWAP_FAMILY = "face-swap"
FACE_MARGIN = 0.3  # face mode's crop (DetectParams.face_margin)
CONTEXT = 0.8  # stored crop: box + 80 % on every side, room for the blend's jitter and the margin's
DUAL_CUE = "kushagragupta-23/Dual-Cue-AI-Generated-Image-Detection-via-Entropy-and-Bit-Plane-Feature-Fusion"
LABORATORIET = "Laboratoriet/real-or-ai-game"
ASTRONAUT_SOURCE = "scikit-image/astronaut"
# Face evidence joins verdicts only when the held-out face swaps are found this well: a model near chance
# would add false alarms on real faces (at its operating point it still flags some) and catch nothing.
FUSE_MIN_AUC = 0.75
SHIPPED_FILE = "apate-faceswap.safetensors"


def shipped_weights_path() -> Path:
    return Path(__file__).resolve().parents[3] / "assets" / "models" / SHIPPED_FILE


@dataclass(frozen=True)
class FaceCnnOptions:
    sources: tuple[str, ...] = ("detect-data",)
    holdout_sources: tuple[str, ...] = (DUAL_CUE,)  # reported on, never trained on
    calibration_sources: tuple[str, ...] = (LABORATORIET,)  # temperature and threshold, never trained on
    side: int = 224
    epochs: int = 12
    batch: int = 16
    lr: float = 3e-4
    weight_decay: float = 1e-4
    seed: int = 0
    max_minutes: float = 45.0
    min_face_prob: float = 0.9
    min_face_px: int = 40
    context_side: int = 384
    real_fpr: float = 0.05  # operating point: share of calibration real faces at or above the fake line
    threshold: float = 0.6  # the verdict's "fake" line, as apate-universal
    threads: Optional[int] = None


@dataclass(frozen=True)
class FaceRecord:
    crop: Path  # context crop (PNG)
    box: tuple[float, float, float, float]  # x, y, w, h in crop pixels
    landmarks: tuple[tuple[float, float], ...]  # five MTCNN points in crop pixels
    label: int
    family: str
    source: str
    origin: str

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "crop": self.crop.name}


# ------------------------------------------------------------------------------------------------
# 1. Faces
# ------------------------------------------------------------------------------------------------


def face_images(settings: Settings, options: FaceCnnOptions, originals: Path) -> list[LabelledImage]:
    """Every real image of the sources (most hold no face; MTCNN decides) and every face swap."""
    rows = [r for name in options.sources for r in load_data_source(name, settings)]
    rows = [r for r in rows if r.label == REAL or r.family == SWAP_FAMILY]
    return rows + [astronaut_row(originals)]


def astronaut_row(directory: Path) -> LabelledImage:
    """scikit-image's astronaut (a bundled real portrait), written once as PNG."""
    import skimage.data
    from PIL import Image

    path = Path(directory) / "scikit-image-astronaut.png"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(skimage.data.astronaut()).save(path)
    return LabelledImage(path=path, label=REAL, family="camera", source=ASTRONAUT_SOURCE, generator="astronaut")


def _context_record(row: LabelledImage, directory: Path, options: FaceCnnOptions) -> Optional[FaceRecord]:
    from PIL import Image

    from ..faces import detect_faces
    from .embeddings import load_rgb

    image = load_rgb(row.path)
    faces = [f for f in detect_faces(image, backend="mtcnn", min_prob=options.min_face_prob)
             if min(f.w, f.h) >= options.min_face_px and f.landmarks]
    if not faces:
        return None
    face = faces[0]
    x0, y0 = max(0, int(face.x - CONTEXT * face.w)), max(0, int(face.y - CONTEXT * face.h))
    x1 = min(image.shape[1], int(face.x + face.w * (1 + CONTEXT)))
    y1 = min(image.shape[0], int(face.y + face.h * (1 + CONTEXT)))
    scale = min(1.0, options.context_side / max(x1 - x0, y1 - y0))
    crop = Image.fromarray(image[y0:y1, x0:x1])
    if scale < 1.0:
        crop = crop.resize((max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))), Image.LANCZOS)
    path = directory / f"{row.path.parent.name}-{row.path.stem}.png"
    crop.save(path)
    box = ((face.x - x0) * scale, (face.y - y0) * scale, face.w * scale, face.h * scale)
    points = tuple(((px - x0) * scale, (py - y0) * scale) for px, py in face.landmarks)
    return FaceRecord(path, box, points, row.label, row.family, row.source, str(row.path))


def collect_faces(settings: Settings, directory: Path, options: FaceCnnOptions,
                  progress: ProgressCallback = no_progress,
                  cancel: Optional[CancelToken] = None) -> tuple[list[FaceRecord], int]:
    """Face records of the sources (cached in ``directory``), and how many images had no usable face."""
    directory.mkdir(parents=True, exist_ok=True)
    index = directory / "faces.jsonl"
    done: dict[str, Optional[dict]] = {}
    if index.is_file():
        for line in index.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            done[entry["origin"]] = entry.get("record")
    rows = face_images(settings, options, directory / "originals")
    pending = [r for r in rows if str(r.path) not in done]
    with open(index, "a", encoding="utf-8") as handle:
        for n, row in enumerate(pending):
            check_cancelled(cancel)
            record = _context_record(row, directory, options)
            done[str(row.path)] = record.to_json() if record else None
            handle.write(json.dumps({"origin": str(row.path), "record": done[str(row.path)]}) + "\n")
            progress((n + 1) / max(1, len(pending)), f"faces {n + 1}/{len(pending)}")
    records = [_record_from(done[str(r.path)], directory) for r in rows if done.get(str(r.path))]
    return records, sum(1 for r in rows if not done.get(str(r.path)))


def _record_from(entry: dict, directory: Path) -> FaceRecord:
    return FaceRecord(directory / entry["crop"], tuple(entry["box"]), tuple(map(tuple, entry["landmarks"])),
                      int(entry["label"]), entry["family"], entry["source"], entry["origin"])


# ------------------------------------------------------------------------------------------------
# 2. Views
# ------------------------------------------------------------------------------------------------


def load_crop(record: FaceRecord) -> np.ndarray:
    from .embeddings import load_rgb

    return load_rgb(record.crop)


def face_view(image: np.ndarray, box: tuple[float, float, float, float], side: int,
              rng: Optional[np.random.Generator] = None, margin: float = FACE_MARGIN) -> np.ndarray:
    """The face box grown by ``margin`` (jittered when ``rng`` is given), square-resized to ``side``."""
    import cv2

    x, y, w, h = box
    if rng is not None:
        margin = float(rng.uniform(margin - 0.1, margin + 0.1))
        x, y = x + float(rng.uniform(-0.05, 0.05)) * w, y + float(rng.uniform(-0.05, 0.05)) * h
    x0, y0 = max(0, int(x - margin * w)), max(0, int(y - margin * h))
    x1 = min(image.shape[1], int(np.ceil(x + w * (1 + margin))))
    y1 = min(image.shape[0], int(np.ceil(y + h * (1 + margin))))
    crop = np.ascontiguousarray(image[y0:y1, x0:x1])
    interpolation = cv2.INTER_AREA if max(crop.shape[:2]) > side else cv2.INTER_LINEAR
    return cv2.resize(crop, (side, side), interpolation=interpolation)


def training_pair(record: FaceRecord, image: np.ndarray, rng: np.random.Generator,
                  side: int) -> tuple[np.ndarray, np.ndarray]:
    """(real view, self-blend view) of one face: same crop jitter, independently drawn processing."""
    import cv2

    from .self_blend import self_blend

    fake = self_blend(image, np.asarray(record.landmarks), int(rng.integers(2 ** 62))).image
    jitter = int(rng.integers(2 ** 62))  # one crop for both, so the frame around the face is no cue
    views = []
    for pixels in (image, fake):
        processed, _ = process(face_view(pixels, record.box, side, np.random.default_rng(jitter)), rng)
        if processed.shape[:2] != (side, side):
            processed = cv2.resize(processed, (side, side), interpolation=cv2.INTER_LINEAR)
        views.append(processed)
    return views[0], views[1]


IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def to_batch(views: list[np.ndarray]) -> torch.Tensor:
    x = torch.from_numpy(np.stack(views)).permute(0, 3, 1, 2).float() / 255.0
    return ((x - IMAGENET_MEAN) / IMAGENET_STD).contiguous(memory_format=torch.channels_last)


# ------------------------------------------------------------------------------------------------
# 3. Training and held-out scores
# ------------------------------------------------------------------------------------------------


def pretrained_mobilenet() -> nn.Module:
    """torchvision MobileNetV2 with the ImageNet weights of ``backbones`` and a fresh 1-logit head."""
    import torchvision.models as tvm

    from .. import backbones

    module = tvm.mobilenet_v2(weights=None)
    module.load_state_dict(backbones.load_state("mobilenet_v2"), strict=True)
    module.classifier[-1] = nn.Linear(module.last_channel, 1)
    return module


def split_faces(records: list[FaceRecord], options: FaceCnnOptions) -> dict[str, list[FaceRecord]]:
    left_out = set(options.holdout_sources) | set(options.calibration_sources)
    return {
        "train": [r for r in records if r.label == REAL and r.source not in left_out],
        "calibration": [r for r in records if r.label == REAL and r.source in options.calibration_sources],
        "heldout": [r for r in records if r.label == REAL and r.source in options.holdout_sources],
        "swaps": [r for r in records if r.label == GENERATED],
    }


def _batches(records: list[FaceRecord], images: dict[Path, np.ndarray], rng: np.random.Generator,
             options: FaceCnnOptions) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    half = max(1, options.batch // 2)
    order = rng.permutation(len(records))
    for start in range(0, len(order), half):
        views, labels = [], []
        for i in order[start:start + half]:
            real, fake = training_pair(records[i], images[records[i].crop], rng, options.side)
            views += [real, fake]
            labels += [0.0, 1.0]
        yield to_batch(views), torch.tensor(labels).unsqueeze(1)


def train_model(records: list[FaceRecord], options: FaceCnnOptions, progress: ProgressCallback = no_progress,
                cancel: Optional[CancelToken] = None) -> tuple[nn.Module, dict[str, Any]]:
    """MobileNetV2 fine-tuned on (real, self-blend) pairs of ``records``; stops at ``max_minutes``."""
    torch.manual_seed(options.seed)
    rng = np.random.default_rng(options.seed)
    images = {r.crop: load_crop(r) for r in records}
    model = pretrained_mobilenet().to(memory_format=torch.channels_last).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=options.lr, weight_decay=options.weight_decay)
    steps_per_epoch = -(-len(records) // max(1, options.batch // 2))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=options.lr, pct_start=0.1,
                                                   total_steps=max(1, options.epochs * steps_per_epoch))
    started, history, step = time.monotonic(), [], 0
    for epoch in range(options.epochs):
        losses = []
        for x, y in _batches(records, images, rng, options):
            check_cancelled(cancel)
            loss = F.binary_cross_entropy_with_logits(model(x), y)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            losses.append(float(loss.detach()))
            step += 1
            progress(step / (options.epochs * steps_per_epoch), f"epoch {epoch + 1}: loss {np.mean(losses):.3f}")
        history.append(round(float(np.mean(losses)), 4))
        if (time.monotonic() - started) / 60 > options.max_minutes:
            break
    return model.eval(), {"epochs": len(history), "loss": history,
                          "minutes": round((time.monotonic() - started) / 60, 1)}


@torch.no_grad()
def face_logits(model: nn.Module, views: list[np.ndarray], batch: int = 32) -> np.ndarray:
    out = [model(to_batch(views[i:i + batch])).squeeze(1).numpy() for i in range(0, len(views), batch)]
    return np.concatenate(out) if out else np.zeros(0)


def scored_views(records: list[FaceRecord], side: int, seed: int) -> dict[str, list[np.ndarray]]:
    """Evaluation views: each face as it is, and one self-blend of each real face (seeded)."""
    from .self_blend import self_blend

    rng = np.random.default_rng(seed)
    as_is, blends = [], []
    for record in records:
        image = load_crop(record)
        as_is.append(face_view(image, record.box, side))
        if record.label == REAL:
            fake = self_blend(image, np.asarray(record.landmarks), int(rng.integers(2 ** 62))).image
            blends.append(face_view(fake, record.box, side))
    return {"as_is": as_is, "self_blend": blends}


def calibrate(model: nn.Module, records: list[FaceRecord], options: FaceCnnOptions) -> dict[str, float]:
    """Temperature and operating point from the calibration faces (real, and one self-blend each)."""
    from .evaluate import fit_temperature
    from .probe import operating_shift

    views = scored_views(records, options.side, options.seed + 1)
    z = np.r_[face_logits(model, views["as_is"]), face_logits(model, views["self_blend"])]
    y = np.r_[np.zeros(len(views["as_is"]), int), np.ones(len(views["self_blend"]), int)]
    temperature = fit_temperature(y, z)
    shift = operating_shift(y, z, temperature, options.threshold, options.real_fpr)
    return {"temperature": round(float(temperature), 4), "bias_shift": round(float(shift), 4),
            "faces": len(records)}


def heldout_report(model: nn.Module, split: dict[str, list[FaceRecord]], options: FaceCnnOptions,
                   temperature: float, shift: float) -> dict[str, Any]:
    """Held-out real faces against face swaps (all, and within each held-out repository) and against
    self-blends of themselves; logits already carry the operating point's shift."""
    from .probe import metrics

    real = scored_views(split["heldout"], options.side, options.seed + 2)
    swaps = scored_views(split["swaps"], options.side, options.seed + 2)["as_is"]
    z_real = face_logits(model, real["as_is"]) + shift
    z_swap = face_logits(model, swaps) + shift
    z_blend = face_logits(model, real["self_blend"]) + shift

    def versus(z_fake: np.ndarray, z_true: np.ndarray = z_real) -> dict[str, Any]:
        y = np.r_[np.zeros(len(z_true), int), np.ones(len(z_fake), int)]
        return {k: round(float(v), 4) for k, v in metrics(y, np.r_[z_true, z_fake], temperature,
                                                           options.threshold).items()}

    report: dict[str, Any] = {"heldout_sources": list(options.holdout_sources),
                              "face_swaps_vs_heldout_real": versus(z_swap),
                              "self_blends_vs_heldout_real": versus(z_blend), "within": {}}
    swap_sources = np.array([r.source for r in split["swaps"]])
    real_sources = np.array([r.source for r in split["heldout"]])
    for source in map(str, sorted(set(swap_sources) & set(real_sources))):
        report["within"][source] = versus(z_swap[swap_sources == source], z_real[real_sources == source])
    prob = 1.0 / (1.0 + np.exp(-z_swap / temperature))
    report["swaps_by_source"] = {s: {"n": int((swap_sources == s).sum()),
                                     "flagged": round(float((prob[swap_sources == s] >= options.threshold).mean()), 4)}
                                 for s in map(str, sorted(set(swap_sources)))}
    return report


def verdict_use(heldout_auc: float) -> dict[str, Any]:
    """Whether this model's face evidence may decide verdicts (the card's ``verdict_use``), and why."""
    fused = heldout_auc >= FUSE_MIN_AUC
    return {"fused": fused, "heldout_roc_auc": round(float(heldout_auc), 4), "min_roc_auc": FUSE_MIN_AUC,
            "reason": (f"held-out face swaps found with ROC-AUC {heldout_auc:.2f} "
                       f"({'at or above' if fused else 'below'} the {FUSE_MIN_AUC:g} a model needs to join verdicts)")}


def train_faceswap(settings: Settings, out: Path, options: FaceCnnOptions = FaceCnnOptions(), *,
                   cache_dir: Path, recipe: Optional[dict] = None, progress: ProgressCallback = no_progress,
                   cancel: Optional[CancelToken] = None) -> Path:
    """The whole recipe (module docstring); returns the saved weights' path."""
    from .. import backbones, mtcnn
    from ..checkpoints import save_detector
    from ..registry import create_detector

    previous = torch.get_num_threads()
    if options.threads:
        torch.set_num_threads(int(options.threads))
    try:
        records, no_face = collect_faces(settings, Path(cache_dir) / "faceswap-faces", options,
                                         lambda f, m: progress(0.1 * f, m), cancel)
        split = split_faces(records, options)
        if not split["train"]:
            from ...errors import InputRefused

            raise InputRefused("No real face to train on", accepted="data sources whose real images hold faces")
        model, run = train_model(split["train"], options, lambda f, m: progress(0.1 + 0.8 * f, m), cancel)
        progress(0.92, "calibration and held-out evaluation")
        calibration = calibrate(model, split["calibration"] or split["train"], options)
        report = heldout_report(model, split, options, calibration["temperature"], calibration["bias_shift"])
    finally:
        torch.set_num_threads(previous)
    with torch.no_grad():
        model.classifier[-1].bias.add_(calibration["bias_shift"])
    detector = create_detector(ARCHITECTURE)
    detector.module.load_state_dict(model.state_dict(), strict=True)
    detector.card["temperature"] = calibration["temperature"]
    counts = {k: len(v) for k, v in split.items()}
    trained_on = {
        "summary": (f"{counts['train']} real face crops (MTCNN box + {FACE_MARGIN:.0%}) from "
                    f"{len({r.source for r in split['train']})} sources and a fresh self-blend of each every epoch "
                    f"(SBI), both through one processing policy; ImageNet MobileNetV2 fine-tuned for {run['epochs']} "
                    f"epochs at {options.side} px. Never trained on: any face swap, the real faces of "
                    f"{', '.join(options.holdout_sources)} (held out, reported) and of "
                    f"{', '.join(options.calibration_sources)} (temperature and operating point)"),
        "faces": counts, "no_face_found": no_face, "run": run,
        "options": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(options).items()},
    }
    detector.card.update(
        backbone=backbones.SOURCES["mobilenet_v2"].card(), calibration=calibration, heldout=report,
        face_detector={"name": "mtcnn", "margin": FACE_MARGIN, "min_prob": options.min_face_prob,
                       "weights": [backbones.SOURCES[name].card() for name in mtcnn.BACKBONES]},
        licence="MIT (code); MobileNetV2 weights BSD-3 (torchvision); MTCNN weights MIT (facenet-pytorch)",
        intended_input="face crops: a face box grown by 30 % on every side (face mode)")
    detector.card["verdict_use"] = verdict_use(report["face_swaps_vs_heldout_real"]["roc_auc"])
    metrics = {"face_swaps_vs_heldout_real": report["face_swaps_vs_heldout_real"],
               "self_blends_vs_heldout_real": report["self_blends_vs_heldout_real"],
               **{f"within_{s}": m for s, m in report["within"].items()}}
    return save_detector(detector, out, trained_on=trained_on, metrics=metrics, recipe=recipe or {},
                         name=SHIPPED_NAME, date=_dt.date.today().isoformat())
