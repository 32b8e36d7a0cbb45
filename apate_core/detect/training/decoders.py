"""Small re-synthesis autoencoders, one per upsampling family.

Each is a tiny encoder (x4 downsampling) and a decoder whose two x2 upsampling stages use the
family's operator. Trained briefly to reconstruct photos, their outputs show the same content as the
input, so the decoder's fingerprint (the periodic traces its upsampling leaves) is the only
systematic difference between a "real" crop and its "generated" twin.

Families: transposed (ConvTranspose2d k4 s2), nearest (nearest upsample + conv3x3), bilinear
(bilinear upsample + conv3x3), pixelshuffle (conv3x3 to 4C + PixelShuffle(2)).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from ...progress import CancelToken, ProgressCallback, check_cancelled, no_progress

FAMILIES: tuple[str, ...] = ("transposed", "nearest", "bilinear", "pixelshuffle")


def upsample_block(family: str, cin: int, cout: int) -> nn.Module:
    """x2 upsampling from cin to cout channels with the family's operator."""
    if family == "transposed":
        return nn.ConvTranspose2d(cin, cout, kernel_size=4, stride=2, padding=1)
    if family == "nearest":
        return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, padding=1))
    if family == "bilinear":
        return nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                             nn.Conv2d(cin, cout, 3, padding=1))
    if family == "pixelshuffle":
        return nn.Sequential(nn.Conv2d(cin, cout * 4, 3, padding=1), nn.PixelShuffle(2))
    raise ValueError(f"unknown decoder family {family!r}; known: {', '.join(FAMILIES)}")


class ResynthAutoencoder(nn.Module):
    """[0,1] RGB (N,3,H,W), H and W multiples of 4 -> re-synthesised [0,1] RGB of the same size."""

    def __init__(self, family: str, width: int = 32) -> None:
        super().__init__()
        w = int(width)
        self.family = family
        self.encoder = nn.Sequential(
            nn.Conv2d(3, w, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(w, 2 * w, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * w, 2 * w, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.LeakyReLU(0.2),
        )
        self.decoder = nn.Sequential(
            upsample_block(family, 2 * w, 2 * w), nn.LeakyReLU(0.2),
            upsample_block(family, 2 * w, w), nn.LeakyReLU(0.2),
            nn.Conv2d(w, 3, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(self.encoder(x * 2.0 - 1.0)) * 2.0)


@dataclass
class DecoderVariant:
    family: str
    width: int
    seed: int
    steps: int
    final_l1: float
    seconds: float
    model: ResynthAutoencoder

    @property
    def name(self) -> str:
        return f"{self.family}-w{self.width}-s{self.seed}"

    def describe(self) -> dict:
        return {"name": self.name, "family": self.family, "width": self.width, "seed": self.seed,
                "steps": self.steps, "final_l1": round(self.final_l1, 4), "seconds": round(self.seconds, 1)}


def random_patches(photos: Sequence[np.ndarray], n: int, size: int, rng: np.random.Generator) -> torch.Tensor:
    """n random size x size crops (with flips) of the photos as a float (n,3,size,size) tensor in [0,1]."""
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        photo = photos[int(rng.integers(len(photos)))]
        h, w = photo.shape[:2]
        top, left = int(rng.integers(h - size + 1)), int(rng.integers(w - size + 1))
        patch = photo[top:top + size, left:left + size]
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        out[i] = patch
    return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255.0)


def train_decoder(family: str, photos: Sequence[np.ndarray], *, width: int = 32, seed: int = 0,
                  steps: int = 300, batch_size: int = 16, patch: int = 64, lr: float = 2e-3,
                  cancel: Optional[CancelToken] = None) -> DecoderVariant:
    """Train one autoencoder briefly (L1 reconstruction) on random patches of the photos."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = ResynthAutoencoder(family, width)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, steps))
    start = time.perf_counter()
    running = float("nan")
    model.train()
    for step in range(steps):
        if step % 25 == 0:
            check_cancelled(cancel)
        x = random_patches(photos, batch_size, patch, rng)
        loss = (model(x) - x).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        running = loss.item() if step == 0 else 0.9 * running + 0.1 * loss.item()
    model.eval()
    return DecoderVariant(family, width, seed, steps, running, time.perf_counter() - start, model)


def train_decoders(families: Sequence[str], photos: Sequence[np.ndarray], *, variants: int = 2,
                   steps: int = 300, seed: int = 0, widths: Sequence[int] = (24, 32, 48),
                   batch_size: int = 16, lr: float = 2e-3,
                   progress: ProgressCallback = no_progress,
                   cancel: Optional[CancelToken] = None) -> dict[str, list[DecoderVariant]]:
    """`variants` decoders per family, each with its own seed and width."""
    out: dict[str, list[DecoderVariant]] = {}
    total = len(families) * variants
    done = 0
    for f_index, family in enumerate(families):
        for v in range(variants):
            s = seed * 1000 + f_index * 100 + v
            width = int(widths[(v + f_index) % len(widths)])
            out.setdefault(family, []).append(train_decoder(family, photos, width=width, seed=s, steps=steps,
                                                            batch_size=batch_size, lr=lr, cancel=cancel))
            done += 1
            progress(done / total, f"decoder {out[family][-1].name}: L1 {out[family][-1].final_l1:.3f}")
    return out


@torch.inference_mode()
def resynthesise(model: ResynthAutoencoder, image: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 (H, W multiples of 4) -> the decoder's re-synthesis, HxWx3 uint8."""
    x = torch.from_numpy(np.array(image, dtype=np.uint8, copy=True)).permute(2, 0, 1)[None].float().div_(255.0)
    y = model(x)[0].permute(1, 2, 0).mul_(255.0).round_().clamp_(0, 255)
    return y.to(torch.uint8).numpy()
