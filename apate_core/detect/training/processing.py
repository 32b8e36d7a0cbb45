"""One processing policy for BOTH classes, so no file property can decide the label.

Real and generated images arrive in different formats, sizes and colour modes (many generated PNGs,
many real JPEGs, grey LFW faces). Every training view is drawn from the same policy, independently of
its label: optional grey, downscale and crop, then a re-encode as JPEG (many qualities), WebP, an
H.264 frame, or lossless. Metadata never reaches a detector: images are decoded to pixels first.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .corpus import _grey, _jpeg, h264_reencode


@dataclass(frozen=True)
class ProcessingPolicy:
    grey_prob: float = 0.08
    downscale_prob: float = 0.5
    downscale: tuple[float, float] = (0.35, 1.0)  # factor on both sides
    crop_prob: float = 0.3
    crop_area: tuple[float, float] = (0.5, 1.0)
    jpeg_prob: float = 0.45
    jpeg_quality: tuple[int, int] = (55, 98)
    webp_prob: float = 0.15
    webp_quality: tuple[int, int] = (60, 95)
    h264_prob: float = 0.1
    h264_crf: tuple[int, int] = (18, 32)
    min_side: int = 128  # never shrink below this


def encode(image: np.ndarray, fmt: str, quality: int = 90) -> np.ndarray:
    """The pixels after a trip through a JPEG, WebP or PNG file (PIL), as RGB uint8."""
    if fmt == "jpeg":
        return _jpeg(image, quality)
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format=fmt.upper(), quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB")).copy()


def _downscale(image: np.ndarray, factor: float, min_side: int) -> np.ndarray:
    h, w = image.shape[:2]
    factor = max(factor, min_side / max(1, min(h, w)))
    if factor >= 1.0:
        return image
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return np.asarray(Image.fromarray(image).resize(size, Image.BICUBIC if factor > 0.5 else Image.LANCZOS))


def _crop(image: np.ndarray, area: float, rng: np.random.Generator, min_side: int) -> np.ndarray:
    h, w = image.shape[:2]
    side = np.sqrt(area)
    ch, cw = max(min(h, min_side), int(h * side)), max(min(w, min_side), int(w * side))
    top, left = int(rng.integers(h - ch + 1)), int(rng.integers(w - cw + 1))
    return image[top:top + ch, left:left + cw]


def process(image: np.ndarray, rng: np.random.Generator,
            policy: ProcessingPolicy = ProcessingPolicy()) -> tuple[np.ndarray, str]:
    """One random view of ``image`` under ``policy``, and a short description of what was done."""
    steps = []
    if rng.random() < policy.grey_prob:
        image, _ = _grey(image), steps.append("grey")
    if rng.random() < policy.crop_prob:
        area = float(rng.uniform(*policy.crop_area))
        image, _ = _crop(image, area, rng, policy.min_side), steps.append(f"crop {area:.2f}")
    if rng.random() < policy.downscale_prob:
        factor = float(rng.uniform(*policy.downscale))
        image, _ = _downscale(image, factor, policy.min_side), steps.append(f"down {factor:.2f}")
    draw = rng.random()
    if draw < policy.jpeg_prob:
        q = int(rng.integers(policy.jpeg_quality[0], policy.jpeg_quality[1] + 1))
        image, _ = encode(image, "jpeg", q), steps.append(f"jpeg q{q}")
    elif draw < policy.jpeg_prob + policy.webp_prob:
        q = int(rng.integers(policy.webp_quality[0], policy.webp_quality[1] + 1))
        image, _ = encode(image, "webp", q), steps.append(f"webp q{q}")
    elif draw < policy.jpeg_prob + policy.webp_prob + policy.h264_prob:
        crf = int(rng.integers(policy.h264_crf[0], policy.h264_crf[1] + 1))
        even = image[: image.shape[0] // 2 * 2, : image.shape[1] // 2 * 2]
        image, _ = h264_reencode(np.ascontiguousarray(even), crf), steps.append(f"h264 crf{crf}")
    return np.ascontiguousarray(image), " ".join(steps) or "none"
