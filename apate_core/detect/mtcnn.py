"""MTCNN face detection (Zhang et al., 2016): boxes, probabilities and five landmarks per face.

Our own implementation of the three-stage cascade; the pretrained weights are facenet-pytorch's
``pnet.pt``, ``rnet.pt`` and ``onet.pt`` (MIT), taken out of its wheel, hash-checked and converted to
safetensors by ``backbones.py`` (``mtcnn_pnet``, ``mtcnn_rnet``, ``mtcnn_onet``). facenet-pytorch itself
is never installed.

1. P-Net, fully convolutional, over an image pyramid (scales 12/min_face_size x factor^k): every
   12 x 12 window (stride 2) with P(face) >= thresholds[0] is a proposal; NMS per scale (IoU 0.5),
   then over all scales (IoU 0.7); box regression; boxes made square.
2. R-Net on 24 x 24 crops of the proposals (zero padding outside the image): P(face) >= thresholds[1],
   NMS (IoU 0.7), regression, square.
3. O-Net on 48 x 48 crops: P(face) >= thresholds[2], five landmarks, regression, and a final
   suppression of boxes mostly inside a better one (overlap / smaller area > 0.7).

Pixels enter the networks as (RGB - 127.5) / 128. The dense layers were trained on column-major
feature maps (Caffe/TF origin), hence the (x, y) transpose before flattening.

``MTCNN.detect(image, max_side=640)`` is the fast path for video frames: the search runs on a copy
downscaled so its longest side is at most ``max_side`` and the boxes and landmarks are mapped back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np
import torch
from torch import nn

NETS = ("pnet", "rnet", "onet")
BACKBONES = tuple(f"mtcnn_{net}" for net in NETS)
LANDMARKS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")  # left/right as seen in the image
DEFAULT_MAX_SIDE = 640


def _conv(cin: int, cout: int, k: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=k)


def _flatten_column_major(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)


class PNet(nn.Module):
    """12 x 12 proposal network, fully convolutional: (P(face) map, box regression map)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = _conv(3, 10, 3), nn.PReLU(10)
        self.conv2, self.prelu2 = _conv(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = _conv(16, 32, 3), nn.PReLU(32)
        self.conv4_1, self.conv4_2 = _conv(32, 2, 1), _conv(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = nn.functional.max_pool2d(self.prelu1(self.conv1(x)), 2, 2, ceil_mode=True)
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return torch.softmax(self.conv4_1(x), dim=1)[:, 1], self.conv4_2(x)


class RNet(nn.Module):
    """24 x 24 refinement network: (P(face), box regression)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = _conv(3, 28, 3), nn.PReLU(28)
        self.conv2, self.prelu2 = _conv(28, 48, 3), nn.PReLU(48)
        self.conv3, self.prelu3 = _conv(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1, self.dense5_2 = nn.Linear(128, 2), nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = nn.functional.max_pool2d(self.prelu1(self.conv1(x)), 3, 2, ceil_mode=True)
        x = nn.functional.max_pool2d(self.prelu2(self.conv2(x)), 3, 2, ceil_mode=True)
        x = self.prelu4(self.dense4(_flatten_column_major(self.prelu3(self.conv3(x)))))
        return torch.softmax(self.dense5_1(x), dim=1)[:, 1], self.dense5_2(x)


class ONet(nn.Module):
    """48 x 48 output network: (P(face), box regression, landmarks as 5 x then 5 y in box units)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = _conv(3, 32, 3), nn.PReLU(32)
        self.conv2, self.prelu2 = _conv(32, 64, 3), nn.PReLU(64)
        self.conv3, self.prelu3 = _conv(64, 64, 3), nn.PReLU(64)
        self.conv4, self.prelu4 = _conv(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1, self.dense6_2, self.dense6_3 = nn.Linear(256, 2), nn.Linear(256, 4), nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = nn.functional.max_pool2d(self.prelu1(self.conv1(x)), 3, 2, ceil_mode=True)
        x = nn.functional.max_pool2d(self.prelu2(self.conv2(x)), 3, 2, ceil_mode=True)
        x = nn.functional.max_pool2d(self.prelu3(self.conv3(x)), 2, 2, ceil_mode=True)
        x = self.prelu5(self.dense5(_flatten_column_major(self.prelu4(self.conv4(x)))))
        return torch.softmax(self.dense6_1(x), dim=1)[:, 1], self.dense6_2(x), self.dense6_3(x)


@dataclass(frozen=True)
class Faces:
    """Faces found in one image, best first.

    boxes: (n, 4) float32 x0, y0, x1, y1 in pixels of the image given to ``detect``.
    probs: (n,) O-Net P(face). landmarks: (n, 5, 2) x, y in the order of ``LANDMARKS``.
    """

    boxes: np.ndarray
    probs: np.ndarray
    landmarks: np.ndarray

    def __len__(self) -> int:
        return len(self.probs)

    def scaled(self, factor: float) -> "Faces":
        return Faces((self.boxes * factor).astype(np.float32), self.probs,
                     (self.landmarks * factor).astype(np.float32))

    def take(self, keep: np.ndarray) -> "Faces":
        return Faces(self.boxes[keep], self.probs[keep], self.landmarks[keep])

    @staticmethod
    def empty() -> "Faces":
        return Faces(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32))


def weights_installed(directory: Optional[Path] = None) -> bool:
    from . import backbones

    return all(backbones.local_path(name, directory).is_file() for name in BACKBONES)


def load_networks(directory: Optional[Path] = None) -> tuple[PNet, RNet, ONet]:
    """The three networks with their installed weights (strict key match), in eval mode."""
    from . import backbones

    nets = (PNet(), RNet(), ONet())
    for net, name in zip(nets, BACKBONES):
        net.load_state_dict(backbones.load_state(name, directory), strict=True)
        net.requires_grad_(False).eval().to(memory_format=torch.channels_last)  # about 2x faster on a CPU
    return nets


# ------------------------------------------------------------------------------------------------
# Box helpers (numpy, continuous pixel coordinates: a box covers [x0, x1) x [y0, y1))
# ------------------------------------------------------------------------------------------------


def _regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    size = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]] * 2, axis=1)
    return boxes[:, :4] + reg * size


