"""Identity cloaking: an L∞-bounded perturbation that moves every face's descriptor past the match threshold.

Maximise the distance between the descriptor of each face in the protected photo and the descriptor of the
same face in the original, with X <- project(X + a * shape_step(grad)). The perturbation lives at the photo's
own resolution and reaches the descriptor through the differentiable alignment warp. Each step averages the
gradient over random re-alignments (small shifts, scales and rotations) and random JPEG, resize and blur of the
face region (expectation over transformation), so the effect survives re-detection, re-alignment and common
re-encoding of the protected file. The perceptual shaping (``..shaping``) keeps it out of flat and dark areas.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch

from ...progress import CancelToken, ProgressCallback, check_cancelled, no_progress
from ..shaping import Shaping, budget_map, project, shape_step
from ..transforms import sample_transform
from .align import AlignedFace, jitter_matrix, to_descriptor_input, warp_faces
from .descriptor import FaceDescriptorNet

ROI_MARGIN = 0.6  # the face region attacked and transformed: the crop's frame grown by this fraction
EOT_KINDS = ("identity", "jpeg", "resize", "blur")
IDENTITY_SHAPING = Shaping(floor=0.6)


@dataclass(frozen=True)
class CloakConfig:
    """epsilon and step on the [-1, 1] scale (4/255 of a pixel is 4 / 127.5 = 0.0314)."""

    epsilon: float = 4 / 127.5
    iterations: int = 60
    step_size: Optional[float] = None  # the first step; None: epsilon / 3. Steps shrink on a cosine to a tenth
    eot_samples: int = 2  # random re-alignments (and transforms) averaged per step
    stop_distance: float = 0.8  # done once every face's worst sampled distance passes this (threshold 0.6)
    # Faces are mostly smooth skin, which the generic shaping would leave almost untouched: a higher floor.
    shaping: Shaping = IDENTITY_SHAPING
    momentum: float = 0.9  # MI-FGSM: steps follow the running mean of normalised gradients (EOT noise averages out)
    jitter: float = 1.0  # scale of the random re-alignments (0: the detected alignment only)
    transforms: tuple[str, ...] = EOT_KINDS  # kinds sampled per face and step (see ..transforms)
    seed: Optional[int] = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.epsilon <= 0.5:
            raise ValueError(f"epsilon must lie in (0, 0.5] on the [-1, 1] scale, got {self.epsilon}")
        if self.iterations < 1 or self.eot_samples < 1:
            raise ValueError("iterations and eot_samples must be at least 1")

    @property
    def step(self) -> float:
        return self.step_size if self.step_size is not None else self.epsilon / 3

    def step_at(self, i: int) -> float:
        """Large steps first to get far, small ones last to settle inside the sampled transformations."""
        return self.step * (0.1 + 0.45 * (1 + math.cos(math.pi * i / max(1, self.iterations - 1))))


@dataclass(frozen=True)
class CloakResult:
    protected: torch.Tensor  # (1, 3, H, W) in [-1, 1]
    distances: tuple[float, ...]  # per face, descriptor distance under the unjittered alignment (float pixels)
    iterations: int  # steps taken (fewer than configured when every face passed stop_distance)
    loss_history: tuple[float, ...]


def _roi(face: AlignedFace, height: int, width: int) -> tuple[int, int, int, int]:
    """Pixel box (x0, y0, x1, y1) around the face's crop frame, grown by ROI_MARGIN and clipped."""
    corners = np.array([[0, 0, 1], [150, 0, 1], [0, 150, 1], [150, 150, 1]], dtype=np.float64) @ face.matrix.T
    (x0, y0), (x1, y1) = corners.min(0), corners.max(0)
    gx, gy = (x1 - x0) * ROI_MARGIN / 2, (y1 - y0) * ROI_MARGIN / 2
    return (max(0, int(x0 - gx)), max(0, int(y0 - gy)), min(width, int(math.ceil(x1 + gx))),
            min(height, int(math.ceil(y1 + gy))))


def _shifted(matrix: np.ndarray, x0: int, y0: int) -> np.ndarray:
    out = matrix.copy()
    out[:, 2] -= (x0, y0)
    return out


