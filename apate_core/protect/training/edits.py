"""Deterministic photo edits that the in-house Protect generators learn to reproduce.

Every edit is a plain function of the image (no learning, no randomness): ``apply_edit(name, x)`` takes a float
batch in [-1, 1] (B, 3, H, W) and returns the edited batch in [-1, 1]; ``edit_image(name, image)`` does the same
for a uint8 (H, W, 3) array. Edits that look at neighbourhoods (blur, sharpen, edges, stylisations) pad by
reflection, so a crop is edited exactly as the network sees it.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

LUMA = (0.299, 0.587, 0.114)
SEPIA = ((0.393, 0.769, 0.189), (0.349, 0.686, 0.168), (0.272, 0.534, 0.131))
BLUR_SIGMA = 2.0
SHARPEN_SIGMA, SHARPEN_AMOUNT = 1.5, 1.5
WARM_GAIN = (1.15, 1.02, 0.80)  # per-channel RGB gains on [0, 1]
COOL_GAIN = (0.80, 1.0, 1.18)
POSTER_LEVELS = 5
AUTOLEVEL_STD = 0.5  # on the [-1, 1] scale
EMBOSS_GAIN = 1.5  # relief per unit of luma difference on [0, 1]


def _to01(x: torch.Tensor) -> torch.Tensor:
    return (x + 1.0) / 2.0


def _from01(x: torch.Tensor) -> torch.Tensor:
    return x.clamp(0.0, 1.0) * 2.0 - 1.0


def luma(x01: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) Rec.601 luma of a [0, 1] RGB batch."""
    w = x01.new_tensor(LUMA).view(1, 3, 1, 1)
    return (x01 * w).sum(dim=1, keepdim=True)


def gaussian_blur01(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with reflection padding, radius ceil(3 sigma)."""
    radius = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def sobel_magnitude(x01: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) Sobel gradient magnitude of the luma, normalised so a full 0->1 step edge gives about 1."""
    y = F.pad(luma(x01), (1, 1, 1, 1), mode="reflect")
    kx = y.new_tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 4.0
    gx = F.conv2d(y, kx.view(1, 1, 3, 3))
    gy = F.conv2d(y, kx.t().contiguous().view(1, 1, 3, 3))
    return torch.sqrt(gx * gx + gy * gy + 1e-12)


def autolevel(x: torch.Tensor) -> torch.Tensor:
    """Grey-world white balance + auto-contrast over the whole input: each channel's mean moved to mid-grey,
    then one common scale so the overall standard deviation is ``AUTOLEVEL_STD``; clipped.

    The in-house models learn ``edit(autolevel(x))``: InstanceNorm generators with reflection padding (CycleGAN,
    pix2pixHD) give exactly the same output for x and a * x + b_channel (a > 0), so they cannot know the absolute
    per-channel levels of their input, and StarGAN/GANimation (zero padding) see them only through the borders.
    """
    mu = x.mean(dim=(2, 3), keepdim=True)
    sd = (x - mu).pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt().clamp_min(1e-3)
    return ((x - mu) * (AUTOLEVEL_STD / sd)).clamp(-1.0, 1.0)


def grayscale(x: torch.Tensor) -> torch.Tensor:
    return _from01(luma(_to01(x)).expand(-1, 3, -1, -1))


def sepia(x: torch.Tensor) -> torch.Tensor:
    m = x.new_tensor(SEPIA)
    return _from01(torch.einsum("oc,bchw->bohw", m, _to01(x)))


def blur(x: torch.Tensor) -> torch.Tensor:
    return _from01(gaussian_blur01(_to01(x), BLUR_SIGMA))


def sharpen(x: torch.Tensor) -> torch.Tensor:
    x01 = _to01(x)
    return _from01(x01 + SHARPEN_AMOUNT * (x01 - gaussian_blur01(x01, SHARPEN_SIGMA)))


def _gain(x: torch.Tensor, gains: tuple[float, float, float]) -> torch.Tensor:
    return _from01(_to01(x) * x.new_tensor(gains).view(1, 3, 1, 1))


def warm(x: torch.Tensor) -> torch.Tensor:
    return _gain(x, WARM_GAIN)


def cool(x: torch.Tensor) -> torch.Tensor:
    return _gain(x, COOL_GAIN)


def invert(x: torch.Tensor) -> torch.Tensor:
    """Photographic negative."""
    return -x


def emboss(x: torch.Tensor) -> torch.Tensor:
    """Grey relief: mid-grey plus the luma's diagonal derivative (light from the top left), 3 equal channels."""
    y = F.pad(luma(_to01(x)), (1, 1, 1, 1), mode="reflect")
    k = y.new_tensor([[-2.0, -1.0, 0.0], [-1.0, 0.0, 1.0], [0.0, 1.0, 2.0]]) / 2.0
    return _from01((0.5 + EMBOSS_GAIN * F.conv2d(y, k.view(1, 1, 3, 3))).expand(-1, 3, -1, -1))


def edge_map(x: torch.Tensor) -> torch.Tensor:
    """White edges on black, 3 equal channels: min(1, 2 * Sobel magnitude)."""
    return _from01((2.0 * sobel_magnitude(_to01(x))).clamp(0, 1).expand(-1, 3, -1, -1))


def cartoon(x: torch.Tensor) -> torch.Tensor:
    """Stylised 'cartoon' look: smoothed, saturated colours posterised to a few soft levels, dark outlines."""
    x01 = gaussian_blur01(_to01(x), 1.0)
    grey = luma(x01)
    x01 = (grey + 1.4 * (x01 - grey)).clamp(0, 1)  # saturate
    scaled = x01 * (POSTER_LEVELS - 1)
    frac = scaled - scaled.floor()
    soft = scaled.floor() + torch.sigmoid((frac - 0.5) * 12.0)  # smooth staircase: learnable, still posterised
    poster = soft / (POSTER_LEVELS - 1)
    ink = (3.0 * sobel_magnitude(gaussian_blur01(_to01(x), 0.7)) - 0.15).clamp(0, 1)
    return _from01(poster * (1.0 - ink))


def sketch(x: torch.Tensor) -> torch.Tensor:
    """Stylised 'colour pencil sketch': paper-white wash of faded colours with dark graphite strokes on edges."""
    x01 = _to01(x)
    grey = luma(x01)
    faded = 0.55 + 0.45 * (grey + 0.35 * (x01 - grey))  # light, low-saturation wash
    strokes = (4.0 * sobel_magnitude(x01)).clamp(0, 1)
    paper = faded * (1.0 - 0.85 * strokes)
    return _from01(paper)


EDITS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "grayscale": grayscale, "sepia": sepia, "blur": blur, "sharpen": sharpen, "warm": warm, "cool": cool,
    "invert": invert, "emboss": emboss, "edges": edge_map, "cartoon": cartoon, "sketch": sketch, "autolevel": autolevel,
}
# The conditional models' domains: warm and cool are image-wide colour casts, which a condition passed only
# through the zero-padded borders of per-image-normalised layers did not steer (trained, they came out alike
# in StarGAN, barely visible in GANimation); a negative and a relief are local edits both learn apart.
LOCAL_EDITS = ("grayscale", "sepia", "blur", "sharpen", "invert", "emboss")

