"""Conversions between 8-bit images and the generators' [-1, 1] tensors, and epsilon-safe quantisation."""

from __future__ import annotations

import math
from typing import Union

import numpy as np
import torch
import torch.nn.functional as F

ArrayOrTensor = Union[np.ndarray, torch.Tensor]
SCALE = 127.5  # one unit of the [-1, 1] scale is 127.5 steps of 8-bit


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) or (B, H, W, 3) -> float32 (B, 3, H, W) in [-1, 1]."""
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim not in (3, 4):
        raise ValueError(f"expected a uint8 (H, W, C) or (B, H, W, C) image, got {arr.dtype} {arr.shape}")
    arr = arr[None] if arr.ndim == 3 else arr
    return torch.from_numpy(arr.astype(np.float32)).permute(0, 3, 1, 2) / SCALE - 1.0


def tensor_to_float255(x: torch.Tensor) -> np.ndarray:
    """[-1, 1] (B, C, H, W) or (C, H, W) -> float64 (B, H, W, C) / (H, W, C) on the 0..255 scale, unrounded."""
    arr = (x.detach().cpu().double() + 1.0) * SCALE
    return arr.permute(*range(arr.dim() - 3), -2, -1, -3).numpy()


def tensor_to_image(x: torch.Tensor) -> np.ndarray:
    """[-1, 1] tensor -> uint8 HWC (batch axis kept when present), rounded to nearest."""
    return np.clip(np.rint(tensor_to_float255(x)), 0, 255).astype(np.uint8)


def epsilon_steps(epsilon: float) -> int:
    """Largest whole number of 8-bit steps within epsilon (in [-1, 1] units); tolerance absorbs float noise."""
    return int(math.floor(epsilon * SCALE + 1e-9))


def quantize_protected(original: np.ndarray, protected: ArrayOrTensor, epsilon: float) -> np.ndarray:
    """Round a protected image to uint8 so that |protected_u8 - original_u8| <= epsilon * 127.5 still holds.

    Rounding alone can push a pixel half a step past the bound; the result is clipped back into
    [original - k, original + k] with k = floor(epsilon * 127.5) whole steps (original is an integer).
    """
    orig = np.asarray(original)
    if orig.dtype != np.uint8:
        raise ValueError(f"original must be uint8, got {orig.dtype}")
    prot = tensor_to_float255(protected) if isinstance(protected, torch.Tensor) else np.asarray(protected, float)
    prot = prot.reshape(orig.shape) if prot.size == orig.size else prot
    if prot.shape != orig.shape:
        raise ValueError(f"protected image shape {prot.shape} differs from original {orig.shape}")
    k = epsilon_steps(epsilon)
    base = orig.astype(np.int32)
    rounded = np.clip(np.rint(prot), base - k, base + k)
    return np.clip(rounded, 0, 255).astype(np.uint8)


def fit_to_model(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Differentiable resize of a full-resolution batch to the generator's input size (identity when equal)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
