"""pix2pixHD generators (Wang et al. 2018): GlobalGenerator and LocalEnhancer, released label2city layout."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Optional

import numpy as np
import torch
import torch.nn as nn

from .base import ResnetBlock, TranslationGenerator, plain_instance_norm
from .cyclegan import top_level_convs
from .resnet import resnet_generator_layers

LABEL_NC = 35  # Cityscapes label ids 0..34
DEFAULT_NGF = {"local": 32, "global": 64}  # the 1024p and 512p releases


@dataclass(frozen=True)
class Pix2PixHDConfig:
    input_nc: int = LABEL_NC + 1
    output_nc: int = 3
    ngf: Optional[int] = None  # None: the release's value for netG (32 local, 64 global)
    netG: Literal["global", "local"] = "local"
    n_downsample_global: int = 4
    n_blocks_global: int = 9
    n_local_enhancers: int = 1
    n_blocks_local: int = 3

    def __post_init__(self) -> None:
        if self.netG not in DEFAULT_NGF:
            raise ValueError(f"pix2pixHD netG must be 'global' or 'local', got {self.netG!r}")
        if self.ngf is None:
            object.__setattr__(self, "ngf", DEFAULT_NGF[self.netG])
        if min(self.input_nc, self.output_nc, self.ngf) < 1 or self.n_local_enhancers < 1:
            raise ValueError(f"invalid pix2pixHD configuration {self}")


def _local_downsample(input_nc: int, ngf: int) -> list[nn.Module]:
    return [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0), plain_instance_norm(ngf),
            nn.ReLU(True), nn.Conv2d(ngf, ngf * 2, kernel_size=3, stride=2, padding=1),
            plain_instance_norm(ngf * 2), nn.ReLU(True)]


def _local_upsample(ngf: int, n_blocks: int, output_nc: int, last: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [ResnetBlock(ngf * 2) for _ in range(n_blocks)]
    layers += [nn.ConvTranspose2d(ngf * 2, ngf, kernel_size=3, stride=2, padding=1, output_padding=1),
               plain_instance_norm(ngf), nn.ReLU(True)]
    if last:
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0), nn.Tanh()]
    return layers


class Pix2PixHDGenerator(TranslationGenerator):
    """``netG='global'``: ``model`` is the whole GlobalGenerator. ``netG='local'``: ``model`` is the global
    generator (at ngf * 2**n_local_enhancers) without its last three layers, then per enhancer n the
    ``model{n}_1`` down-sampling branch and ``model{n}_2`` residual/up-sampling branch."""

    family = "pix2pixhd"

    def __init__(self, config: Optional[Pix2PixHDConfig] = None, **overrides) -> None:
        super().__init__()
        self.config = config or Pix2PixHDConfig(**overrides)
        cfg = self.config
        n_local = cfg.n_local_enhancers if cfg.netG == "local" else 0
        layers = resnet_generator_layers(cfg.input_nc, cfg.output_nc, cfg.ngf * 2 ** n_local,
                                         cfg.n_downsample_global, cfg.n_blocks_global)
        self.model = nn.Sequential(*(layers[:-3] if n_local else layers))
        for n in range(1, n_local + 1):
            ngf_n = cfg.ngf * 2 ** (n_local - n)
            setattr(self, f"model{n}_1", nn.Sequential(*_local_downsample(cfg.input_nc, ngf_n)))
            setattr(self, f"model{n}_2", nn.Sequential(
                *_local_upsample(ngf_n, cfg.n_blocks_local, cfg.output_nc, last=n == n_local)))
        self.n_local = n_local
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    @property
    def native_size(self) -> tuple[int, int]:
        return (1024, 2048) if self.n_local else (512, 1024)

    @property
    def size_multiple(self) -> int:
        return 2 ** (self.config.n_downsample_global + self.n_local)

    @property
    def input_channels(self) -> int:
        return self.config.input_nc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pyramid = [x]  # pyramid[k] is the input down-sampled k times
        for _ in range(self.n_local):
            pyramid.append(self.downsample(pyramid[-1]))
        out = self.model(pyramid[-1])
        for n in range(1, self.n_local + 1):
            branch = getattr(self, f"model{n}_1")(pyramid[self.n_local - n])
            out = getattr(self, f"model{n}_2")(branch + out)
        return out

    def generate(self, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self(x)  # unconditional: c is ignored


def instance_edges(instance_map: np.ndarray) -> np.ndarray:
    """pix2pixHD's edge map: a pixel is an edge where its id differs from a 4-neighbour (both sides marked)."""
    t = np.asarray(instance_map)
    edge = np.zeros(t.shape, dtype=bool)
    horizontal = t[:, 1:] != t[:, :-1]
    vertical = t[1:, :] != t[:-1, :]
    edge[:, 1:] |= horizontal
    edge[:, :-1] |= horizontal
    edge[1:, :] |= vertical
    edge[:-1, :] |= vertical
    return edge