def _square(boxes: np.ndarray) -> np.ndarray:
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    x0, y0 = boxes[:, 0] + (w - side) / 2, boxes[:, 1] + (h - side) / 2
    return np.stack([x0, y0, x0 + side, y0 + side], axis=1)


def _nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by torchvision's NMS, best first."""
    from torchvision.ops import nms

    if not len(boxes):
        return np.zeros(0, np.int64)
    return nms(torch.from_numpy(boxes.astype(np.float32)), torch.from_numpy(scores.astype(np.float32)), iou).numpy()


def _suppress_contained(boxes: np.ndarray, scores: np.ndarray, overlap: float) -> np.ndarray:
    """Greedy suppression by intersection / smaller area: drops part-of-face boxes inside a face."""
    order, keep = np.argsort(-scores), []
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    while len(order):
        i, rest = order[0], order[1:]
        keep.append(i)
        iw = np.clip(np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0]), 0, None)
        ih = np.clip(np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1]), 0, None)
        order = rest[iw * ih / np.maximum(np.minimum(area[i], area[rest]), 1e-6) <= overlap]
    return np.asarray(keep, np.int64)


def _normalise(pixels: np.ndarray) -> torch.Tensor:
    """(n, h, w, 3) uint8/float RGB -> (n, 3, h, w) float32 in about [-1, 1], stored channels-last."""
    pixels = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32)).permute(0, 3, 1, 2)
    return ((pixels - 127.5) / 128.0).contiguous(memory_format=torch.channels_last)


