"""Does the recogniser still match the protected photo? Checked as a scraper would: on the saved 8-bit file
(and after JPEG re-encoding or halving its size), faces are detected and aligned afresh, and each face's
descriptor is compared with the descriptor of the same face in the original photo."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from PIL import Image

from .align import AlignedFace, aligned_crops, find_faces
from .descriptor import MATCH_THRESHOLD, FaceDescriptorNet

MIN_IOU = 0.3  # a re-detected face is the same face when its box overlaps the original's this much


def _jpeg(quality: int) -> Callable[[np.ndarray], np.ndarray]:
    def apply(rgb: np.ndarray) -> np.ndarray:
        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
        return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    return apply


def _half(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    return np.asarray(Image.fromarray(rgb).resize((max(1, w // 2), max(1, h // 2)), Image.Resampling.LANCZOS))


@dataclass(frozen=True)
class Condition:
    """A way the protected photo may reach a recogniser; ``scale`` maps original pixels to its pixels."""

    name: str
    apply: Optional[Callable[[np.ndarray], np.ndarray]]
    scale: float = 1.0


CONDITIONS: tuple[Condition, ...] = (
    Condition("as saved", None), Condition("JPEG 95", _jpeg(95)), Condition("JPEG 75", _jpeg(75)),
    Condition("JPEG 50", _jpeg(50)), Condition("resized to half", _half, 0.5),
)
HEADLINE: tuple[str, ...] = ("as saved", "JPEG 75", "resized to half")  # the conditions the efficacy goals are stated for
VERIFIED: tuple[Condition, ...] = (CONDITIONS[0], CONDITIONS[2])  # what the automatic budget checks before it stops


@dataclass(frozen=True)
class FaceCheck:
    """One face of the original under one condition: descriptor distance to the original's face (None when
    the face is not found again), and the same for the unprotected photo under that condition (baseline)."""

    face: int
    condition: str
    distance: Optional[float]
    baseline: Optional[float]

    @property
    def found(self) -> bool:
        return self.distance is not None

    @property
    def matched(self) -> bool:
        """Would the recogniser still say "same person"? A face not found again cannot be matched."""
        return self.distance is not None and self.distance <= MATCH_THRESHOLD

    def to_dict(self) -> dict:
        r = lambda v: None if v is None else round(v, 4)  # noqa: E731
        return {"face": self.face, "condition": self.condition, "distance": r(self.distance),
                "baseline": r(self.baseline), "found": self.found, "matched": self.matched}


def descriptors(net: FaceDescriptorNet, rgb: np.ndarray, faces: Sequence[AlignedFace]) -> torch.Tensor:
    if not faces:
        return torch.zeros((0, 128))
    with torch.no_grad():
        return net(aligned_crops(rgb, faces))


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _distances(net: FaceDescriptorNet, rgb: np.ndarray, faces: Sequence[AlignedFace], reference: torch.Tensor,
               scale: float) -> list[Optional[float]]:
    """Re-detect faces in ``rgb``; each original face's distance to its best-overlapping new face."""
    found = find_faces(rgb, min_prob=0.5, min_side=0)
    if not found:
        return [None] * len(faces)
    new = descriptors(net, rgb, found)
    out: list[Optional[float]] = []
    for i, face in enumerate(faces):
        box = [v * scale for v in face.box]
        overlaps = [_iou(box, f.box) for f in found]
        best = int(np.argmax(overlaps))
        out.append(float((new[best] - reference[i]).norm()) if overlaps[best] >= MIN_IOU else None)
    return out


def protected_distances(net: FaceDescriptorNet, protected: np.ndarray, faces: Sequence[AlignedFace],
                        reference: torch.Tensor, conditions: Sequence[Condition]) -> list[float]:
    """Each face's smallest re-detected distance over ``conditions`` (inf where it is never found again:
    a face the recogniser cannot find cannot be matched)."""
    worst = [math.inf] * len(faces)
    for cond in conditions:
        seen = protected if cond.apply is None else cond.apply(protected)
        for i, d in enumerate(_distances(net, seen, faces, reference, cond.scale)):
            worst[i] = min(worst[i], math.inf if d is None else d)
    return worst


def check_identity(net: FaceDescriptorNet, original: np.ndarray, protected: np.ndarray,
                   faces: Sequence[AlignedFace], conditions: Sequence[Condition] = CONDITIONS,
                   reference: Optional[torch.Tensor] = None) -> list[FaceCheck]:
    """Every face under every condition, protected against unprotected."""
    reference = descriptors(net, original, faces) if reference is None else reference
    checks = []
    for cond in conditions:
        seen = lambda rgb: rgb if cond.apply is None else cond.apply(rgb)  # noqa: E731
        after = _distances(net, seen(protected), faces, reference, cond.scale)
        before = _distances(net, seen(original), faces, reference, cond.scale)
        checks += [FaceCheck(i, cond.name, a, b) for i, (a, b) in enumerate(zip(after, before))]
    return checks


def unmatched_share(checks: Sequence[FaceCheck], condition: str) -> Optional[float]:
    """Share of faces no longer matched under ``condition`` (None when it was not checked)."""
    rows = [c for c in checks if c.condition == condition]
    return sum(not c.matched for c in rows) / len(rows) if rows else None
