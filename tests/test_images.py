"""Image intake: content sniffing, orientation, colour modes, bombs, damaged and mislabelled files."""

import io

import numpy as np
import pytest
from PIL import Image

from apate_core.errors import CorruptMedia, MediaTooLarge, UnsupportedMedia
from apate_core.media.images import decode_image
from apate_core.media.intake import intake_file
from apate_core.media.sniff import sniff_file

ACCEPTED = ("jpeg", "png", "webp")


def _gradient(w=64, h=48):
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // w, y * 255 // h, np.full_like(x, 128)], axis=2).astype(np.uint8)


def _save(tmp_path, name, image, **params):
    path = tmp_path / name
    image.save(path, **params)
    return path


@pytest.mark.parametrize("fmt,name", [("JPEG", "a.jpg"), ("PNG", "a.png"), ("WEBP", "a.webp")])
def test_accepted_formats_decode_to_rgb8(tmp_path, settings, fmt, name):
    path = _save(tmp_path, name, Image.fromarray(_gradient()), format=fmt)
    media = intake_file(path, settings)
    assert (media.kind, media.format) == ("image", fmt.lower())
    assert (media.image.width, media.image.height) == (64, 48)
    assert len(media.sha256) == 64


def test_exif_orientation_is_applied(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    img = np.zeros((40, 80, 3), np.uint8)
    img[:, :10] = 255  # white band on the stored left edge
    path = _save(tmp_path, "o.jpg", Image.fromarray(img), exif=exif, quality=95)
    decoded = decode_image(path, max_pixels=10**8, accepted=ACCEPTED)
    assert decoded.rgb.shape == (80, 40, 3) and decoded.info.exif_orientation == 6
    assert decoded.rgb[:10].mean() > 200 and decoded.rgb[-10:].mean() < 50  # left band is now on top


def test_cmyk_becomes_rgb(tmp_path):
    path = _save(tmp_path, "c.jpg", Image.fromarray(_gradient()).convert("CMYK"), quality=95)
    decoded = decode_image(path, max_pixels=10**8, accepted=ACCEPTED)
    assert decoded.info.mode == "CMYK" and decoded.rgb.dtype == np.uint8 and decoded.rgb.shape == (48, 64, 3)
    assert np.abs(decoded.rgb.astype(int) - _gradient().astype(int)).mean() < 12


def test_sixteen_bit_is_scaled_not_clipped(tmp_path):
    ramp = (np.linspace(0, 65535, 64 * 48).reshape(48, 64)).astype(np.uint16)
    path = _save(tmp_path, "g16.png", Image.fromarray(ramp))
    decoded = decode_image(path, max_pixels=10**8, accepted=ACCEPTED)
    assert decoded.info.mode.startswith("I")
    grey = decoded.rgb[..., 0].astype(int)
    assert grey.min() == 0 and grey.max() == 255 and 100 < grey.mean() < 155


def test_palette_with_transparency_and_alpha_flatten_on_white(tmp_path):
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[:10, :, :] = (255, 0, 0, 255)  # top half opaque red, bottom transparent
    path = _save(tmp_path, "a.png", Image.fromarray(rgba, "RGBA"))
    decoded = decode_image(path, max_pixels=10**8, accepted=ACCEPTED)
    assert decoded.info.had_alpha and tuple(decoded.rgb[2, 2]) == (255, 0, 0) and tuple(decoded.rgb[15, 2]) == (255, 255, 255)
    pal = Image.fromarray(rgba, "RGBA").convert("P")
    pal_path = _save(tmp_path, "p.png", pal, transparency=pal.getpixel((2, 15)))
    decoded = decode_image(pal_path, max_pixels=10**8, accepted=ACCEPTED)
    assert decoded.info.mode == "P" and tuple(decoded.rgb[15, 2]) == (255, 255, 255)


def test_decompression_bomb_refused_from_header(tmp_path, settings, monkeypatch):
    path = _save(tmp_path, "bomb.png", Image.new("1", (12000, 9000)))  # 108 Mpx, a few KB on disk
    assert path.stat().st_size < 100_000
    loads = []
    monkeypatch.setattr(Image.Image, "load", lambda self: loads.append(1))
    with pytest.raises(MediaTooLarge) as info:
        intake_file(path, settings)
    assert "12000x9000" in str(info.value) and "APATE_MAX_IMAGE_PIXELS" in str(info.value)
    assert not loads, "pixels were decoded before the cap was checked"


def test_oversized_file_refused_with_limit(tmp_path, settings):
    from apate_core.settings import load_settings

    small = load_settings({}, max_image_mb=0.001, cache_dir=settings.cache_dir)
    path = _save(tmp_path, "big.png", Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)))
    with pytest.raises(MediaTooLarge) as info:
        intake_file(path, small)
    assert "APATE_MAX_IMAGE_MB" in str(info.value)


def test_mislabelled_file_is_judged_by_content(tmp_path, settings):
    buffer = io.BytesIO()
    Image.fromarray(_gradient()).save(buffer, format="PNG")
    fake_video = tmp_path / "holiday.mp4"
    fake_video.write_bytes(buffer.getvalue())
    media = intake_file(fake_video, settings)
    assert (media.kind, media.format, media.name) == ("image", "png", "holiday.mp4")
    text = tmp_path / "photo.jpg"
    text.write_text("this is not a picture at all")
    with pytest.raises(UnsupportedMedia) as info:
        intake_file(text, settings)
    assert "Accepted:" in str(info.value)


def test_empty_and_truncated_images(tmp_path, settings):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(CorruptMedia, match="empty"):
        intake_file(empty, settings)
    good = _save(tmp_path, "whole.jpg", Image.fromarray(_gradient(256, 256)), quality=90)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    with pytest.raises(CorruptMedia, match="damaged or truncated"):
        intake_file(cut, settings)


def test_formats_outside_the_accepted_list(tmp_path, settings):
    tiff = _save(tmp_path, "t.tif", Image.fromarray(_gradient()))
    with pytest.raises(UnsupportedMedia, match="TIFF"):
        intake_file(tiff, settings)
    still_gif = _save(tmp_path, "s.gif", Image.fromarray(_gradient()))
    with pytest.raises(UnsupportedMedia, match="still GIF"):
        intake_file(still_gif, settings)


def test_sniffing_ignores_names(tmp_path):
    for fmt, expect in (("JPEG", "jpeg"), ("PNG", "png"), ("WEBP", "webp"), ("GIF", "gif")):
        path = _save(tmp_path, f"x-{fmt}.bin", Image.fromarray(_gradient()), format=fmt)
        assert sniff_file(path).format == expect


def test_real_photos(testdata, settings):
    for name in ("kodim03.png", "rommel.jpg", "bricks.jpg", "wood.jpg"):
        media = intake_file(testdata / "real" / name, settings)
        assert media.kind == "image" and media.image.width > 0
    kodak = decode_image(testdata / "real" / "kodim03.png", max_pixels=10**8, accepted=ACCEPTED)
    assert kodak.rgb.shape == (512, 768, 3)
