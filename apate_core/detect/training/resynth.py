"""Re-synthesisers: a real photo in, the same photo re-rendered by a generator's decoder out.

A training pair (photo, re-synthesis) shows the same content twice, so the only systematic difference between
the "real" and the "generated" image is the trace the decoder leaves. timm-style registry::

    with create_resynthesiser("taef2") as resynth:
        fake = resynth(photo)            # HxWx3 uint8 in, HxWx3 uint8 of the same size out
        card = resynth.describe()        # name, licence, source, trace, SHA-256 of the weights

Every entry pads the image (reflection) to the multiple its network needs and crops the result back. Nothing is
trained at call time and no thread is started: ``threads=N`` sets torch's intra-op threads for the duration of
each call and restores them afterwards; ``close()`` (or leaving the ``with`` block) drops the weights.

Entries and the traces they leave:
  taef2    -- FLUX.2's tiny autoencoder (madebyollin/taesd, MIT), encode -> decode. The 32-channel latent at 1/8
              resolution loses fine texture, which the decoder re-invents; its three nearest-neighbour x2 +
              3x3-convolution stages leave the periodic upsampling traces of latent-diffusion decoders (spectral
              peaks at 1/8, 1/4 and 1/2 cycles per pixel, 8-pixel blockiness in flat areas), a slight colour and
              contrast drift, and no trace of the photo's own JPEG grid or sensor noise.
  inhouse  -- one of Apate's small re-synthesis autoencoders (decoders.ResynthAutoencoder, x4 down and up) that
              you have trained with decoders.train_decoder: pass ``model=`` or ``weights=`` (a safetensors
              state_dict). Its two x2 stages leave the family's trace: checkerboard at 1/2 cycle per pixel
              (transposed), 4-pixel periodic blocks (nearest), smooth blur (bilinear) or 2x2 sub-pixel phase
              patterns (pixelshuffle), plus the blur of a briefly trained reconstruction.
  realesrgan-x4plus, realsr-x4, waifu2x
           -- GAN and CNN upscalers run through ncnn on a copy shrunk by their factor (upscalers.py, which lists
              their traces); training only, files fetched by ``python -m apate_core.detect.backbones
              --training-generators``.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import Any, ClassVar, Iterator, Optional, Union

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ...errors import CheckpointError, InputRefused
from ...media.intake import sha256_file
from ...settings import load_settings
from .named import Registry

PathLike = Union[str, Path]
DEFAULT_MAX_PIXELS = 2048 * 2048  # TAEF2 holds ~3 full-resolution 64-channel float maps: about 3 GB at this size


class Resynthesiser:
    """Base: checks and pads the image, runs ``_forward`` on a (1,3,H,W) [0,1] tensor, crops back to uint8."""

    name: ClassVar[str] = ""
    licence: ClassVar[str] = ""
    source: ClassVar[str] = ""
    trace: ClassVar[str] = ""
    multiple: ClassVar[int] = 1  # H and W the network accepts are multiples of this

    def __init__(self, *, device: Optional[str] = None, threads: Optional[int] = None,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.device = device or load_settings().resolved_device()
        self.threads = threads
        self.max_pixels = int(max_pixels)
        self.closed = False

    # -- subclasses ------------------------------------------------------------------------------------------
    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _weights_sha256(self) -> dict[str, str]:
        return {}

    def _release(self) -> None:
        """Drop the networks (subclasses delete their modules)."""

    # -- public ----------------------------------------------------------------------------------------------
    def __call__(self, image: np.ndarray) -> np.ndarray:
        if self.closed:
            raise InputRefused(f"The {self.name} re-synthesiser is closed", accepted="create a new one")
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InputRefused(f"Image of shape {image.shape} and dtype {image.dtype}", accepted="HxWx3 uint8 RGB")
        h, w = image.shape[:2]
        if h * w > self.max_pixels:
            raise InputRefused(f"{w}x{h} image is too large to re-synthesise in one pass",
                               accepted="crop or resize it first", limit=f"{self.max_pixels} pixels")
        pad_h, pad_w = -h % self.multiple, -w % self.multiple
        x = torch.from_numpy(np.array(image, copy=True)).to(self.device).permute(2, 0, 1)[None].float().div_(255.0)
        if pad_h or pad_w:
            mode = "reflect" if pad_h < h and pad_w < w else "replicate"
            x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        with self._thread_limit(), torch.inference_mode():
            y = self._forward(x)[0, :, :h, :w]
        return y.clamp(0, 1).mul(255.0).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "licence": self.licence, "source": self.source, "trace": self.trace,
                "multiple": self.multiple, "weights_sha256": self._weights_sha256()}

    def close(self) -> None:
        if not self.closed:
            self._release()
            self.closed = True

    def __enter__(self) -> "Resynthesiser":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @contextlib.contextmanager
    def _thread_limit(self) -> Iterator[None]:
        if self.threads is None:
            yield
            return
        previous = torch.get_num_threads()
        torch.set_num_threads(max(1, int(self.threads)))
        try:
            yield
        finally:
            torch.set_num_threads(previous)


_REGISTRY: Registry[Resynthesiser] = Registry("re-synthesiser")
register_resynthesiser = _REGISTRY.register
list_resynthesisers = _REGISTRY.names


def create_resynthesiser(name: str, **opts: Any) -> Resynthesiser:
    """A ready re-synthesiser: ``name`` from list_resynthesisers(), options of its class."""
    return _REGISTRY.create(name, **opts)


# ------------------------------------------------------------------------------------------------------------
# TAEF2 (FLUX.2's tiny autoencoder), written from the description in ../shared/models/taef2/README.md
# ------------------------------------------------------------------------------------------------------------

TAEF2_SHA256 = {
    "taef2_encoder.pth": "10a4e1021e89d7551eaf161352da8dbd0b1aa83872ae28b150c1df1ce2f147b6",
    "taef2_decoder.pth": "0a44a31e1ae59eb9dbf9359d24942fd3ef5928162c1800d97a28c61d51be0ab5",
}


def _conv(cin: int, cout: int, **kwargs: Any) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1, **kwargs)


class _Block(nn.Module):
    """relu(conv-relu-conv-relu-conv(x) + x), after x = x + pool(x) when pooled."""

    def __init__(self, n: int = 64, pool: bool = False) -> None:
        super().__init__()
        self.conv = nn.Sequential(_conv(n, n), nn.ReLU(), _conv(n, n), nn.ReLU(), _conv(n, n))
        self.pool = nn.Sequential(nn.Conv2d(n, 4 * n, 1, bias=False), nn.GroupNorm(4, 4 * n), nn.ReLU(),
                                  nn.Conv2d(4 * n, n, 1, bias=False)) if pool else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            x = x + self.pool(x)
        return F.relu(self.conv(x) + x)


class _SoftClamp(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x / 3) * 3


def taef2_encoder() -> nn.Sequential:
    """RGB [0,1] (H, W multiples of 8) -> 32 latent channels at H/8 x W/8."""
    def down() -> nn.Conv2d:
        return _conv(64, 64, stride=2, bias=False)

    return nn.Sequential(_conv(3, 64), _Block(), down(), *[_Block() for _ in range(3)], down(),
                         *[_Block() for _ in range(3)], down(), *[_Block(pool=True) for _ in range(3)], _conv(64, 32))


def taef2_decoder() -> nn.Sequential:
    """32 latent channels -> RGB (clamp to [0,1]); three nearest x2 + 3x3 conv stages."""
    def up(blocks: int) -> list[nn.Module]:
        return [nn.Upsample(scale_factor=2, mode="nearest"), _conv(64, 64, bias=False),
                *[_Block() for _ in range(blocks)]]

    return nn.Sequential(_SoftClamp(), _conv(32, 64), nn.ReLU(), *[_Block(pool=True) for _ in range(3)],
                         *up(3), *up(3), *up(1), _conv(64, 3))


def _load_checked(path: Path, expected_sha256: str, module: nn.Module, setting: str) -> str:
    """SHA-256 first, then torch.load(weights_only=True) and a strict load; every failure is a CheckpointError."""
    if not path.is_file():
        raise CheckpointError(f"{path.name} is missing from {path.parent}",
                              accepted=f"the published file, pointed at by {setting}")
    digest = sha256_file(path)
    if digest != expected_sha256:
        raise CheckpointError(f"{path} has SHA-256 {digest}, not the published {expected_sha256}: the file is "
                              "damaged or not the published weights", accepted="the unmodified published file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        module.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    except Exception as exc:  # weights_only refusal, wrong keys or shapes
        raise CheckpointError(f"{path} does not load into the TAEF2 modules: {exc}") from None
    return digest


@register_resynthesiser("taef2")
class Taef2(Resynthesiser):
    licence = "MIT"
    source = "madebyollin/taesd commit 5cccb12: taef2_encoder.pth, taef2_decoder.pth (FLUX.2 tiny autoencoder)"
    trace = ("latent-diffusion decoder: 1/8-resolution 32-channel latent, three nearest x2 + conv3x3 stages; fine "
             "texture re-invented, periodic upsampling peaks at 1/8, 1/4, 1/2 cycles/pixel, slight colour drift, "
             "no source JPEG grid or sensor noise")
    multiple = 8

    def __init__(self, weights_dir: Optional[PathLike] = None, **opts: Any) -> None:
        super().__init__(**opts)
        folder = Path(weights_dir).expanduser() if weights_dir else load_settings().taef2_path
        setting = "APATE_TAEF2_DIR (default ../shared/models/taef2 beside the repository)"
        if not folder.is_dir():
            raise CheckpointError(f"TAEF2 weights folder {folder} does not exist",
                                  accepted=f"a folder holding {' and '.join(TAEF2_SHA256)}, set by {setting}")
        self.encoder, self.decoder = taef2_encoder(), taef2_decoder()
        self._sha256 = {name: _load_checked(folder / name, digest, module, setting)
                        for (name, digest), module in zip(TAEF2_SHA256.items(), (self.encoder, self.decoder))}
        for module in (self.encoder, self.decoder):  # channels-last: about 1.6x faster on CPU, same arithmetic
            module.eval().to(self.device, memory_format=torch.channels_last)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x.contiguous(memory_format=torch.channels_last)))

    def _weights_sha256(self) -> dict[str, str]:
        return dict(self._sha256)

    def _release(self) -> None:
        del self.encoder, self.decoder


# ------------------------------------------------------------------------------------------------------------
# Apate's own small autoencoders, once trained (decoders.train_decoder); nothing is trained here
# ------------------------------------------------------------------------------------------------------------


@register_resynthesiser("inhouse")
class InHouse(Resynthesiser):
    licence = "Apate's own"
    source = "apate_core.detect.training.decoders.ResynthAutoencoder, trained with decoders.train_decoder"
    trace = ("small autoencoder, x4 down then two x2 upsampling stages of its family: checkerboard (transposed), "
             "4-px periodic blocks (nearest), blur (bilinear) or 2x2 sub-pixel phase patterns (pixelshuffle)")
    multiple = 4

    def __init__(self, model: Optional[nn.Module] = None, weights: Optional[PathLike] = None,
                 family: str = "nearest", width: int = 32, **opts: Any) -> None:
        super().__init__(**opts)
        from .decoders import ResynthAutoencoder

        if (model is None) == (weights is None):
            raise CheckpointError("The inhouse re-synthesiser needs a trained decoder",
                                  accepted="exactly one of model=<ResynthAutoencoder> or weights=<.safetensors "
                                           "state_dict saved from decoders.train_decoder(...).model>")
        if weights is not None:
            from safetensors.torch import load_file

            path = Path(weights)
            model = ResynthAutoencoder(family, width)
            try:
                model.load_state_dict(load_file(str(path)), strict=True)
            except Exception as exc:
                raise CheckpointError(f"{path} does not load into a {family} ResynthAutoencoder of width {width}: "
                                      f"{exc}") from None
            self._sha256 = {path.name: sha256_file(path)}
        else:
            digest = hashlib.sha256()
            for key, tensor in model.state_dict().items():
                digest.update(key.encode() + tensor.detach().cpu().contiguous().numpy().tobytes())
            self._sha256 = {"<in memory>": digest.hexdigest()}
        self.family = getattr(model, "family", family)
        self.model = model.eval().to(self.device)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def _weights_sha256(self) -> dict[str, str]:
        return dict(self._sha256)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "family": self.family}

    def _release(self) -> None:
        del self.model


# The ncnn upscalers live in their own module and register into this registry when it is imported (here, last,
# so that every name they import from this module exists).
from . import upscalers  # noqa: E402,F401
