"""Building blocks shared by the generator families, and the common generator interface."""

from __future__ import annotations

from typing import Any, ClassVar, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F


class PerImageInstanceNorm2d(nn.InstanceNorm2d):
    """InstanceNorm that keeps running-stat buffers (so released keys load) but never uses or updates them.

    StarGAN's and vipermu-GANimation's official test code never calls ``eval()``, so every image is normalised
    with its own statistics. Stock ``InstanceNorm2d`` with ``track_running_stats=False`` would still update the
    buffers in place when they exist, so the forward pass passes ``None`` for them explicitly.
    """

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__(num_features, eps=eps, affine=True, track_running_stats=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.instance_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)


def plain_instance_norm(num_features: int) -> nn.InstanceNorm2d:
    """CycleGAN / pix2pixHD norm: no affine parameters and no running stats, hence no state_dict keys."""
    return nn.InstanceNorm2d(num_features, affine=False, track_running_stats=False)


class ResnetBlock(nn.Module):
    """Reflection-padded residual block of CycleGAN and pix2pixHD; keys ``conv_block.{1,5}``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=True),
            plain_instance_norm(dim),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=True),
            plain_instance_norm(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


def expand_condition(c: Optional[torch.Tensor], batch: int, c_dim: int, like: torch.Tensor) -> torch.Tensor:
    """Validate a condition vector and broadcast a single (1, c_dim) or (c_dim,) vector over the batch."""
    if c is None:
        raise ValueError(f"this generator needs a condition vector of length {c_dim}")
    c = torch.as_tensor(c).to(device=like.device, dtype=like.dtype)
    if c.dim() == 1:
        c = c.unsqueeze(0)
    if c.dim() != 2 or c.shape[1] != c_dim or c.shape[0] not in (1, batch):
        raise ValueError(f"condition must have shape ({batch}, {c_dim}) or (1, {c_dim}), got {tuple(c.shape)}")
    return c.expand(batch, c_dim)


def tile_condition(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Concatenate the condition, tiled over H x W, after the image channels (StarGAN / GANimation input)."""
    maps = c.view(c.shape[0], c.shape[1], 1, 1).expand(-1, -1, x.shape[2], x.shape[3])
    return torch.cat([x, maps], dim=1)


class TranslationGenerator(nn.Module):
    """Common interface: ``generate(x, c)`` maps a [-1, 1] batch to the final [-1, 1] image.

    Subclasses set ``family`` and keep their frozen configuration dataclass in ``self.config``.
    """

    family: ClassVar[str] = ""
    config: Any

    @property
    def conditional(self) -> bool:
        return self.c_dim > 0

    @property
    def c_dim(self) -> int:
        return int(getattr(self.config, "c_dim", 0))

    @property
    def condition_names(self) -> tuple[str, ...]:
        return tuple(f"c{i}" for i in range(self.c_dim))

    @property
    def native_size(self) -> tuple[int, int]:
        """(H, W) the released model was trained and tested at."""
        raise NotImplementedError

    @property
    def size_multiple(self) -> int:
        """Input H and W must be multiples of this (stride-2 stages must line up)."""
        return 4

    @property
    def input_channels(self) -> int:
        return 3

    def generate(self, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        raise NotImplementedError
