"""Extra real-photo sources (detect.training.real_photos): bundled photos, Debian wallpapers."""

from __future__ import annotations

import numpy as np
import pytest

from apate_core.detect.training import real_photos
from apate_core.detect.training.real_photos import create_real_source, iter_real_photos, list_real_sources


def test_registry_lists_sources():
    assert {"bundled", "debian-wallpapers"} <= set(list_real_sources())


def test_bundled_yields_rgb_uint8_photos_without_the_test_split():
    photos = dict(iter_real_photos("bundled", splits=("val",)))
    assert photos and all(name.startswith("bundled/") for name in photos)
    for image in photos.values():
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert create_real_source("bundled").splits == ("train", "val")


def test_debian_source_reports_a_missing_folder_and_yields_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(real_photos, "WALLPAPER_DIRS", (tmp_path / "wallpapers",))
    ok, reason = create_real_source("debian-wallpapers").available()
    assert not ok and str(tmp_path / "wallpapers") in reason
    with pytest.warns(UserWarning, match="install a Debian wallpaper package"):
        assert list(iter_real_photos("debian-wallpapers")) == []


def test_debian_source_keeps_only_large_jpeg_photos(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 256, (512, 600, 3), dtype=np.uint8)  # stands in for a photograph's texture
    folder = tmp_path / "backgrounds" / "pkg"
    folder.mkdir(parents=True)
    Image.fromarray(noisy).save(folder / "Photo.jpg", quality=90)
    bigger = rng.integers(0, 256, (560, 640, 3), dtype=np.uint8)
    Image.fromarray(bigger).save(folder / "Photo_640x560.jpg")  # the same picture, larger: the one kept
    Image.fromarray(noisy[:200, :200]).save(folder / "small.jpg")  # under 512 px
    Image.fromarray(np.full((600, 600, 3), 200, np.uint8)).save(folder / "flat.jpg")  # a render
    Image.fromarray(noisy).save(folder / "render.png")
    (folder / "logo.svg").write_text("<svg/>")
    photos = dict(iter_real_photos("debian-wallpapers", dirs=[tmp_path / "backgrounds"]))
    assert [name.rsplit("/", 1)[-1] for name in photos] == ["Photo_640x560.jpg"]
    assert next(iter(photos.values())).shape == (560, 640, 3)
