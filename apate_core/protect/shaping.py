"""Perceptual shaping of a protection: the budget ε stays the hard L∞ bound, but each pixel may use only the
part of it that its neighbourhood hides, and the steps move the three channels together.

Where a change of the same size is seen depends on what is around it: a flat or dark patch shows every grain,
fine texture hides it. SSIM, the yardstick of the goal, says by how much. A perturbation of standard deviation σδ
in a window of pixel standard deviation σ keeps (2σ² + C2) / (2σ² + σδ² + C2) of the window's similarity, so
the amplitude a window tolerates grows in proportion to its contrast σ; a shift d of a window of mean μ keeps
1 − d² / (2μ² + d² + C1), so the tolerated shift grows in proportion to μ (Weber's law: little room in the dark).

The budget map is therefore min(σ / texture_level, μ / dark_level), clipped to [floor, 1]: per channel over a
``window``-pixel square, taken at the channel that tolerates least, then smoothed by the same window. A pixel in a
neighbourhood at least as busy as ``texture_level`` and as bright as ``dark_level`` gets its full ε; a flat or
black one only ``floor`` of it, so that flat areas still carry a little of the protection. The contrast is
eroded first (minimum over the window) so that a flat area next to a strong edge counts as flat: an edge hides
far less than texture, though it fills SSIM's window.

The step replaces sign(grad) (an independent ±1 per channel: coloured speckle) by a blend of the sign of the
gradient's luminance component (its projection on (1, 1, 1)/√3, the same ±1 for all three channels) and, with
weight ``chroma``, the per-channel sign: (1 − chroma)·sign(Σ_c grad) + chroma·sign(grad). Like sign() it is
piecewise constant, so float noise in near-zero gradients flips a step no more often than it does today.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Shaping:
    """How the perturbation is hidden. Levels are on the 0..1 scale of a channel (0.1 = 25.5/255)."""

    enabled: bool = True
    # A pixel whose neighbourhood has a channel standard deviation of texture_level gets its full ε (less below).
    texture_level: float = 0.03
    # A pixel whose neighbourhood has a mean of dark_level gets its full ε as far as brightness goes (less below).
    dark_level: float = 0.1
    floor: float = 0.2  # the smallest fraction of ε anywhere (flat, dark areas)
    window: int = 7  # side of the square neighbourhood (SSIM's own default window is 7 px)
    chroma: float = 0.25  # weight of the per-channel sign against the luminance sign (0: grey steps, 1: plain sign)

    def __post_init__(self) -> None:
        if not (self.texture_level > 0 and self.dark_level > 0 and 0 < self.floor <= 1):
            raise ValueError("need texture_level > 0, dark_level > 0 and 0 < floor <= 1")
        if self.window < 1 or self.window % 2 == 0:
            raise ValueError(f"window must be a positive odd number of pixels, got {self.window}")
        if not 0 <= self.chroma <= 1:
            raise ValueError(f"chroma must lie in [0, 1], got {self.chroma}")


NO_SHAPING = Shaping(enabled=False)


def _box(x: torch.Tensor, k: int) -> torch.Tensor:
    """Mean over a k x k window (separable; edges average what lies inside the image)."""
    p = k // 2
    x = F.avg_pool2d(x, (1, k), stride=1, padding=(0, p), count_include_pad=False)
    return F.avg_pool2d(x, (k, 1), stride=1, padding=(p, 0), count_include_pad=False)


def _erode(x: torch.Tensor, k: int) -> torch.Tensor:
    """Minimum over a k x k window (separable)."""
    p = k // 2
    x = -F.max_pool2d(-x, (1, k), stride=1, padding=(0, p))
    return -F.max_pool2d(-x, (k, 1), stride=1, padding=(p, 0))


@torch.no_grad()
def budget_map(x: torch.Tensor, shaping: Shaping) -> torch.Tensor:
    """x: (B, 3, H, W) in [-1, 1] (the clean image).
    Returns (B, 1, H, W) in (0, 1]: the fraction of ε each pixel may move."""
    b, _, h, w = x.shape
    if not shaping.enabled:
        return torch.ones(b, 1, h, w, dtype=x.dtype, device=x.device)
    k = shaping.window
    v = (x.detach().float().clamp(-1, 1) + 1) / 2
    mean = _box(v, k)
    std = (_box(v * v, k) - mean * mean).clamp_min(0).sqrt()
    allowed = torch.minimum(_erode(std, k) / shaping.texture_level, mean / shaping.dark_level).amin(1, keepdim=True)
    budget = _box(allowed.clamp(shaping.floor, 1.0), k)
    return budget.clamp(shaping.floor, 1.0).to(x.dtype)


def shape_step(grad: torch.Tensor, shaping: Shaping) -> torch.Tensor:
    """The step direction replacing grad.sign(): (B, 3, H, W) in [-1, 1], channel-correlated (mostly luminance)."""
    if not shaping.enabled:
        return grad.sign()
    luma = grad.sum(1, keepdim=True).sign()  # the sign of the projection on (1, 1, 1)/√3, for every channel
    return (1 - shaping.chroma) * luma + shaping.chroma * grad.sign()


def project(X: torch.Tensor, x: torch.Tensor, epsilon: float, budget: torch.Tensor) -> torch.Tensor:
    """Clamp X into x ± ε·budget (per pixel) and into [-1, 1]; detached."""
    bound = epsilon * budget
    return torch.clamp(x + torch.clamp(X - x, -bound, bound), -1.0, 1.0).detach()
