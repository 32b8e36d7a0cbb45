"""Self-blended images (SBI; Shiohara & Yamasaki, CVPR 2022): face-swap training fakes made from one
real face, so a detector learns the traces every swap leaves (a blending boundary, a colour and
sharpness mismatch, a slight misalignment) instead of one swapping method's look.

``self_blend(image, landmarks, seed)``:

1. source: a copy of the image, jittered in geometry (small scale and translation about the face
   centre), colour (brightness, contrast, hue, saturation, per-channel shift; a grey photo stays
   grey) and frequency (a slight blur, a sharpen, or a down-and-up resample);
2. mask: a face shape built from MTCNN's five landmarks (the convex hull of the landmarks and of a
   randomly stretched face outline around them, or an ellipse fitted to them), elastically
   deformed, eroded or dilated, and Gaussian-blurred at the edge;
3. blend: ``out = original x (1 - r m) + source x r m`` with a random ratio r from
   {0.25, 0.5, 0.75, 1, 1, 1}. Outside the mask's support the pixels are the original's.

Everything is drawn from ``np.random.default_rng(seed)``: the same image, landmarks and seed give the
same fake.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)


@dataclass(frozen=True)
class BlendPolicy:
    scale: float = 0.05  # source rescaled by 1 +- scale (per axis) about the face centre
    shift: float = 0.03  # translation, fraction of the face size
    brightness: float = 0.1  # additive, fraction of 255
    contrast: float = 0.1  # multiplicative about the mean
    hue: float = 8.0  # OpenCV hue units (0..180)
    saturation: float = 0.15
    channel_shift: float = 12.0  # per RGB channel, grey levels
    blur_sigma: tuple[float, float] = (0.5, 1.3)
    sharpen: tuple[float, float] = (0.3, 1.0)
    resample: tuple[float, float] = (0.4, 0.8)
    elastic: tuple[float, float] = (0.02, 0.06)  # displacement amplitude, fraction of the face size
    edge_sigma: tuple[float, float] = (0.02, 0.08)  # mask edge blur, fraction of the face size


@dataclass(frozen=True)
class SelfBlend:
    image: np.ndarray  # (H, W, 3) uint8, the fake
    mask: np.ndarray  # (H, W) float32 in [0, 1], the soft face mask (before the ratio)
    ratio: float
    steps: str  # what was done, for the record

    @property
    def alpha(self) -> np.ndarray:
        """Per-pixel weight of the source in the blend."""
        return self.mask * self.ratio


def _frame(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """Face centre, 'right' and 'down' unit vectors, eye distance and eye-to-mouth distance."""
    left_eye, right_eye, _, mouth_left, mouth_right = landmarks
    eyes, mouth = (left_eye + right_eye) / 2, (mouth_left + mouth_right) / 2
    down = mouth - eyes
    height = max(float(np.hypot(*down)), 1.0)
    down = down / height
    right = np.array([down[1], -down[0]])
    if np.dot(right, right_eye - left_eye) < 0:
        right = -right
    width = max(float(np.hypot(*(right_eye - left_eye))), 1.0)
    return (eyes + mouth) / 2, right, down, width, height


def face_size(landmarks: np.ndarray) -> float:
    _, _, _, width, height = _frame(np.asarray(landmarks, np.float64))
    return 2.0 * max(width, height)


# Face outline around the landmarks, in units of (eye distance, eye-to-mouth distance) from the centre:
# forehead, temples, cheeks, jaw, chin.
_OUTLINE = np.array([[0.0, -1.35], [-0.6, -1.2], [0.6, -1.2], [-1.0, -0.7], [1.0, -0.7], [-1.05, 0.0], [1.05, 0.0],
                     [-0.85, 0.75], [0.85, 0.75], [-0.45, 1.2], [0.45, 1.2], [0.0, 1.35]])


def face_polygon(landmarks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Convex hull of the five landmarks and of a randomly stretched face outline around them."""
    centre, right, down, width, height = _frame(landmarks)
    stretch = rng.uniform(0.8, 1.15, size=(len(_OUTLINE), 2)) * rng.uniform(0.85, 1.1)
    offsets = _OUTLINE * stretch
    outline = centre + offsets[:, :1] * width * right + offsets[:, 1:] * height * down
    return cv2.convexHull(np.concatenate([landmarks, outline]).astype(np.float32)).reshape(-1, 2)


def face_ellipse(landmarks: np.ndarray, rng: np.random.Generator, points: int = 48) -> np.ndarray:
    centre, right, down, width, height = _frame(landmarks)
    centre = centre + down * height * rng.uniform(-0.05, 0.2)
    a, b = width * rng.uniform(0.85, 1.15), height * rng.uniform(1.1, 1.5)
    t = np.linspace(0, 2 * np.pi, points, endpoint=False)[:, None]
    return centre + np.cos(t) * a * right + np.sin(t) * b * down


