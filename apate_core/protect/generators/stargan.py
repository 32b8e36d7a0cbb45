"""StarGAN generator (Choi et al. 2018), key-for-key compatible with the released ``200000-G.ckpt``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn as nn

from .base import PerImageInstanceNorm2d, TranslationGenerator, expand_condition, tile_condition

NormFactory = Callable[[int], nn.Module]

STARGAN_ATTRIBUTES = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")
HAIR_ATTRIBUTES = frozenset({"Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair"})


@dataclass(frozen=True)
class StarGANConfig:
    conv_dim: int = 64
    c_dim: int = 5
    repeat_num: int = 6

    def __post_init__(self) -> None:
        if self.conv_dim < 1 or self.c_dim < 0 or self.repeat_num < 0:
            raise ValueError(f"invalid StarGAN configuration {self}")


class StarResidualBlock(nn.Module):
    """conv3x3 - norm - ReLU - conv3x3 - norm, plus the input; keys ``main.{0,1,3,4}``."""

    def __init__(self, dim: int, norm: NormFactory) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(dim, dim, kernel_size=3, stride=1, padding=1, bias=False),
            norm(dim),
            nn.ReLU(inplace=True),
            nn.Conv2d(dim, dim, kernel_size=3, stride=1, padding=1, bias=False),
            norm(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.main(x)


def star_body(in_channels: int, conv_dim: int, repeat_num: int, norm: NormFactory) -> tuple[list[nn.Module], int]:
    """Layers shared by StarGAN and GANimation up to the last up-sampling ReLU; returns (layers, channels)."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, conv_dim, kernel_size=7, stride=1, padding=3, bias=False),
        norm(conv_dim),
        nn.ReLU(inplace=True),
    ]
    dim = conv_dim
    for _ in range(2):
        layers += [nn.Conv2d(dim, dim * 2, kernel_size=4, stride=2, padding=1, bias=False), norm(dim * 2),
                   nn.ReLU(inplace=True)]
        dim *= 2
    layers += [StarResidualBlock(dim, norm) for _ in range(repeat_num)]
    for _ in range(2):
        layers += [nn.ConvTranspose2d(dim, dim // 2, kernel_size=4, stride=2, padding=1, bias=False),
                   norm(dim // 2), nn.ReLU(inplace=True)]
        dim //= 2
    return layers, dim


class StarGANGenerator(TranslationGenerator):
    family = "stargan"

    def __init__(self, config: Optional[StarGANConfig] = None, **overrides: int) -> None:
        super().__init__()
        self.config = config or StarGANConfig(**overrides)
        cfg = self.config
        layers, dim = star_body(3 + cfg.c_dim, cfg.conv_dim, cfg.repeat_num, PerImageInstanceNorm2d)
        layers += [nn.Conv2d(dim, 3, kernel_size=7, stride=1, padding=3, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    @property
    def condition_names(self) -> tuple[str, ...]:
        return STARGAN_ATTRIBUTES if self.c_dim == len(STARGAN_ATTRIBUTES) else super().condition_names

    @property
    def native_size(self) -> tuple[int, int]:
        return (256, 256)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.main(tile_condition(x, c))

    def generate(self, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self(x, expand_condition(c, x.shape[0], self.c_dim, x))


def stargan_targets(names: tuple[str, ...], n: int, original: Optional[torch.Tensor]) -> list[torch.Tensor]:
    """The official test's targets: for each attribute, a one-hot hair colour or the toggled binary attribute."""
    c_org = torch.zeros(1, len(names)) if original is None else torch.as_tensor(original, dtype=torch.float32)
    c_org = c_org.reshape(-1, len(names))
    hair = [i for i, name in enumerate(names) if name in HAIR_ATTRIBUTES]
    targets = []
    for i, name in enumerate(names[:n]):
        c = c_org.clone()
        if name in HAIR_ATTRIBUTES:
            c[:, hair] = 0.0
            c[:, i] = 1.0
        else:
            c[:, i] = (c[:, i] == 0).float()
        targets.append(c)
    return targets


def infer_stargan_config(state_dict: dict[str, torch.Tensor]) -> StarGANConfig:
    from .inference import count_indexed, require

    first = require(state_dict, "main.0.weight", "StarGAN", dims=4)
    return StarGANConfig(conv_dim=first.shape[0], c_dim=first.shape[1] - 3,
                         repeat_num=count_indexed(state_dict, "main.", ".main.0.weight"))
