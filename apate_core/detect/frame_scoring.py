"""Frames in, scores out: the samples of an input, and the scorer that turns batches of frames (or face crops)
into P(fake), face boxes and heatmaps for the Detect pipeline."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Optional, Sequence

import cv2
import numpy as np

from ..progress import CancelToken, ProgressCallback, check_cancelled
from .models import Detector

if TYPE_CHECKING:
    from .pipeline import DetectParams


@dataclass
class Sample:
    index: int
    time: float
    image: np.ndarray


def downscale(image: np.ndarray, side: int, interpolation: int = cv2.INTER_AREA) -> np.ndarray:
    height, width = image.shape[:2]
    scale = side / max(height, width)
    if scale >= 1.0:
        return np.ascontiguousarray(image)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=interpolation)


def to_uint8_map(cam: np.ndarray, side: int) -> np.ndarray:
    small = downscale(np.asarray(cam, dtype=np.float32), side, cv2.INTER_AREA)
    return np.clip(np.round(small * 255.0), 0, 255).astype(np.uint8)


def crop_rect(shape: Sequence[int], box, margin: float) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of crop_with_margin(image, box, margin), to paste a crop's heatmap back."""
    height, width = shape[:2]
    pad_x, pad_y = margin * box.w, margin * box.h
    x0, y0 = max(0, int(math.floor(box.x - pad_x))), max(0, int(math.floor(box.y - pad_y)))
    x1 = min(width, int(math.ceil(box.x + box.w + pad_x)))
    y1 = min(height, int(math.ceil(box.y + box.h + pad_y)))
    return x0, y0, x1, y1