class _Objective:
    """Summed descriptor distance of every face to its clean descriptor, under sampled transformations."""

    def __init__(self, net: FaceDescriptorNet, x: torch.Tensor, faces: Sequence[AlignedFace]) -> None:
        self.net, self.faces = net, list(faces)
        self.rois = [_roi(f, *x.shape[-2:]) for f in self.faces]
        with torch.no_grad():
            self.clean = self.descriptors(x, [f.matrix for f in self.faces])

    def descriptors(self, X: torch.Tensor, matrices: Sequence[np.ndarray], transforms=None) -> torch.Tensor:
        crops = []
        for i, (matrix, (x0, y0, x1, y1)) in enumerate(zip(matrices, self.rois)):
            region = X[..., y0:y1, x0:x1]
            if transforms is not None:
                region = transforms[i](region)
            crops.append(warp_faces(region, [_shifted(matrix, x0, y0)]))
        return self.net(to_descriptor_input(torch.cat(crops)))

    def distances(self, X: torch.Tensor, matrices: Sequence[np.ndarray], transforms=None) -> torch.Tensor:
        return (self.descriptors(X, matrices, transforms) - self.clean).norm(dim=1)


def cloak_faces(net: FaceDescriptorNet, photo: torch.Tensor, faces: Sequence[AlignedFace],
                config: Optional[CloakConfig] = None, *, progress: Optional[ProgressCallback] = None,
                cancel: Optional[CancelToken] = None) -> CloakResult:
    """Cloak every face of ``photo`` ((1, 3, H, W) in [-1, 1], full resolution) against ``net``."""
    cfg, report = config or CloakConfig(), progress or no_progress
    if photo.dim() != 4 or photo.shape[:2] != (1, 3):
        raise ValueError(f"expected one RGB photo as a (1, 3, H, W) tensor, got {tuple(photo.shape)}")
    x = photo.detach().clamp(-1.0, 1.0)
    if not faces:
        return CloakResult(x, (), 0, ())
    objective = _Objective(net, x, faces)
    budget = budget_map(x, cfg.shaping)
    rng = random.Random(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed if cfg.seed is not None else rng.randrange(2**31))
    start = (torch.rand(x.shape, generator=gen, dtype=x.dtype) * 2 - 1) * cfg.epsilon * 0.5
    X = project(x + start.to(x), x, cfg.epsilon, budget)
    history: list[float] = []
    steps, velocity = 0, torch.zeros_like(x)
    for i in range(cfg.iterations):
        check_cancelled(cancel)
        X = X.detach().requires_grad_(True)
        sampled = []  # descriptors under random re-alignments and transformations of each face region
        for _ in range(cfg.eot_samples):
            matrices = [jitter_matrix(f.matrix, rng, strength=cfg.jitter) for f in faces]
            transforms = [sample_transform(rng.choice(cfg.transforms), rng) for _ in faces]
            sampled.append(objective.descriptors(X, matrices, transforms))
        described = torch.stack(sampled)  # (samples, faces, 128)
        dist = (described - objective.clean).norm(dim=2)
        loss = dist.clamp(max=cfg.stop_distance * 1.5).sum()  # a face far past the goal stops pulling
        (grad,) = torch.autograd.grad(loss, X)
        history.append(float(dist.detach().mean()))
        steps = i + 1
        report(steps / cfg.iterations, f"identity cloak: step {steps}/{cfg.iterations}, "
                                       f"weakest face at distance {float(dist.detach().min()):.2f}")
        if float(dist.detach().min()) >= cfg.stop_distance:
            break  # every face is past the goal under every sampled transformation
        velocity = cfg.momentum * velocity + grad / grad.abs().mean().clamp_min(1e-12)
        X = project(X.detach() + cfg.step_at(i) * shape_step(velocity, cfg.shaping), x, cfg.epsilon, budget)
    X = X.detach()
    with torch.no_grad():
        final = objective.distances(X, [f.matrix for f in faces])
    return CloakResult(X, tuple(float(d) for d in final), steps, tuple(history))
