"""Training and held-out crops from photos that ship inside installed packages (nothing is downloaded).

Sources: ``skimage.data`` images that need no download, ``sklearn.datasets.load_sample_images()`` and
matplotlib's ``mpl-data/sample_data`` photos. The demo photos (astronaut, chelsea) and grace_hopper are held
out of training; the project's test photos are never used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        return getattr(skimage.data, name)()
    return load


def _sklearn(index: int) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_images

        return load_sample_images().images[index]
    return load


def _matplotlib(filename: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import matplotlib
        import matplotlib.image

        return matplotlib.image.imread(os.path.join(matplotlib.get_data_path(), "sample_data", filename))
    return load


SOURCES: dict[str, tuple[str, Callable[[], np.ndarray]]] = {
    "coffee": ("skimage.data.coffee()", _skimage("coffee")),
    "rocket": ("skimage.data.rocket()", _skimage("rocket")),
    "hubble_deep_field": ("skimage.data.hubble_deep_field()", _skimage("hubble_deep_field")),
    "immunohistochemistry": ("skimage.data.immunohistochemistry()", _skimage("immunohistochemistry")),
    "retina": ("skimage.data.retina()", _skimage("retina")),
    "camera": ("skimage.data.camera() (grey, copied to RGB)", _skimage("camera")),
    "china": ("sklearn load_sample_images() china.jpg", _sklearn(0)),
    "flower": ("sklearn load_sample_images() flower.jpg", _sklearn(1)),
    "minduka": ("matplotlib sample_data/Minduka_Present_Blue_Pack.png", _matplotlib("Minduka_Present_Blue_Pack.png")),
    "astronaut": ("skimage.data.astronaut()", _skimage("astronaut")),
    "chelsea": ("skimage.data.chelsea()", _skimage("chelsea")),
    "grace_hopper": ("matplotlib sample_data/grace_hopper.jpg", _matplotlib("grace_hopper.jpg")),
}
TRAIN_PHOTOS = ("coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina", "camera", "china",
                "flower", "minduka")
HELDOUT_PHOTOS = ("astronaut", "chelsea", "grace_hopper")
DEMO_PHOTO = "astronaut"


def _as_rgb_u8(arr: np.ndarray) -> np.ndarray:
    a = np.asarray(arr)
    if a.dtype != np.uint8:
        a = np.clip(np.rint(a * 255.0 if a.max() <= 1.0 else a), 0, 255).astype(np.uint8)
    if a.ndim == 2:
        a = np.stack([a] * 3, axis=-1)
    return np.ascontiguousarray(a[..., :3])


@lru_cache(maxsize=None)
def load_photo(name: str) -> np.ndarray:
    """uint8 (H, W, 3) of a bundled photo by name (see ``SOURCES``)."""
    if name not in SOURCES:
        raise KeyError(f"unknown bundled photo {name!r}; known: {', '.join(SOURCES)}")
    return _as_rgb_u8(SOURCES[name][1]())


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> float (1, 3, H, W) in [-1, 1]."""
    return torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1).unsqueeze(0) / 127.5 - 1.0


def resize_short(x: torch.Tensor, short: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    s = short / min(h, w)
    size = (max(short, round(h * s)), max(short, round(w * s)))
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True).clamp(-1, 1)


@dataclass
class CropSampler:
    """Random crops (with flips) from bundled photos, each photo pre-resized to a few scales."""

    photos: tuple[str, ...] = TRAIN_PHOTOS
    size: int = 128
    scales: tuple[int, ...] = (160, 224, 320)  # short side of the resized photo

    def __post_init__(self) -> None:
        self.pool = [resize_short(to_tensor(load_photo(p)), max(s, self.size)) for p in self.photos
                     for s in self.scales]

    def sample(self, batch: int, generator: torch.Generator) -> torch.Tensor:
        out = []
        for _ in range(batch):
            img = self.pool[int(torch.randint(len(self.pool), (1,), generator=generator))]
            h, w = img.shape[-2:]
            top = int(torch.randint(h - self.size + 1, (1,), generator=generator))
            left = int(torch.randint(w - self.size + 1, (1,), generator=generator))
            crop = img[..., top:top + self.size, left:left + self.size]
            if bool(torch.rand((), generator=generator) < 0.5):
                crop = crop.flip(-1)
            out.append(crop)
        return torch.cat(out, dim=0)


def heldout_crops(size: int = 128, photos: tuple[str, ...] = HELDOUT_PHOTOS,
                  short: Optional[int] = 256) -> torch.Tensor:
    """Fixed (deterministic) crops of the held-out photos: centre and four quadrants-ish, (N, 3, size, size)."""
    crops = []
    for name in photos:
        img = to_tensor(load_photo(name))
        if short is not None:
            img = resize_short(img, short)
        h, w = img.shape[-2:]
        for fy, fx in ((0.5, 0.5), (0.25, 0.25), (0.25, 0.75), (0.75, 0.25), (0.75, 0.75)):
            top = int(round(fy * h - size / 2))
            left = int(round(fx * w - size / 2))
            top, left = min(max(top, 0), h - size), min(max(left, 0), w - size)
            crops.append(img[..., top:top + size, left:left + size])
    return torch.cat(crops, dim=0)


def demo_input(name: str = DEMO_PHOTO, size: int = 256) -> torch.Tensor:
    """(1, 3, size, size) centre-square crop of a demo photo, resized, in [-1, 1]."""
    img = load_photo(name)
    h, w = img.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    x = to_tensor(img[top:top + s, left:left + s])
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True).clamp(-1, 1)
