"""Real photos that installed packages bundle (nothing is downloaded), split by SOURCE photo.

Test photos are never trained on; ``../shared/testdata`` is never used here (evaluation only).
Grey photos are kept as grey RGB (their re-synthesised twins are made grey too, so colour is no cue).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ...errors import InputRefused


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        image = getattr(skimage.data, name)()
        return image[0] if isinstance(image, tuple) else image

    return load


def _sklearn(index: int) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_images

        return load_sample_images().images[index]

    return load


def _matplotlib(filename: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import matplotlib
        from PIL import Image

        path = os.path.join(matplotlib.get_data_path(), "sample_data", filename)
        with Image.open(path) as im:
            return np.array(im.convert("RGB"))

    return load


# name -> (loader, split). Colour and grey photos in every split; one photo per scene.
SOURCES: dict[str, tuple[Callable[[], np.ndarray], str]] = {
    "skimage.astronaut": (_skimage("astronaut"), "train"),
    "skimage.chelsea": (_skimage("chelsea"), "train"),
    "skimage.hubble_deep_field": (_skimage("hubble_deep_field"), "train"),
    "skimage.immunohistochemistry": (_skimage("immunohistochemistry"), "train"),
    "skimage.retina": (_skimage("retina"), "train"),
    "skimage.stereo_motorcycle": (_skimage("stereo_motorcycle"), "train"),
    "sklearn.china": (_sklearn(0), "train"),
    "skimage.camera": (_skimage("camera"), "train"),
    "skimage.moon": (_skimage("moon"), "train"),
    "skimage.brick": (_skimage("brick"), "train"),
    "skimage.grass": (_skimage("grass"), "train"),
    "skimage.clock": (_skimage("clock"), "train"),
    "skimage.rocket": (_skimage("rocket"), "val"),
    "skimage.coins": (_skimage("coins"), "val"),
    "skimage.coffee": (_skimage("coffee"), "test"),
    "sklearn.flower": (_sklearn(1), "test"),
    "matplotlib.grace_hopper": (_matplotlib("grace_hopper.jpg"), "test"),
    "skimage.gravel": (_skimage("gravel"), "test"),
}

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Photo:
    name: str
    split: str
    image: np.ndarray  # HxWx3 uint8
    grey: bool


def as_rgb(image: np.ndarray) -> tuple[np.ndarray, bool]:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = np.clip(image * (255.0 if image.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2), True
    image = image[:, :, :3]
    grey = bool(np.all(image[:, :, 0] == image[:, :, 1]) and np.all(image[:, :, 1] == image[:, :, 2]))
    return np.ascontiguousarray(image), grey


def load_photos(split: str) -> list[Photo]:
    if split not in SPLITS:
        raise InputRefused(f"Unknown split {split!r}", accepted=", ".join(SPLITS))
    photos = []
    for name, (loader, where) in SOURCES.items():
        if where != split:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                image, grey = as_rgb(loader())
            except Exception as exc:  # a package without its bundled file: skip, the manifest lists what was used
                warnings.warn(f"photo {name} unavailable: {exc}")
                continue
        photos.append(Photo(name, split, image, grey))
    return photos
