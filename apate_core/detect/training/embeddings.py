"""Frozen-encoder embeddings of labelled images, each seen through several processed views.

View 0 is the decoded file as it is; views 1.. are drawn from ``processing.process`` with a seed
fixed per (file, view), so a rerun reproduces them. The set is saved as ``.npz`` without pickle
(strings as fixed-width unicode arrays) and extended incrementally: files already embedded are not
embedded again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from ...progress import CancelToken, ProgressCallback, check_cancelled, no_progress
from .datasets import LabelledImage
from .processing import process

Encoder = Callable[[Sequence[np.ndarray]], np.ndarray]  # RGB uint8 images -> (n, d) embeddings


@dataclass
class EmbeddingSet:
    X: np.ndarray  # (n, d) float32
    y: np.ndarray  # (n,) int, 1 generated
    family: np.ndarray
    source: np.ndarray
    path: np.ndarray
    view: np.ndarray  # 0 = the file as it is
    steps: np.ndarray  # what processing the view had

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, mask: np.ndarray) -> "EmbeddingSet":
        return EmbeddingSet(**{f.name: getattr(self, f.name)[mask] for f in fields(self)})

    def save(self, path: Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **{f.name: getattr(self, f.name) for f in fields(self)})

    @classmethod
    def load(cls, path: Path) -> "EmbeddingSet":
        with np.load(path, allow_pickle=False) as data:
            return cls(**{f.name: data[f.name] for f in fields(cls)})

    @classmethod
    def concat(cls, parts: Sequence["EmbeddingSet"]) -> "EmbeddingSet":
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)})


def view_seed(path: Path, view: int, seed: int) -> int:
    digest = hashlib.sha256(f"{path.name}|{view}|{seed}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def load_rgb(path: Path) -> np.ndarray:
    """Pixels only (EXIF orientation applied, then every tag and chunk dropped), 8-bit RGB."""
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            base = Image.new("RGB", im.size, (255, 255, 255))
            base.paste(im.convert("RGBA"), mask=im.convert("RGBA").split()[-1])
            im = base
        return np.asarray(im.convert("RGB")).copy()


def views_of(row: LabelledImage, views: int, seed: int) -> list[tuple[np.ndarray, str]]:
    image = load_rgb(row.path)
    out = [(image, "none")]
    for v in range(1, views):
        out.append(process(image, np.random.default_rng(view_seed(row.path, v, seed))))
    return out


def embed_rows(rows: Sequence[LabelledImage], encoder: Encoder, *, views: int = 2, seed: int = 0,
               batch: int = 16, cache: Optional[Path] = None, progress: ProgressCallback = no_progress,
               cancel: Optional[CancelToken] = None) -> EmbeddingSet:
    """Embed every row in ``views`` views; reuse (and extend) ``cache`` when given."""
    done = EmbeddingSet.load(cache) if cache is not None and Path(cache).is_file() else None
    have = set(zip(done.path.tolist(), done.view.tolist())) if done is not None else set()
    pending = [(row, v) for row in rows for v in range(views) if (str(row.path), v) not in have]
    parts = [done] if done is not None else []
    for start in range(0, len(pending), batch):
        check_cancelled(cancel)
        chunk = pending[start:start + batch]
        images, meta = [], []
        for row in {id(r): r for r, _ in chunk}.values():
            wanted = {v for r, v in chunk if r is row}
            for v, (image, steps) in enumerate(views_of(row, max(wanted) + 1, seed)):
                if v in wanted:
                    images.append(image)
                    meta.append((row, v, steps))
        X = np.asarray(encoder(images), dtype=np.float32)
        parts.append(EmbeddingSet(
            X=X, y=np.array([r.label for r, _, _ in meta]), family=np.array([r.family for r, _, _ in meta]),
            source=np.array([r.source for r, _, _ in meta]), path=np.array([str(r.path) for r, _, _ in meta]),
            view=np.array([v for _, v, _ in meta]), steps=np.array([s for _, _, s in meta])))
        progress(min(1.0, (start + len(chunk)) / max(1, len(pending))), f"embedded {start + len(chunk)}/{len(pending)}")
        if cache is not None and (start // batch) % 10 == 9:
            EmbeddingSet.concat(parts).save(Path(cache))
    result = EmbeddingSet.concat(parts) if parts else _empty()
    if cache is not None:
        result.save(Path(cache))
    wanted = {(str(r.path), v) for r in rows for v in range(views)}
    keep = np.array([(p, v) in wanted for p, v in zip(result.path.tolist(), result.view.tolist())], dtype=bool)
    return result.subset(keep)


def rows_set(rows: Sequence[LabelledImage], X: Optional[np.ndarray] = None) -> EmbeddingSet:
    """The rows' labels and groups as an EmbeddingSet (view 0), with X (default: no features)."""
    return EmbeddingSet(
        X=np.zeros((len(rows), 0), np.float32) if X is None else X, y=np.array([r.label for r in rows], int),
        family=np.array([r.family for r in rows]), source=np.array([r.source for r in rows]),
        path=np.array([str(r.path) for r in rows]), view=np.zeros(len(rows), int),
        steps=np.array(["none"] * len(rows)))


def _empty() -> EmbeddingSet:
    return EmbeddingSet(X=np.zeros((0, 0), np.float32), y=np.zeros(0, int), family=np.array([], str),
                        source=np.array([], str), path=np.array([], str), view=np.zeros(0, int),
                        steps=np.array([], str))


def detector_encoder(detector, batch: int = 16) -> Encoder:
    """Raw features of a ClipProbe detector (embedding + every block's class token): its own
    preprocessing, its scoring encoder."""
    def encode(images: Sequence[np.ndarray]) -> np.ndarray:
        with torch.no_grad():
            pixels = detector.preprocess(list(images))
            return detector.module.raw_features(pixels).cpu().numpy()

    return encode
