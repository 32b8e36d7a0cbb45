"""Face-focused analysis: find faces, crop them with a margin and score each crop with a detector.

Backends, in the order ``auto`` picks them: MTCNN (mtcnn.py; boxes, probabilities and five landmarks)
when its weights are installed (``python -m apate_core.detect.backbones``), else OpenCV's bundled Haar
cascade (cv2.data.haarcascades), else scikit-image's bundled LBP cascade. Nothing is downloaded.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Optional, Sequence

import cv2
import numpy as np

from ..errors import InputRefused
from .models import MIN_SIDE_NO_RESIZE, Detector, as_rgb_uint8

HAAR_FILE = "haarcascade_frontalface_default.xml"
BACKENDS = ("auto", "mtcnn", "haar", "lbp")
MAX_SIDE = {"mtcnn": 640, "haar": 1024, "lbp": 1024}  # longest side searched (fast path for video frames)
MTCNN_MIN_PROB = 0.9  # O-Net P(face) a face-mode box needs (MTCNN's own last-stage line is 0.7)

Landmarks = tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class FaceBox:
    """Face rectangle in pixels of the analysed image.

    confidence: (0, 1) support score: MTCNN's O-Net P(face); n / (n + min_neighbors) with n the number
    of raw cascade hits merged into this box (Haar); 1.0 for the LBP backend, which reports no score.
    It ranks boxes; it is not a calibrated probability.
    landmarks: MTCNN's five points (x, y) in image pixels: left eye, right eye, nose, left and right
    mouth corner as seen in the image; None for the cascades.
    """

    x: int
    y: int
    w: int
    h: int
    confidence: float
    landmarks: Optional[Landmarks] = None

    def __post_init__(self) -> None:
        if self.landmarks is not None:  # JSON gives lists back
            object.__setattr__(self, "landmarks", tuple((float(x), float(y)) for x, y in self.landmarks))

    @property
    def area(self) -> int:
        return self.w * self.h

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"x": self.x, "y": self.y, "w": self.w, "h": self.h, "confidence": self.confidence}
        if self.landmarks is not None:
            out["landmarks"] = [[round(x, 2), round(y, 2)] for x, y in self.landmarks]
        return out


@dataclass(frozen=True)
class FaceScore:
    box: FaceBox
    score: float  # P(fake) of the face crop

    def to_dict(self) -> dict[str, Any]:
        return {"box": self.box.to_dict(), "score": self.score}


def _haar_path() -> Optional[str]:
    data = getattr(cv2, "data", None)
    path = os.path.join(getattr(data, "haarcascades", ""), HAAR_FILE) if data else ""
    return path if path and os.path.isfile(path) else None


def _mtcnn_installed() -> bool:
    from .mtcnn import weights_installed

    return weights_installed()


def face_backend(requested: str = "auto") -> str:
    """The backend that will run: 'mtcnn', 'haar' or 'lbp'."""
    if requested not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}")
    if requested == "auto":
        return "mtcnn" if _mtcnn_installed() else "haar" if _haar_path() else "lbp"
    if requested == "mtcnn" and not _mtcnn_installed():
        raise InputRefused("MTCNN's weights are not installed",
                           accepted="run `python -m apate_core.detect.backbones`, or backend='haar'")
    if requested == "haar" and not _haar_path():
        raise InputRefused("OpenCV's bundled Haar cascades are not installed", accepted="backend='lbp'")
    return requested


@lru_cache(maxsize=1)
def _haar_cascade() -> cv2.CascadeClassifier:
    cascade = cv2.CascadeClassifier(_haar_path() or "")
    if cascade.empty():
        raise InputRefused("OpenCV's Haar face cascade could not be loaded")
    return cascade


@lru_cache(maxsize=1)
def _lbp_cascade():
    import skimage.data
    import skimage.feature

    return skimage.feature.Cascade(skimage.data.lbp_frontal_face_cascade_filename())


def _to_gray(image: np.ndarray) -> np.ndarray:
    return cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))


def _detect_haar(gray: np.ndarray, min_size: int, min_neighbors: int) -> list[FaceBox]:
    boxes, hits = _haar_cascade().detectMultiScale2(gray, scaleFactor=1.1, minNeighbors=min_neighbors,
                                                    minSize=(min_size, min_size))
    return [FaceBox(int(x), int(y), int(w), int(h), float(n) / (float(n) + min_neighbors))
            for (x, y, w, h), n in zip(np.asarray(boxes).reshape(-1, 4), np.asarray(hits).reshape(-1))]


def _detect_lbp(gray: np.ndarray, min_size: int, min_neighbors: int) -> list[FaceBox]:
    # LBP needs more merged hits than Haar to avoid texture false positives.
    found = _lbp_cascade().detect_multi_scale(img=gray.astype(np.float32) / 255.0, scale_factor=1.1, step_ratio=1,
                                              min_size=(min_size, min_size), max_size=gray.shape[:2],
                                              min_neighbor_number=max(8, min_neighbors))
    return [FaceBox(int(d["c"]), int(d["r"]), int(d["width"]), int(d["height"]), 1.0) for d in found]


def _detect_mtcnn(image: np.ndarray, min_size: int, min_prob: float) -> list[FaceBox]:
    from .mtcnn import default_mtcnn

    found = default_mtcnn(min_face_size=min_size).detect(image, max_side=None)
    height, width = image.shape[:2]
    boxes = []
    for (x0, y0, x1, y1), prob, points in zip(found.boxes, found.probs, found.landmarks):
        x, y = max(0, int(round(x0))), max(0, int(round(y0)))
        w, h = min(width, int(round(x1))) - x, min(height, int(round(y1))) - y
        if prob >= min_prob and w > 0 and h > 0:
            boxes.append(FaceBox(x, y, w, h, float(prob), tuple(map(tuple, points.tolist()))))
    return boxes


def detect_faces(image: np.ndarray, *, min_size: int = 24, min_neighbors: int = 5, max_side: Optional[int] = None,
                 backend: str = "auto", min_prob: float = MTCNN_MIN_PROB) -> list[FaceBox]:
    """Frontal faces in an RGB uint8 image, largest first. Empty list: no face found.

    Images longer than max_side (default per backend: MAX_SIDE) are analysed downscaled (speed) and
    boxes mapped back. min_size is in analysed pixels; min_neighbors applies to the cascades,
    min_prob (O-Net P(face)) to MTCNN.
    """
    image = as_rgb_uint8(image)
    name = face_backend(backend)
    max_side = MAX_SIDE[name] if max_side is None else max_side
    scale = min(1.0, max_side / max(image.shape[:2]))
    small = image if scale == 1.0 else cv2.resize(
        image, (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale))),
        interpolation=cv2.INTER_AREA)
    if min(small.shape[:2]) < min_size:
        return []
    if name == "mtcnn":
        found = _detect_mtcnn(small, min_size, min_prob)
    else:
        found = (_detect_haar if name == "haar" else _detect_lbp)(_to_gray(small), min_size, min_neighbors)
    boxes = [_rescale(b, 1.0 / scale, image.shape[:2]) for b in found]
    return sorted(boxes, key=lambda b: (-b.area, b.y, b.x))


def _rescale(box: FaceBox, factor: float, shape: Sequence[int]) -> FaceBox:
    if factor == 1.0:
        return box
    x, y = int(box.x * factor), int(box.y * factor)
    w = min(int(math.ceil(box.w * factor)), shape[1] - x)
    h = min(int(math.ceil(box.h * factor)), shape[0] - y)
    points = None if box.landmarks is None else tuple((px * factor, py * factor) for px, py in box.landmarks)
    return FaceBox(x, y, w, h, box.confidence, points)


def crop_with_margin(image: np.ndarray, box: FaceBox, margin: float = 0.3) -> np.ndarray:
    """The box grown by `margin` x its size on every side (clipped to the image), as a copy."""
    if margin < 0:
        raise ValueError("margin must be >= 0")
    height, width = image.shape[:2]
    pad_x, pad_y = margin * box.w, margin * box.h
    x0, y0 = max(0, int(math.floor(box.x - pad_x))), max(0, int(math.floor(box.y - pad_y)))
    x1 = min(width, int(math.ceil(box.x + box.w + pad_x)))
    y1 = min(height, int(math.ceil(box.y + box.h + pad_y)))
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"box {box} lies outside the {width}x{height} image")
    return image[y0:y1, x0:x1].copy()


def _fit_for(detector: Detector, crop: np.ndarray) -> np.ndarray:
    # Full-image detectors (resize='none') cannot take crops below a ResNet's minimum side.
    side = min(crop.shape[:2])
    if detector.config.resize != "none" or side >= MIN_SIDE_NO_RESIZE:
        return crop
    factor = MIN_SIDE_NO_RESIZE / side
    size = (max(MIN_SIDE_NO_RESIZE, round(crop.shape[1] * factor)), max(MIN_SIDE_NO_RESIZE, round(crop.shape[0] * factor)))
    return cv2.resize(crop, size, interpolation=cv2.INTER_CUBIC)


def score_faces(detector: Detector, image: np.ndarray, *, margin: float = 0.3,
                faces: Optional[Sequence[FaceBox]] = None, batch_size: int = 16,
                backend: str = "auto", max_side: Optional[int] = None) -> list[FaceScore]:
    """P(fake) of each face crop (largest face first); empty list when no face is found."""
    image = as_rgb_uint8(image)
    boxes = list(faces) if faces is not None else detect_faces(image, backend=backend, max_side=max_side)
    if not boxes:
        return []
    crops = [_fit_for(detector, crop_with_margin(image, box, margin)) for box in boxes]
    probs = detector.predict_proba(crops, batch_size=batch_size)
    return [FaceScore(box, float(p)) for box, p in zip(boxes, probs)]
