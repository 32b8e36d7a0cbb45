"""Decode still images safely into upright 8-bit RGB arrays."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import CorruptMedia, MediaTooLarge, UnsupportedMedia

# Pillow's names for the formats Apate's settings speak of.
PIL_FORMATS = {"JPEG": "jpeg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "TIFF": "tiff", "BMP": "bmp"}


@dataclass(frozen=True)
class ImageInfo:
    format: str
    width: int  # upright, after EXIF orientation
    height: int
    mode: str  # Pillow mode before conversion, e.g. CMYK, I;16, P, RGBA
    exif_orientation: int
    had_alpha: bool
    frames: int


@dataclass(frozen=True)
class DecodedImage:
    info: ImageInfo
    rgb: np.ndarray  # (H, W, 3) uint8


def _open(path: Path) -> Image.Image:
    try:
        with warnings.catch_warnings():
            # Apate enforces its own pixel cap below; Pillow's warning would only add noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(path)
    except Image.DecompressionBombError as exc:
        raise MediaTooLarge(f"The image declares too many pixels ({exc})", limit="see APATE_MAX_IMAGE_PIXELS") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise CorruptMedia(f"The image cannot be decoded: {exc}", accepted="undamaged JPEG, PNG or WebP files") from None


def check_pixels(width: int, height: int, max_pixels: int) -> None:
    """Refuse decompression bombs from the header, before a single pixel is decoded."""
    if width <= 0 or height <= 0:
        raise CorruptMedia(f"The image declares an invalid size {width}x{height}")
    if width * height > max_pixels:
        raise MediaTooLarge(
            f"The image declares {width}x{height} = {width * height:,} pixels",
            limit=f"{max_pixels:,} pixels (APATE_MAX_IMAGE_PIXELS)",
        )


def _to_rgb8(im: Image.Image) -> np.ndarray:
    """Any Pillow mode to 8-bit RGB; transparency is flattened onto white, as a viewer shows it."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or arr.max() > 255 else 255.0
        grey = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(canvas, rgba)
    rgb = im.convert("RGB")
    return np.asarray(rgb, dtype=np.uint8).copy()


def decode_image(path: str | Path, *, max_pixels: int, accepted: tuple[str, ...]) -> DecodedImage:
    """Decode an image file (first frame), apply EXIF orientation and convert to RGB8."""
    im = _open(Path(path))
    with im:
        fmt = PIL_FORMATS.get(im.format or "", (im.format or "unknown").lower())
        if fmt not in accepted:
            raise UnsupportedMedia(
                f"{fmt.upper()} images are not accepted", accepted=", ".join(a.upper() for a in accepted)
            )
        check_pixels(im.width, im.height, max_pixels)
        mode = im.mode
        had_alpha = mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info)
        orientation = int(im.getexif().get(0x0112, 1) or 1)
        frames = int(getattr(im, "n_frames", 1))
        try:
            im.load()
            upright = ImageOps.exif_transpose(im)
            rgb = _to_rgb8(upright)
        except (OSError, SyntaxError, ValueError) as exc:
            raise CorruptMedia(
                f"The {fmt.upper()} image is damaged or truncated: {exc}", accepted="undamaged image files"
            ) from None
    info = ImageInfo(fmt, rgb.shape[1], rgb.shape[0], mode, orientation, had_alpha, frames)
    return DecodedImage(info, rgb)


def count_frames(path: str | Path) -> int:
    """Frame count of a (possibly animated) image, reading headers only."""
    with _open(Path(path)) as im:
        return int(getattr(im, "n_frames", 1))


def check_protect_size(width: int, height: int, max_side: int) -> None:
    """Protection optimises a perturbation at full resolution, so the longest side is capped."""
    if max(width, height) > max_side:
        raise MediaTooLarge(
            f"The image is {width}x{height}; protection works at full resolution",
            accepted="images whose longest side is within the limit (downscale it first)",
            limit=f"{max_side} px per side (APATE_MAX_IMAGE_SIDE)",
        )
