"""Extra sources of REAL photos for training, in a timm-style registry (nothing is downloaded).

    for name, image in iter_real_photos("debian-wallpapers"):   # image: HxWx3 uint8 RGB
        ...

Each source says whether it can deliver on this machine with ``available() -> (bool, reason)``; an unavailable
source yields nothing (``iter_real_photos`` warns with the reason). Names are unique across sources
(``<source>/<photo>``).

Sources:
  bundled            -- the photos scikit-image, scikit-learn and matplotlib install (sources.py), by default only
                        the train and val splits: the test split's photos are never trained on.
  debian-wallpapers  -- JPEG photographs from Debian wallpaper packages under /usr/share/wallpapers and
                        /usr/share/backgrounds (e.g. ``apt-get install mate-backgrounds`` or
                        ``plasma-workspace-wallpapers``). Renders are skipped: every file that is not a JPEG (SVG,
                        PNG), is under 512 px on its short side, or is mostly flat (a gradient or logo saved as
                        JPEG); of a picture shipped at several resolutions only the largest is kept.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any, ClassVar, Iterator, Sequence

import numpy as np

from ...settings import load_settings
from .named import Registry
from .sources import as_rgb, load_photos

RealPhoto = tuple[str, np.ndarray]


class RealSource:
    name: ClassVar[str] = ""

    def available(self) -> tuple[bool, str]:
        return True, ""

    def photos(self) -> Iterator[RealPhoto]:
        raise NotImplementedError


_SOURCES: Registry[RealSource] = Registry("real-photo source")
register_real_source = _SOURCES.register
list_real_sources = _SOURCES.names


def create_real_source(name: str, **opts: Any) -> RealSource:
    """A source: ``name`` from list_real_sources(), options of its class."""
    return _SOURCES.create(name, **opts)


def iter_real_photos(name: str, **opts: Any) -> Iterator[RealPhoto]:
    """(unique name, HxWx3 uint8 RGB) for every photo of the source; nothing, with a warning, if unavailable."""
    source = create_real_source(name, **opts)
    ok, reason = source.available()
    if not ok:
        warnings.warn(f"real-photo source {source.name}: {reason}")
        return
    for photo_name, image in source.photos():
        yield f"{source.name}/{photo_name}", image


@register_real_source("bundled")
class Bundled(RealSource):
    def __init__(self, splits: Sequence[str] = ("train", "val")) -> None:
        self.splits = tuple(splits)

    def photos(self) -> Iterator[RealPhoto]:
        for split in self.splits:
            for photo in load_photos(split):
                yield photo.name, photo.image


WALLPAPER_DIRS: tuple[Path, ...] = (Path("/usr/share/wallpapers"), Path("/usr/share/backgrounds"))
WALLPAPER_PACKAGES = "mate-backgrounds, plasma-workspace-wallpapers, gnome-backgrounds"
MIN_SIDE = 512
MAX_FLAT = 0.5  # share of flat 8x8 blocks at full size: renders about 0.8, photos (bokeh too) at most 0.3
_RESOLUTION = re.compile(r"[_-]?\d{3,5}x\d{3,5}$")


def flat_fraction(image: np.ndarray) -> float:
    """Share of 8x8 blocks that are flat (std < 0.5 grey levels): high for renders, low for photographs."""
    grey = image.astype(np.float32).mean(axis=2)
    h, w = (grey.shape[0] // 8) * 8, (grey.shape[1] // 8) * 8
    blocks = grey[:h, :w].reshape(h // 8, 8, w // 8, 8).std(axis=(1, 3))
    return float((blocks < 0.5).mean())


def _scene(path: Path) -> str:
    """One key per picture: plasma's <name>/contents/images/1920x1080.jpg and mate's X_3840x2160.jpg variants."""
    return f"{path.parent}/{_RESOLUTION.sub('', path.stem)}"


@register_real_source("debian-wallpapers")
class DebianWallpapers(RealSource):
    def __init__(self, dirs: Sequence[Path] | None = None, min_side: int = MIN_SIDE) -> None:
        self.dirs = tuple(Path(d) for d in (WALLPAPER_DIRS if dirs is None else dirs))
        self.min_side = int(min_side)

    def available(self) -> tuple[bool, str]:
        if not any(d.is_dir() for d in self.dirs):
            return False, (f"none of {', '.join(map(str, self.dirs))} exists: install a Debian wallpaper package "
                           f"({WALLPAPER_PACKAGES})")
        if not self._candidates():
            return False, f"no JPEG of at least {self.min_side} px under {', '.join(map(str, self.dirs))}"
        return True, ""

    def _candidates(self) -> list[Path]:
        """The largest JPEG of each picture whose short side is at least min_side (read from headers only)."""
        from PIL import Image

        best: dict[str, tuple[int, Path]] = {}
        for folder in self.dirs:
            if not folder.is_dir():
                continue
            for path in sorted(folder.rglob("*")):
                if path.suffix.lower() not in (".jpg", ".jpeg") or not path.is_file():
                    continue
                try:
                    with Image.open(path) as im:
                        if im.format != "JPEG" or min(im.size) < self.min_side:
                            continue
                        pixels = im.size[0] * im.size[1]
                except OSError:
                    continue
                key = _scene(path.resolve())
                if key not in best or pixels > best[key][0]:
                    best[key] = (pixels, path)
        return sorted(path for _, path in best.values())

    def photos(self) -> Iterator[RealPhoto]:
        from PIL import Image

        limit = load_settings().max_image_pixels
        for path in self._candidates():
            with Image.open(path) as im:
                if im.size[0] * im.size[1] > limit:
                    warnings.warn(f"{path}: {im.size[0]}x{im.size[1]} is over APATE_MAX_IMAGE_PIXELS; skipped")
                    continue
                image, _grey = as_rgb(np.asarray(im.convert("RGB")))
            if flat_fraction(image) > MAX_FLAT:
                continue  # a render (gradient, logo) saved as JPEG
            yield str(path.relative_to(path.anchor)), image
