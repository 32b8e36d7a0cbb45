"""Image transformations that may undo a protection, in differentiable form for expectation over
transformation (EOT) during the attack and in 8-bit form for the robustness metrics."""

from __future__ import annotations

import io
import math
import random
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .convert import image_to_tensor, tensor_to_image

TransformKind = Literal["identity", "jpeg", "resize", "blur"]
TRANSFORM_KINDS: tuple[str, ...] = ("identity", "jpeg", "resize", "blur")
# Ranges sampled by the robust (EOT) attack.
JPEG_QUALITY_RANGE = (50, 95)
RESIZE_SCALE_RANGE = (0.5, 0.9)
BLUR_SIGMA_RANGE = (0.5, 2.0)


def jpeg_compress(x: torch.Tensor, quality: int) -> torch.Tensor:
    """Real JPEG encode/decode of each RGB image of a [-1, 1] batch (not differentiable)."""
    if x.shape[1] != 3:
        raise ValueError(f"JPEG needs 3-channel images, got {x.shape[1]} channels")
    out = []
    for image in tensor_to_image(x.detach()):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=int(quality))
        buffer.seek(0)
        out.append(np.asarray(Image.open(buffer).convert("RGB")))
    return image_to_tensor(np.stack(out)).to(device=x.device, dtype=x.dtype)


def jpeg_bpda(x: torch.Tensor, quality: int) -> torch.Tensor:
    """Straight-through JPEG (BPDA): the real codec in the forward pass, identity gradient backwards."""
    return x + (jpeg_compress(x, quality) - x).detach()


def resize_roundtrip(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Down-scale by ``scale`` (anti-aliased) and back up to the original size; differentiable."""
    h, w = x.shape[-2:]
    small = (max(1, round(h * scale)), max(1, round(w * scale)))
    down = F.interpolate(x, size=small, mode="bilinear", align_corners=False, antialias=True)
    return F.interpolate(down, size=(h, w), mode="bilinear", align_corners=False)


def gaussian_kernel(sigma: float, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=dtype)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    return kernel / kernel.sum()


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur (depthwise convs, reflected borders); differentiable."""
    kernel = gaussian_kernel(sigma, x.dtype).to(x.device)
    r, c = kernel.numel() // 2, x.shape[1]
    mode = "reflect" if r < min(x.shape[-2:]) else "replicate"  # reflect needs the pad below the image size
    y = F.pad(x, (r, r, r, r), mode=mode)
    y = F.conv2d(y, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(y, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


@dataclass(frozen=True)
class ImageTransform:
    """One concrete transformation: JPEG quality, resize scale or blur sigma in ``param``."""

    kind: TransformKind
    param: float = 0.0

    @property
    def name(self) -> str:
        if self.kind == "identity":
            return "identity"
        return {"jpeg": f"jpeg{int(self.param)}", "resize": f"resize{self.param:g}",
                "blur": f"blur{self.param:g}"}[self.kind]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Differentiable (JPEG straight-through) application to a [-1, 1] batch."""
        if self.kind == "jpeg":
            return jpeg_bpda(x, int(self.param))
        if self.kind == "resize":
            return resize_roundtrip(x, self.param)
        if self.kind == "blur":
            return gaussian_blur(x, self.param)
        return x

    def apply_uint8(self, image: np.ndarray) -> np.ndarray:
        """The same transformation on an 8-bit HWC image, result rounded back to 8 bits."""
        with torch.no_grad():
            return tensor_to_image(self(image_to_tensor(image)))[0]


def sample_transform(kind: str, rng: random.Random) -> ImageTransform:
    if kind == "jpeg":
        return ImageTransform("jpeg", rng.randint(*JPEG_QUALITY_RANGE))
    if kind == "resize":
        return ImageTransform("resize", rng.uniform(*RESIZE_SCALE_RANGE))
    if kind == "blur":
        return ImageTransform("blur", rng.uniform(*BLUR_SIGMA_RANGE))
    if kind == "identity":
        return ImageTransform("identity")
    raise ValueError(f"unknown transform kind {kind!r}; known: {', '.join(TRANSFORM_KINDS)}")


def sample_eot(kinds: tuple[str, ...], rng: random.Random) -> list[ImageTransform]:
    """A fresh random instance of each requested kind (one EOT step)."""
    return [sample_transform(kind, rng) for kind in kinds]


ROBUSTNESS_TRANSFORMS: tuple[ImageTransform, ...] = (
    ImageTransform("jpeg", 95), ImageTransform("jpeg", 75), ImageTransform("jpeg", 50),
    ImageTransform("resize", 0.5), ImageTransform("blur", 1.5),
)
