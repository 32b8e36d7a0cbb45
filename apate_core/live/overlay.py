"""Drawing a live result onto a frame: the score colour, the heatmap overlay, labels and face boxes.

Pure OpenCV on RGB uint8 arrays; the processor calls :func:`annotate` for every returned frame and snapshot.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Optional

import cv2
import numpy as np

if TYPE_CHECKING:
    from .processor import FrameResult

REAL_RGB = (46, 160, 67)
MID_RGB = (240, 180, 0)
FAKE_RGB = (214, 39, 40)


def score_colour(score: Optional[float]) -> tuple[int, int, int]:
    """RGB from green (0, real) through amber (0.5) to red (1, generated); grey for no score."""
    if score is None or not math.isfinite(score):
        return (128, 128, 128)
    s = min(max(float(score), 0.0), 1.0)
    a, b, t = (REAL_RGB, MID_RGB, s * 2) if s < 0.5 else (MID_RGB, FAKE_RGB, s * 2 - 1)
    return tuple(int(round(a[i] + (b[i] - a[i]) * t)) for i in range(3))  # type: ignore[return-value]


def encode_png(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def colour_heatmap(cam: np.ndarray, width: int, height: int) -> np.ndarray:
    """[0, 1] map -> JET-coloured RGB uint8 at (height, width)."""
    cam = np.clip(np.nan_to_num(cam.astype(np.float32, copy=False)), 0.0, 1.0)
    if cam.shape != (height, width):
        cam = cv2.resize(cam, (width, height), interpolation=cv2.INTER_LINEAR)
    return cv2.cvtColor(cv2.applyColorMap(np.uint8(np.round(cam * 255)), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)


def _label(img: np.ndarray, text: str, x: int, y: int, colour: tuple[int, int, int], scale: float) -> None:
    """Text on a filled box whose top-left is (x, y), kept inside the image."""
    thick = max(1, int(round(scale * 2)))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    pad = max(2, int(round(4 * scale)))
    x = int(min(max(0, x), max(0, img.shape[1] - tw - 2 * pad)))
    y = int(min(max(0, y), max(0, img.shape[0] - th - base - 2 * pad)))
    cv2.rectangle(img, (x, y), (x + tw + 2 * pad, y + th + base + 2 * pad), colour, -1)
    text_rgb = (0, 0, 0) if sum(colour) > 420 else (255, 255, 255)
    cv2.putText(img, text, (x + pad, y + pad + th), cv2.FONT_HERSHEY_SIMPLEX, scale, text_rgb, thick, cv2.LINE_AA)


def annotate(frame: np.ndarray, result: Optional[FrameResult], *, opacity: float = 0.45,
             heat_rgb: Optional[np.ndarray] = None) -> np.ndarray:
    """A copy of an RGB frame with a result drawn on it (the result may come from an earlier frame).

    heat_rgb: the result's heatmap already coloured at this frame's size (saves recolouring per frame).
    """
    out = np.ascontiguousarray(frame[:, :, :3]).copy()
    height, width = out.shape[:2]
    scale = max(0.4, width / 800.0)
    if result is None:
        _label(out, "Apate: warming up", 8, 8, (90, 90, 90), scale)
        return out
    sx, sy = width / result.shape[1], height / result.shape[0]

    def to_frame(x0: float, y0: float, x1: float, y1: float) -> tuple[int, int, int, int]:
        return (int(round(x0 * sx)), int(round(y0 * sy)), int(round(x1 * sx)), int(round(y1 * sy)))

    if result.heatmap is not None and result.heat_rects:
        if heat_rgb is None or heat_rgb.shape[:2] != (height, width):
            heat_rgb = colour_heatmap(result.heatmap, width, height)
        for rect in result.heat_rects:
            x0, y0, x1, y1 = to_frame(*rect)
            if x1 > x0 and y1 > y0:
                out[y0:y1, x0:x1] = cv2.addWeighted(out[y0:y1, x0:x1], 1.0 - opacity, heat_rgb[y0:y1, x0:x1], opacity, 0)
    colour = score_colour(result.smoothed if result.smoothed is not None else result.score)
    if result.face_mode:
        for face in result.faces:
            x, y, w, h = face.box
            x0, y0, x1, y1 = to_frame(x, y, x + w, y + h)
            face_colour = score_colour(face.score)
            cv2.rectangle(out, (x0, y0), (x1, y1), face_colour, max(2, int(round(2 * scale))))
            _label(out, f"{face.score:.2f}", x0, y0 - int(28 * scale), face_colour, scale * 0.8)
        head = "no face" if result.score is None else f"{len(result.faces)} face(s), max P(fake) {result.score:.2f}"
    else:
        b = max(3, int(round(min(width, height) / 60)))
        out[:b], out[-b:], out[:, :b], out[:, -b:] = colour, colour, colour, colour
        head = f"P(fake) {result.score:.2f}"
    if result.smoothed is not None:
        head += f" | smoothed {result.smoothed:.2f}"
    _label(out, head, 8, 8, colour, scale)
    return out
