"""GANimation generator (Pumarola et al. 2018) in its two circulating layouts.

``official`` (albertpumarola): heads ``img_reg`` / ``attetion_reg`` (sic), InstanceNorm without running stats,
forward returns (colour, mask), final = mask*x + (1-mask)*colour.
``vipermu`` (the copy attacked by "Disrupting Deepfakes"): heads ``im_reg`` / ``im_att``, InstanceNorm with
running stats that inference ignores, forward returns (attention, colour), final = (1-att)*colour + att*x.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

import torch
import torch.nn as nn

from .base import PerImageInstanceNorm2d, TranslationGenerator, expand_condition, tile_condition
from .stargan import star_body

AU_NAMES = ("AU1", "AU2", "AU4", "AU5", "AU6", "AU7", "AU9", "AU10", "AU12", "AU14", "AU15", "AU17", "AU20",
            "AU23", "AU25", "AU26", "AU45")
LAYOUTS = ("official", "vipermu")
HEADS = {"official": ("img_reg", "attetion_reg"), "vipermu": ("im_reg", "im_att")}
# Checkpoint-only aliases of ``main`` slices in the vipermu release (dropped on load).
VIPERMU_ALIAS_PREFIXES = ("debug1.", "debug2.", "debug3.", "debug4.")

# Prototypical FACS expressions (EMFACS), used as attack targets; intensities on GANimation's 0..1 scale.
EXPRESSION_PRESETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("happy", ("AU6", "AU12", "AU25")),
    ("surprise", ("AU1", "AU2", "AU5", "AU25", "AU26")),
    ("sad", ("AU1", "AU4", "AU15", "AU17")),
    ("angry", ("AU4", "AU5", "AU7", "AU23")),
    ("disgust", ("AU9", "AU10", "AU15", "AU17")),
    ("fear", ("AU1", "AU2", "AU4", "AU5", "AU7", "AU20", "AU26")),
    ("contempt", ("AU12", "AU14")),
    ("eyes_closed", ("AU45",)),
)
PRESET_INTENSITY = 0.6


@dataclass(frozen=True)
class GANimationConfig:
    conv_dim: int = 64
    c_dim: int = 17
    repeat_num: int = 6
    layout: Literal["official", "vipermu"] = "official"

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"GANimation layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.conv_dim < 1 or self.c_dim < 0 or self.repeat_num < 0:
            raise ValueError(f"invalid GANimation configuration {self}")


def _official_norm(dim: int) -> nn.Module:
    return nn.InstanceNorm2d(dim, affine=True, track_running_stats=False)


class GANimationGenerator(TranslationGenerator):
    family = "ganimation"

    def __init__(self, config: Optional[GANimationConfig] = None, **overrides) -> None:
        super().__init__()
        self.config = config or GANimationConfig(**overrides)
        cfg = self.config
        norm = _official_norm if cfg.layout == "official" else PerImageInstanceNorm2d
        layers, dim = star_body(3 + cfg.c_dim, cfg.conv_dim, cfg.repeat_num, norm)
        self.main = nn.Sequential(*layers)
        colour_name, attention_name = HEADS[cfg.layout]
        # Registration order fixes the state_dict order: colour head first in both layouts.
        self.add_module(colour_name, nn.Sequential(nn.Conv2d(dim, 3, 7, 1, 3, bias=False), nn.Tanh()))
        self.add_module(attention_name, nn.Sequential(nn.Conv2d(dim, 1, 7, 1, 3, bias=False), nn.Sigmoid()))

    @property
    def colour_head(self) -> nn.Module:
        return getattr(self, HEADS[self.config.layout][0])

    @property
    def attention_head(self) -> nn.Module:
        return getattr(self, HEADS[self.config.layout][1])

    @property
    def condition_names(self) -> tuple[str, ...]:
        return AU_NAMES if self.c_dim == len(AU_NAMES) else super().condition_names

    @property
    def native_size(self) -> tuple[int, int]:
        return (128, 128)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The layout's own output order: official (colour, mask), vipermu (attention, colour)."""
        features = self.main(tile_condition(x, c))
        colour, attention = self.colour_head(features), self.attention_head(features)
        return (colour, attention) if self.config.layout == "official" else (attention, colour)

    def generate(self, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        out = self(x, expand_condition(c, x.shape[0], self.c_dim, x))
        if self.config.layout == "official":
            colour, mask = out
            return mask * x + (1 - mask) * colour
        attention, colour = out
        return (1 - attention) * colour + attention * x


def ganimation_targets(names: tuple[str, ...], n: int, seed: int = 0) -> list[torch.Tensor]:
    """Expression presets first, then seeded random sparse AU vectors when more targets are asked for."""
    targets = []
    for _, aus in EXPRESSION_PRESETS[:n]:
        c = torch.zeros(1, len(names))
        for au in aus:
            if au in names:
                c[0, names.index(au)] = PRESET_INTENSITY
        targets.append(c)
    rng = torch.Generator().manual_seed(seed)
    while len(targets) < n:
        c = torch.rand(1, len(names), generator=rng)
        targets.append(c * (torch.rand(1, len(names), generator=rng) < 0.3))
    return targets


def infer_ganimation_config(state_dict: dict[str, torch.Tensor]) -> GANimationConfig:
    from ...errors import CheckpointError
    from .inference import ACCEPTED, count_indexed, require

    layouts = [name for name, (colour, _) in HEADS.items() if f"{colour}.0.weight" in state_dict]
    if len(layouts) != 1:
        raise CheckpointError(
            "Cannot tell the GANimation layout: expected exactly one colour head, 'img_reg.0.weight' (official) "
            "or 'im_reg.0.weight' (vipermu)", accepted=f"{ACCEPTED} in a GANimation key layout")
    first = require(state_dict, "main.0.weight", "GANimation", dims=4)
    return GANimationConfig(conv_dim=first.shape[0], c_dim=first.shape[1] - 3,
                            repeat_num=count_indexed(state_dict, "main.", ".main.0.weight"), layout=layouts[0])
