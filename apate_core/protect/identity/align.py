"""Faces found by MTCNN and aligned by their five landmarks into the descriptor's 150x150 crop.

The alignment is a similarity transform (rotation, uniform scale, shift) estimated by least squares
(scikit-image's Umeyama) from the five MTCNN landmarks to a fixed template. ``warp_faces`` applies it to a
full-resolution [-1, 1] photo tensor *differentiably*: the cloak optimises the photo's own pixels through
the same warp that re-detection applies to the protected file. Large faces are first reduced with an
anti-aliased resize so every photo pixel near the face receives gradient, not only the bilinear taps.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from skimage.transform import SimilarityTransform

CROP = 150  # the descriptor's input side
# Where the five landmarks (eyes, nose tip, mouth corners; as seen in the image) land in the 150x150 crop:
# the ArcFace 112x112 template scaled to 150 px and raised by 20 px. Chosen on the package sample photos
# (scripts/face_descriptor_table.py): the placement where the descriptor best separates people (obama against
# biden 0.80, same person 0.41 median); the plain ArcFace placement compressed every distance to about 0.5.
_ARCFACE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                         [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float64)
TEMPLATE_SCALE = 1.0  # fraction of the crop the ArcFace template's frame covers
TEMPLATE_SHIFT_Y = -20.0  # pixels down (negative: up)
TEMPLATE = (_ARCFACE_112 / 112.0 - 0.5) * CROP * TEMPLATE_SCALE + np.array([CROP / 2, CROP / 2 + TEMPLATE_SHIFT_Y])
MIN_FACE_PROB = 0.90
MIN_FACE_SIDE = 40  # pixels: smaller faces are too small to recognise, so nothing to cloak
FACE_SEARCH_SIDE = 1280  # MTCNN searches a copy at most this large: small faces in big photos still count


@dataclass(frozen=True)
class AlignedFace:
    """One face: MTCNN box (x0, y0, x1, y1) and landmarks in photo pixels, and the crop-to-photo transform."""

    box: tuple[float, float, float, float]
    landmarks: np.ndarray  # (5, 2)
    prob: float
    matrix: np.ndarray  # (2, 3): photo (x, y) = matrix @ (u, v, 1) for crop pixel (u, v)

    @property
    def side(self) -> float:
        return float(min(self.box[2] - self.box[0], self.box[3] - self.box[1]))

    def to_dict(self) -> dict:
        return {"box": [round(float(v), 1) for v in self.box], "prob": round(float(self.prob), 4),
                "landmarks": np.round(self.landmarks, 1).tolist()}


def alignment_matrix(landmarks: np.ndarray) -> np.ndarray:
    """Least-squares similarity taking the template's points to the face's landmarks (crop -> photo)."""
    tform = SimilarityTransform.from_estimate(TEMPLATE, np.asarray(landmarks, dtype=np.float64))
    if not tform:
        raise ValueError(f"degenerate landmarks: no similarity transform ({tform})")
    return tform.params[:2].copy()


def find_faces(rgb: np.ndarray, *, min_prob: float = MIN_FACE_PROB, min_side: float = MIN_FACE_SIDE,
               max_side: Optional[int] = None) -> list[AlignedFace]:
    """Faces of an RGB uint8 photo worth cloaking, largest first (MTCNN searched at <= max_side pixels)."""
    from ...detect import mtcnn

    found = mtcnn.detect(rgb, max_side=max_side or FACE_SEARCH_SIDE)
    faces = []
    for box, prob, marks in zip(found.boxes, found.probs, found.landmarks):
        face = AlignedFace(tuple(float(v) for v in box), marks.astype(np.float64), float(prob),
                           alignment_matrix(marks))
        if face.prob >= min_prob and face.side >= min_side:
            faces.append(face)
    return sorted(faces, key=lambda f: -f.side)


# --------------------------------------------------------------------------------------------- warping
def jitter_matrix(matrix: np.ndarray, rng: random.Random, *, strength: float = 1.0, shift: float = 4.0,
                  scale: float = 0.06, rotation_deg: float = 6.0) -> np.ndarray:
    """The alignment disturbed by a random similarity about the crop centre (expectation over alignments:
    re-detection of the protected photo never finds exactly the same landmarks)."""
    shift, scale, rotation_deg = shift * strength, scale * strength, rotation_deg * strength
    theta = math.radians(rng.uniform(-rotation_deg, rotation_deg))
    s = 1.0 + rng.uniform(-scale, scale)
    c = CROP / 2
    rot = s * np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    offset = np.array([c, c]) - rot @ np.array([c, c]) + np.array([rng.uniform(-shift, shift),
                                                                     rng.uniform(-shift, shift)])
    jitter = np.vstack([np.hstack([rot, offset[:, None]]), [0, 0, 1]])
    return (np.vstack([matrix, [0, 0, 1]]) @ jitter)[:2]


def _crop_grid(matrix: np.ndarray) -> np.ndarray:
    """Photo (x, y) of every crop pixel centre: (CROP, CROP, 2)."""
    v, u = np.meshgrid(np.arange(CROP, dtype=np.float64), np.arange(CROP, dtype=np.float64), indexing="ij")
    pts = np.stack([u, v, np.ones_like(u)], axis=-1)
    return pts @ matrix.T


def _warp_one(photo: torch.Tensor, matrix: np.ndarray) -> torch.Tensor:
    """(1, C, H, W) -> (1, C, CROP, CROP) through ``matrix``, reducing a large face first (anti-aliased)."""
    h, w = photo.shape[-2:]
    points = _crop_grid(matrix)
    x0, y0 = (max(0, int(math.floor(points[..., i].min())) - 2) for i in (0, 1))
    x1 = min(w, int(math.ceil(points[..., 0].max())) + 3)
    y1 = min(h, int(math.ceil(points[..., 1].max())) + 3)
    if x1 - x0 < 2 or y1 - y0 < 2:  # the face lies outside the photo: sample the border
        x0, y0, x1, y1 = 0, 0, w, h
    roi = photo[..., y0:y1, x0:x1]
    points = points - np.array([x0, y0])
    reduce = math.sqrt(abs(np.linalg.det(matrix[:, :2])))  # photo pixels per crop pixel
    if reduce > 1.25:
        small = (max(2, round(roi.shape[-2] / reduce)), max(2, round(roi.shape[-1] / reduce)))
        factors = np.array([small[1] / roi.shape[-1], small[0] / roi.shape[-2]])
        roi = F.interpolate(roi, size=small, mode="bilinear", align_corners=False, antialias=True)
        points = (points + 0.5) * factors - 0.5
    rh, rw = roi.shape[-2:]
    grid = np.stack([(2 * points[..., 0] + 1) / rw - 1, (2 * points[..., 1] + 1) / rh - 1], axis=-1)
    grid_t = torch.from_numpy(grid).to(device=photo.device, dtype=photo.dtype)[None]
    return F.grid_sample(roi, grid_t, mode="bilinear", padding_mode="border", align_corners=False)


def warp_faces(photo: torch.Tensor, matrices: Sequence[np.ndarray]) -> torch.Tensor:
    """Aligned crops (F, C, 150, 150) of a (1, C, H, W) photo tensor, one per crop-to-photo matrix.

    Differentiable with respect to ``photo``; values keep the photo's scale (e.g. [-1, 1])."""
    if photo.dim() != 4 or photo.shape[0] != 1:
        raise ValueError(f"expected one photo as a (1, C, H, W) tensor, got {tuple(photo.shape)}")
    if not matrices:
        return photo.new_zeros((0, photo.shape[1], CROP, CROP))
    return torch.cat([_warp_one(photo, np.asarray(m, dtype=np.float64)) for m in matrices])


def to_descriptor_input(crops: torch.Tensor) -> torch.Tensor:
    """[-1, 1] crops -> the descriptor's 0..255 RGB scale."""
    return (crops + 1.0) * 127.5


def aligned_crops(rgb: np.ndarray, faces: Sequence[AlignedFace]) -> torch.Tensor:
    """The descriptor input (F, 3, 150, 150) on the 0..255 scale for faces of an RGB uint8 photo."""
    photo = torch.from_numpy(np.array(rgb, copy=True)).permute(2, 0, 1)[None].float() / 127.5 - 1.0
    with torch.no_grad():
        return to_descriptor_input(warp_faces(photo, [f.matrix for f in faces]))