def face_mask(shape: Sequence[int], landmarks: np.ndarray, rng: np.random.Generator,
              policy: BlendPolicy = BlendPolicy()) -> np.ndarray:
    """(H, W) float32 soft mask in [0, 1]: face shape, elastic deformation, erode/dilate, blurred edge."""
    height, width = int(shape[0]), int(shape[1])
    landmarks = np.asarray(landmarks, np.float64)
    size = face_size(landmarks)
    polygon = face_ellipse(landmarks, rng) if rng.random() < 0.5 else face_polygon(landmarks, rng)
    binary = np.zeros((height, width), np.float32)
    cv2.fillPoly(binary, [np.round(polygon).astype(np.int32)], 1.0)
    # elastic deformation: a smooth random displacement field
    amplitude = rng.uniform(*policy.elastic) * size
    smooth = max(1.0, 0.12 * size)
    field = rng.uniform(-1, 1, size=(2, height, width)).astype(np.float32)
    field = np.stack([cv2.GaussianBlur(f, (0, 0), smooth) for f in field])
    field *= amplitude / max(float(np.abs(field).max()), 1e-6)
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    binary = cv2.remap(binary, grid_x + field[0], grid_y + field[1], cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    binary = (binary > 0.5).astype(np.uint8)
    radius = int(round(rng.uniform(-0.04, 0.04) * size))
    if radius:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(radius) + 1,) * 2)
        binary = (cv2.dilate if radius > 0 else cv2.erode)(binary, kernel)
    mask = cv2.GaussianBlur(binary.astype(np.float32), (0, 0), max(0.5, rng.uniform(*policy.edge_sigma) * size))
    peak = float(mask.max())
    return (mask / peak).astype(np.float32) if peak > 0 else mask


def _is_grey(image: np.ndarray) -> bool:
    return bool(np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 1], image[..., 2]))


def _colour(image: np.ndarray, rng: np.random.Generator, policy: BlendPolicy) -> tuple[np.ndarray, str]:
    grey = _is_grey(image)
    out = image.astype(np.float32)
    gain = 1.0 + rng.uniform(-policy.contrast, policy.contrast)
    bias = rng.uniform(-policy.brightness, policy.brightness) * 255.0
    out = (out - out.mean()) * gain + out.mean() + bias
    steps = [f"contrast {gain:.2f} brightness {bias:+.0f}"]
    if not grey:
        shift = rng.uniform(-policy.channel_shift, policy.channel_shift, size=3)
        out += shift
        hsv = cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
        dh, ds = rng.uniform(-policy.hue, policy.hue), 1.0 + rng.uniform(-policy.saturation, policy.saturation)
        hsv[..., 0] = np.mod(hsv[..., 0] + dh, 180.0)
        hsv[..., 1] = np.clip(hsv[..., 1] * ds, 0, 255)
        out = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
        steps.append(f"rgb {shift.round(0).astype(int).tolist()} hue {dh:+.1f} sat {ds:.2f}")
    out = np.clip(np.round(out), 0, 255).astype(np.uint8)
    return (np.repeat(out[..., :1], 3, axis=2) if grey else out), " ".join(steps)


def _frequency(image: np.ndarray, rng: np.random.Generator, policy: BlendPolicy) -> tuple[np.ndarray, str]:
    kind = rng.choice(["blur", "sharpen", "resample"])
    if kind == "blur":
        sigma = rng.uniform(*policy.blur_sigma)
        return cv2.GaussianBlur(image, (0, 0), sigma), f"blur {sigma:.2f}"
    if kind == "sharpen":
        amount = rng.uniform(*policy.sharpen)
        soft = cv2.GaussianBlur(image, (0, 0), 1.0).astype(np.float32)
        out = image.astype(np.float32) * (1 + amount) - soft * amount
        return np.clip(np.round(out), 0, 255).astype(np.uint8), f"sharpen {amount:.2f}"
    factor = rng.uniform(*policy.resample)
    h, w = image.shape[:2]
    small = cv2.resize(image, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR), f"resample {factor:.2f}"


def _geometry(image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator,
              policy: BlendPolicy) -> tuple[np.ndarray, str]:
    centre = _frame(landmarks)[0]
    size = face_size(landmarks)
    sx, sy = 1 + rng.uniform(-policy.scale, policy.scale, size=2)
    tx, ty = rng.uniform(-policy.shift, policy.shift, size=2) * size
    matrix = np.array([[sx, 0, (1 - sx) * centre[0] + tx], [0, sy, (1 - sy) * centre[1] + ty]], np.float64)
    out = cv2.warpAffine(image, matrix, (image.shape[1], image.shape[0]), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT_101)
    return out, f"scale {sx:.3f}x{sy:.3f} shift {tx:+.1f},{ty:+.1f}"


def jitter_source(image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator,
                  policy: BlendPolicy = BlendPolicy()) -> tuple[np.ndarray, str]:
    """The source face: the image jittered in geometry, colour and frequency."""
    out, geometry = _geometry(image, landmarks, rng, policy)
    out, colour = _colour(out, rng, policy)
    out, frequency = _frequency(out, rng, policy)
    return out, f"{geometry}; {colour}; {frequency}"


def self_blend(image: np.ndarray, landmarks: np.ndarray, seed: int,
               policy: BlendPolicy = BlendPolicy()) -> SelfBlend:
    """A self-blended fake of ``image`` (RGB uint8) around the face whose five MTCNN landmarks are given."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError("self_blend takes an RGB uint8 image of shape (H, W, 3)")
    landmarks = np.asarray(landmarks, np.float64).reshape(5, 2)
    rng = np.random.default_rng(seed)
    source, steps = jitter_source(image, landmarks, rng, policy)
    mask = face_mask(image.shape, landmarks, rng, policy)
    ratio = float(rng.choice(RATIOS))
    alpha = (mask * ratio)[..., None]
    out = image.astype(np.float32) * (1 - alpha) + source.astype(np.float32) * alpha
    out = np.where(alpha > 0, np.clip(np.round(out), 0, 255), image).astype(np.uint8)
    return SelfBlend(image=out, mask=mask, ratio=ratio, steps=f"{steps}; ratio {ratio:.2f}")
