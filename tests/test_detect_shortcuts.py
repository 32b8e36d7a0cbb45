"""No shortcuts: the default detector's score must not come from a file property.

* Re-encoding a generated image the way a camera or a platform would (JPEG, camera EXIF, resized)
  does not turn a flagged image into a "real" one.
* Metadata never reaches the score: the same pixels with or without EXIF, XMP-like text or an
  A1111 ``parameters`` PNG chunk score exactly alike, and PNG vs lossless WebP of the same pixels too.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from apate_core.detect import create_detector, list_detectors
from apate_core.detect.pipeline import DetectParams, analyse_path
from apate_core.settings import load_settings

MODEL = "apate-universal"


@pytest.fixture(scope="module")
def detector():
    if MODEL not in list_detectors():
        pytest.skip(f"{MODEL} is not installed (weights or CLIP backbone missing)")
    return create_detector(MODEL)


def _generated_images() -> list[Path]:
    testdata = os.environ.get("APATE_TESTDATA")
    folder = Path(testdata) / "generated" / "fake" if testdata else None
    if not folder or not folder.is_dir():
        pytest.skip("APATE_TESTDATA is not set (needs ../shared/testdata/generated)")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp"))


def _camera_jpeg(image: Image.Image, quality: int, scale: float) -> Image.Image:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0131] = "Canon", "Canon EOS 5D Mark IV", "Firmware 1.2.0"
    if scale != 1.0:
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS)
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="JPEG", quality=quality, exif=exif, subsampling=2)
    buf.seek(0)
    return Image.open(buf)


def _p(detector, image: Image.Image) -> float:
    return float(detector.predict_proba([np.asarray(image.convert("RGB"))])[0])


def test_camera_like_jpeg_does_not_turn_a_flagged_generated_image_real(detector):
    flagged = 0
    for path in _generated_images():
        with Image.open(path) as im:
            original = _p(detector, im)
            if original < 0.6:
                continue
            flagged += 1
            for quality, scale in ((92, 1.0), (80, 0.75), (70, 0.5)):
                after = _p(detector, _camera_jpeg(im, quality, scale))
                assert after > 0.4, f"{path.name}: {original:.2f} -> {after:.2f} as a q{quality} camera JPEG"
    if not flagged:
        pytest.skip("the model flags none of the test generated images, so there is nothing to re-encode")


def test_metadata_never_changes_the_score(detector, tmp_path):
    rng = np.random.default_rng(0)
    pixels = (rng.random((256, 320, 3)) * 255).astype(np.uint8)
    pixels[64:192, 80:240] = [30, 140, 200]
    plain, tagged, webp = tmp_path / "plain.png", tmp_path / "tagged.png", tmp_path / "same.webp"
    Image.fromarray(pixels).save(plain)
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a photo of a lake, Steps: 30, Sampler: DPM++ 2M, Model: sd_xl_base_1.0")
    info.add_text("Software", "Adobe Photoshop 25.0")
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Apple", "iPhone 15 Pro"
    Image.fromarray(pixels).save(tagged, pnginfo=info, exif=exif)
    Image.fromarray(pixels).save(webp, lossless=True)
    settings = load_settings(environ={}, cache_dir=str(tmp_path / "cache"))
    params = DetectParams(cam=None)
    scores = [analyse_path(p, settings, detector, params).score for p in (plain, tagged, webp)]
    assert scores[0] == scores[1] == scores[2]