def crop_patches(image: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """(n, size, size, 3) crops of ``boxes`` (rounded to pixels), zero outside the image."""
    height, width = image.shape[:2]
    out = np.zeros((len(boxes), size, size, 3), np.uint8)
    for k, (x0, y0, x1, y1) in enumerate(np.round(boxes[:, :4]).astype(np.int64)):
        if x1 <= x0 or y1 <= y0:
            continue
        patch = np.zeros((y1 - y0, x1 - x0, 3), np.uint8)
        sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        if sx1 > sx0 and sy1 > sy0:
            patch[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = image[sy0:sy1, sx0:sx1]
        out[k] = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    return out


# ------------------------------------------------------------------------------------------------
# The cascade
# ------------------------------------------------------------------------------------------------


class MTCNN:
    """The three-stage detector. ``detect`` takes an RGB uint8 image (H, W, 3)."""

    def __init__(self, nets: Optional[Sequence[nn.Module]] = None, *, min_face_size: int = 20,
                 thresholds: Sequence[float] = (0.6, 0.7, 0.7), factor: float = 0.709,
                 max_side: Optional[int] = DEFAULT_MAX_SIDE, batch: int = 256):
        self.pnet, self.rnet, self.onet = nets if nets is not None else load_networks()
        self.min_face_size = int(min_face_size)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.factor = float(factor)
        self.max_side = max_side
        self.batch = int(batch)

    def scales(self, height: int, width: int) -> list[float]:
        scale, side, out = 12.0 / self.min_face_size, min(height, width), []
        while side * scale >= 12:
            out.append(scale)
            scale *= self.factor
        return out

    def detect(self, image: np.ndarray, *, max_side: Optional[int] = -1) -> Faces:
        """Faces in ``image``. The search runs on a copy whose longest side is at most ``max_side``
        (default: the detector's ``max_side``; None: full size); results are in ``image`` pixels."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError("MTCNN.detect takes an RGB uint8 image of shape (H, W, 3)")
        limit = self.max_side if max_side == -1 else max_side
        longest = max(image.shape[:2])
        if limit is None or longest <= limit:
            return self._cascade(image)
        scale = limit / longest
        size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        return self._cascade(small).scaled(image.shape[1] / size[0])

    @torch.inference_mode()
    def _cascade(self, image: np.ndarray) -> Faces:
        boxes = self._propose(image)
        if len(boxes):
            boxes = self._refine(image, boxes)
        if not len(boxes):
            return Faces.empty()
        return self._output(image, boxes)

    def _propose(self, image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        found = []
        for scale in self.scales(height, width):
            w, h = int(math.ceil(width * scale)), int(math.ceil(height * scale))
            resized = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
            prob, reg = self.pnet(_normalise(resized[None]))
            prob, reg = prob[0].numpy(), reg[0].numpy()
            rows, cols = np.nonzero(prob >= self.thresholds[0])
            if not len(rows):
                continue
            sx, sy = w / width, h / height
            windows = np.stack([2 * cols / sx, 2 * rows / sy, (2 * cols + 12) / sx, (2 * rows + 12) / sy], axis=1)
            cand = np.concatenate([windows, prob[rows, cols, None], reg[:, rows, cols].T], axis=1)
            found.append(cand[_nms(cand[:, :4], cand[:, 4], 0.5)])
        if not found:
            return np.zeros((0, 5), np.float32)
        cand = np.concatenate(found)
        cand = cand[_nms(cand[:, :4], cand[:, 4], 0.7)]
        return np.concatenate([_square(_regress(cand[:, :4], cand[:, 5:9])), cand[:, 4:5]], axis=1)

    def _run(self, net: nn.Module, image: np.ndarray, boxes: np.ndarray, size: int) -> list[np.ndarray]:
        outs = []
        for start in range(0, len(boxes), self.batch):
            patches = _normalise(crop_patches(image, boxes[start:start + self.batch], size))
            outs.append([t.numpy() for t in net(patches)])
        return [np.concatenate(parts) for parts in zip(*outs)]

    def _refine(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        prob, reg = self._run(self.rnet, image, boxes, 24)
        ok = prob >= self.thresholds[1]
        boxes, prob, reg = boxes[ok], prob[ok], reg[ok]
        keep = _nms(boxes[:, :4], prob, 0.7)
        return np.concatenate([_square(_regress(boxes[keep], reg[keep])), prob[keep, None]], axis=1)

    def _output(self, image: np.ndarray, boxes: np.ndarray) -> Faces:
        prob, reg, marks = self._run(self.onet, image, boxes, 48)
        ok = prob >= self.thresholds[2]
        boxes, prob, reg, marks = boxes[ok], prob[ok], reg[ok], marks[ok]
        side = (boxes[:, 2] - boxes[:, 0])[:, None]
        points = np.stack([boxes[:, 0:1] + marks[:, :5] * side, boxes[:, 1:2] + marks[:, 5:] * side], axis=2)
        final = _regress(boxes, reg)
        keep = _suppress_contained(final, prob, 0.7)
        return Faces(final[keep].astype(np.float32), prob[keep].astype(np.float32), points[keep].astype(np.float32))


@lru_cache(maxsize=2)
def _cached_networks(directory: Optional[str]) -> tuple[PNet, RNet, ONet]:
    return load_networks(Path(directory) if directory else None)


def default_mtcnn(directory: Optional[Path] = None, **options) -> MTCNN:
    """An MTCNN over the installed weights (networks loaded once per process)."""
    return MTCNN(_cached_networks(str(directory) if directory else None), **options)


def detect(image: np.ndarray, *, max_side: Optional[int] = DEFAULT_MAX_SIDE, **options) -> Faces:
    """Shortcut: faces of an RGB uint8 image with the installed weights."""
    return default_mtcnn(**options).detect(image, max_side=max_side)