def label_map_to_input(label_map: np.ndarray, instance_map: Optional[np.ndarray] = None,
                       label_nc: int = LABEL_NC) -> torch.Tensor:
    """(1, label_nc + 1, H, W) 0/1 input of the released model: one-hot labels, then the instance-edge channel.

    Without an instance map the label map stands in for it (Cityscapes stores stuff classes' label ids as
    their instance ids), so edges fall on class boundaries.
    """
    labels = np.asarray(label_map)
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"label_map must be a 2-D integer array, got {labels.dtype} {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= label_nc):
        raise ValueError(f"label ids must lie in 0..{label_nc - 1}, got {labels.min()}..{labels.max()}")
    instances = labels if instance_map is None else np.asarray(instance_map)
    if instances.shape != labels.shape:
        raise ValueError(f"instance_map shape {instances.shape} differs from label_map shape {labels.shape}")
    onehot = torch.nn.functional.one_hot(torch.from_numpy(labels.astype(np.int64)), label_nc)
    edges = torch.from_numpy(instance_edges(instances)).unsqueeze(-1)
    return torch.cat([onehot, edges.long()], dim=-1).permute(2, 0, 1).unsqueeze(0).float()


def infer_pix2pixhd_config(state_dict: dict[str, torch.Tensor]) -> Pix2PixHDConfig:
    from ...errors import CheckpointError
    from .inference import ACCEPTED, count_indexed, require

    first = require(state_dict, "model.1.weight", "pix2pixHD", dims=4)
    local = sorted({int(m.group(1)) for k in state_dict if (m := re.match(r"model(\d+)_1\.1\.weight$", k))})
    convs = top_level_convs(state_dict, "model.")
    n_down = (len(convs) - 1) // 2 if local else (len(convs) - 2) // 2
    common = dict(input_nc=first.shape[1], n_downsample_global=n_down,
                  n_blocks_global=count_indexed(state_dict, "model.", ".conv_block.1.weight"))
    if not local:
        return Pix2PixHDConfig(netG="global", ngf=first.shape[0],
                               output_nc=state_dict[f"model.{convs[-1]}.weight"].shape[0], **common)
    n_local = local[-1]
    if local != list(range(1, n_local + 1)):
        raise CheckpointError(f"pix2pixHD local enhancers are not numbered 1..{n_local}: {local}",
                              accepted=f"{ACCEPTED} in the pix2pixHD LocalEnhancer layout")
    last = top_level_convs(state_dict, f"model{n_local}_2.")
    if not last:
        raise CheckpointError(f"pix2pixHD checkpoint has no convolutions under 'model{n_local}_2.'",
                              accepted=f"{ACCEPTED} in the pix2pixHD LocalEnhancer layout")
    return Pix2PixHDConfig(netG="local", ngf=state_dict[f"model{n_local}_1.1.weight"].shape[0],
                           output_nc=state_dict[f"model{n_local}_2.{last[-1]}.weight"].shape[0],
                           n_local_enhancers=n_local,
                           n_blocks_local=count_indexed(state_dict, "model1_2.", ".conv_block.1.weight"), **common)