EDIT_DESCRIPTIONS = {
    "grayscale": "Rec.601 luma copied to R, G and B",
    "sepia": "classic sepia colour matrix (0.393 0.769 0.189 / 0.349 0.686 0.168 / 0.272 0.534 0.131), clipped",
    "blur": f"Gaussian blur, sigma {BLUR_SIGMA} px (reflection padding)",
    "sharpen": f"unsharp mask, amount {SHARPEN_AMOUNT}, sigma {SHARPEN_SIGMA} px, clipped",
    "warm": f"RGB gains {WARM_GAIN}, clipped (raises R/B)",
    "cool": f"RGB gains {COOL_GAIN}, clipped (lowers R/B)",
    "invert": "photographic negative (x -> -x on [-1, 1])",
    "emboss": f"grey relief: 0.5 + {EMBOSS_GAIN} x the luma's diagonal derivative (light from the top left)",
    "edges": "Sobel magnitude of the luma x2, clipped, white on black, 3 channels",
    "cartoon": f"blur sigma 1, saturation x1.4, soft posterisation to {POSTER_LEVELS} levels, dark Sobel outlines",
    "sketch": "faded light colour wash with dark strokes on Sobel edges (colour pencil sketch)",
    "autolevel": f"grey-world white balance + auto-contrast to std {AUTOLEVEL_STD} on [-1, 1], over the whole input",
}


def apply_edit(name: str, x: torch.Tensor) -> torch.Tensor:
    """Edit a [-1, 1] (B, 3, H, W) batch (or a (3, H, W) image) with the named edit; no gradients needed."""
    if name not in EDITS:
        raise KeyError(f"unknown edit {name!r}; known: {', '.join(EDITS)}")
    single = x.dim() == 3
    out = EDITS[name](x.unsqueeze(0) if single else x)
    return out[0] if single else out


def blend_edits(x: torch.Tensor, intensities: torch.Tensor, names: tuple[str, ...] = LOCAL_EDITS) -> torch.Tensor:
    """Continuous combination: x + sum_i c_i (edit_i(x) - x), clipped; c (B, len(names)) in [0, 1].

    c = 0 is the identity, a one-hot c is that edit, intermediate values interpolate linearly.
    """
    c = torch.as_tensor(intensities, dtype=x.dtype, device=x.device)
    c = c.view(1, -1).expand(x.shape[0], -1) if c.dim() == 1 else c
    if c.shape[1] != len(names):
        raise ValueError(f"expected {len(names)} intensities, got {c.shape[1]}")
    out = x.clone()
    for i, name in enumerate(names):
        w = c[:, i].view(-1, 1, 1, 1)
        if bool((w != 0).any()):
            out = out + w * (apply_edit(name, x) - x)
    return out.clamp(-1.0, 1.0)


def edit_image(name: str, image: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) -> edited uint8 (H, W, 3)."""
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) image, got {arr.dtype} {arr.shape}")
    x = torch.from_numpy(arr.astype(np.float32)).permute(2, 0, 1) / 127.5 - 1.0
    with torch.no_grad():
        y = apply_edit(name, x)
    return np.clip(np.rint((y.permute(1, 2, 0).numpy() + 1.0) * 127.5), 0, 255).astype(np.uint8)