class FrameScorer:
    """Scores batches of frames (whole frames or face crops) and makes heatmaps on request."""

    def __init__(self, detector: Detector, params: DetectParams, cancel: Optional[CancelToken]):
        self.detector, self.params, self.cancel = detector, params, cancel

    # ---- whole frames
    def score(self, samples: Sequence[Sample], with_maps: bool) -> tuple[list[Optional[float]], list[list[dict]],
                                                                        list[Optional[np.ndarray]]]:
        """Per sample: score (None: no face in face mode), faces, heatmap at frame size (with_maps) or None."""
        with_maps = with_maps and self.params.cam is not None
        if self.params.faces:
            return self._score_faces(samples, with_maps)
        images = [s.image for s in samples]
        if with_maps:
            probs, maps = self._cam(images)
            return [float(p) for p in probs], [[] for _ in samples], maps
        probs = self.detector.predict_proba(images, batch_size=self.params.batch_size, cancel=self.cancel)
        return [float(p) for p in probs], [[] for _ in samples], [None] * len(samples)

    def _cam(self, images: Sequence[np.ndarray], scores: bool = True) -> tuple[Optional[np.ndarray], list[np.ndarray]]:
        """One forward+backward per batch (of tiles, for large frames) gives both P(fake) and the maps."""
        from .cam import score_and_cam

        return score_and_cam(self.detector, images, self.params.cam, batch_size=self.params.batch_size,
                             cancel=self.cancel, scores=scores)

    def heatmaps(self, images: Sequence[np.ndarray], faces: Sequence[list[dict]]) -> list[np.ndarray]:
        """Heatmaps at frame size for frames picked after scoring (top-k mode, or a requested frame):
        their scores are known already, so the pass makes maps only."""
        if self.params.faces:
            return [self._face_heatmap(img, f) for img, f in zip(images, faces)]
        return self._cam(images, scores=False)[1]

    # ---- faces
    def _score_faces(self, samples: Sequence[Sample], with_maps: bool):
        from .faces import FaceBox, _fit_for, crop_with_margin, detect_faces

        crops, owners, boxes_per = [], [], []
        for n, sample in enumerate(samples):
            check_cancelled(self.cancel)
            boxes = detect_faces(sample.image)
            boxes_per.append(boxes)
            for box in boxes:
                crops.append(_fit_for(self.detector, crop_with_margin(sample.image, box, self.params.face_margin)))
                owners.append(n)
        faces: list[list[dict]] = [[] for _ in samples]
        maps: list[Optional[np.ndarray]] = [None] * len(samples)
        if crops:
            if with_maps:
                probs, crop_maps = self._cam(crops)
            else:
                probs = self.detector.predict_proba(crops, batch_size=self.params.batch_size, cancel=self.cancel)
                crop_maps = None
            cursor = {n: 0 for n in range(len(samples))}
            for c, (owner, prob) in enumerate(zip(owners, probs)):
                box: FaceBox = boxes_per[owner][cursor[owner]]
                cursor[owner] += 1
                faces[owner].append({"box": box.to_dict(), "score": float(prob)})
                if crop_maps is not None:
                    maps[owner] = self._paste(maps[owner], samples[owner].image.shape, box, crop_maps[c])
        scores = [max(f["score"] for f in fl) if fl else None for fl in faces]
        if with_maps:
            maps = [m if m is not None else np.zeros(s.image.shape[:2], np.float32) for m, s in zip(maps, samples)]
        return scores, faces, maps

    def _paste(self, canvas: Optional[np.ndarray], shape, box, crop_map: np.ndarray) -> np.ndarray:
        canvas = np.zeros(shape[:2], np.float32) if canvas is None else canvas
        x0, y0, x1, y1 = crop_rect(shape, box, self.params.face_margin)
        resized = cv2.resize(crop_map.astype(np.float32), (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
        canvas[y0:y1, x0:x1] = np.maximum(canvas[y0:y1, x0:x1], resized)
        return canvas

    def _face_heatmap(self, image: np.ndarray, faces: list[dict]) -> np.ndarray:
        from .faces import FaceBox, _fit_for, crop_with_margin

        canvas = np.zeros(image.shape[:2], np.float32)
        boxes = [FaceBox(**f["box"]) for f in faces]
        if not boxes:
            return canvas
        crops = [_fit_for(self.detector, crop_with_margin(image, b, self.params.face_margin)) for b in boxes]
        _, maps = self._cam(crops, scores=False)
        for box, crop_map in zip(boxes, maps):
            canvas = self._paste(canvas, image.shape, box, crop_map)
        return canvas


def image_samples(media) -> Iterator[Sample]:
    from ..media.images import decode_image

    # Intake already enforced the pixel cap and the accepted formats for this file.
    yield Sample(0, 0.0, decode_image(media.path, max_pixels=10**12, accepted=(media.format,)).rgb)


def video_samples(media, fps: float, cancel: Optional[CancelToken], start: float = 0.0,
                   end: Optional[float] = None) -> Iterator[Sample]:
    from ..media.video import iter_frames

    for frame in iter_frames(media.path, fps, start=start, end=end, cancel=cancel, info=media.video):
        yield Sample(frame.index, frame.time, frame.image)


def reporting(samples: Iterator[Sample], total: int, share: float,
               progress: ProgressCallback) -> Iterator[Sample]:
    for done, sample in enumerate(samples, 1):
        progress(share * min(1.0, (done - 0.5) / max(total, 1)), f"Frame {done}/{total} at {sample.time:.1f} s")
        yield sample


def chunks(items: Iterator, size: int, max_pixels: int = 0, image=lambda item: item.image) -> Iterator[list]:
    """Lists of at most ``size`` items, and of at most ``max_pixels`` frame pixels (one item at least)."""
    chunk: list = []
    pixels = 0
    for item in items:
        frame_pixels = int(np.prod(image(item).shape[:2]))
        if chunk and max_pixels and pixels + frame_pixels > max_pixels:
            yield chunk
            chunk, pixels = [], 0
        chunk.append(item)
        pixels += frame_pixels
        if len(chunk) >= size:
            yield chunk
            chunk, pixels = [], 0
    if chunk:
        yield chunk
