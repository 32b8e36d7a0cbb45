"""CycleGAN ResNet generator (Zhu et al. 2017), key-for-key compatible with ``latest_net_G*.pth``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn

from .base import TranslationGenerator
from .resnet import resnet_generator_layers


@dataclass(frozen=True)
class CycleGANConfig:
    input_nc: int = 3
    output_nc: int = 3
    ngf: int = 64
    n_blocks: int = 9

    def __post_init__(self) -> None:
        if min(self.input_nc, self.output_nc, self.ngf) < 1 or self.n_blocks < 0:
            raise ValueError(f"invalid CycleGAN configuration {self}")


class CycleGANGenerator(TranslationGenerator):
    family = "cyclegan"

    def __init__(self, config: Optional[CycleGANConfig] = None, **overrides: int) -> None:
        super().__init__()
        self.config = config or CycleGANConfig(**overrides)
        cfg = self.config
        self.model = nn.Sequential(*resnet_generator_layers(cfg.input_nc, cfg.output_nc, cfg.ngf, 2, cfg.n_blocks))

    @property
    def native_size(self) -> tuple[int, int]:
        return (256, 256)

    @property
    def input_channels(self) -> int:
        return self.config.input_nc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def generate(self, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self(x)  # unconditional: c is ignored


def top_level_convs(state_dict: dict[str, torch.Tensor], prefix: str) -> list[int]:
    """Indices N of 4-D ``<prefix>N.weight`` tensors (the Sequential's own convs, not those in blocks)."""
    from .inference import indices

    return [i for i in indices(state_dict, prefix, ".weight") if state_dict[f"{prefix}{i}.weight"].dim() == 4]


def infer_cyclegan_config(state_dict: dict[str, torch.Tensor]) -> CycleGANConfig:
    from .inference import count_indexed, require

    first = require(state_dict, "model.1.weight", "CycleGAN", dims=4)
    convs = top_level_convs(state_dict, "model.")
    return CycleGANConfig(input_nc=first.shape[1], output_nc=state_dict[f"model.{convs[-1]}.weight"].shape[0],
                          ngf=first.shape[0], n_blocks=count_indexed(state_dict, "model.", ".conv_block.1.weight"))
