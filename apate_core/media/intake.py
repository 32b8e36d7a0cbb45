"""The one door every file comes through: size limits, content sniffing, decoding checks."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

from ..errors import CorruptMedia, InputRefused, MediaTooLarge, UnsupportedMedia
from ..settings import Settings
from .animated import is_animated_webp
from .images import ImageInfo, check_pixels, count_frames, decode_image
from .sniff import sniff_file

CHUNK = 1 << 20
ANIMATED_IMAGE_FORMATS = ("gif", "webp")  # analysed as clips when animated (APATE_ANIMATED_GIF)


@dataclass(frozen=True)
class MediaFile:
    """An accepted file: where it is, what its content is, and what decoding found."""

    path: Path
    name: str  # the name the person gave it (display only; never trusted for the format)
    kind: str  # "image" | "video"
    format: str  # content-detected: jpeg, png, webp, mp4, mov, mkv, webm, avi, flv, gif
    size_bytes: int
    sha256: str
    image: Optional[ImageInfo] = None
    video: Optional[object] = None  # VideoInfo; typed loosely to keep video decoding import-light

    def to_dict(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if k not in ("image", "video", "path")}
        out["path"] = str(self.path)
        out["image"] = asdict(self.image) if self.image else None
        out["video"] = asdict(self.video) if self.video else None
        return out


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _accepted(settings: Settings) -> str:
    videos = ", ".join(settings.video_containers)
    images = ", ".join(settings.image_formats)
    return f"videos ({videos}) up to {settings.max_video_mb:g} MB; images ({images}) up to {settings.max_image_mb:g} MB"


def _check_size(size: int, limit: int, what: str, setting: str) -> None:
    if size > limit:
        raise MediaTooLarge(
            f"The {what} is {size / 1048576:.1f} MB", limit=f"{limit / 1048576:g} MB ({setting})"
        )


def _intake_video(path: Path, fmt: str, settings: Settings) -> object:
    from .video import probe_video

    if fmt not in ANIMATED_IMAGE_FORMATS and fmt not in settings.video_containers:
        raise UnsupportedMedia(f"{fmt.upper()} video is not accepted", accepted=_accepted(settings))
    _check_size(path.stat().st_size, settings.max_video_bytes, "video", "APATE_MAX_VIDEO_MB")
    info = probe_video(path, max_seconds=settings.max_video_seconds)
    # A tiny file can declare gigantic frames: refuse them before anything decodes at that size.
    check_pixels(info.width, info.height, settings.max_image_pixels)
    return info


def _animation_kind(path: Path, fmt: str, settings: Settings) -> str:
    """An animated GIF or WebP is a short clip (analysed frame by frame) unless APATE_ANIMATED_GIF=refuse; a still
    WebP is an image, a still GIF is not an accepted image."""
    animated = count_frames(path) > 1 if fmt == "gif" else is_animated_webp(path)
    if animated and settings.animated_gif == "video":
        return "video"
    if fmt == "webp" and not animated:
        return "image"
    if fmt == "webp":
        message = "Animated WebP files are not accepted (APATE_ANIMATED_GIF=refuse)"
    elif settings.animated_gif == "video":
        message = "GIF files are accepted only as animations (analysed as video); this one is a still GIF"
    else:
        message = "GIF files are not accepted (APATE_ANIMATED_GIF=refuse)"
    raise UnsupportedMedia(message, accepted=_accepted(settings))


def existing_file(path: str | Path, accepted: str = "a path to a video or image file") -> Path:
    """``path`` when it is a file; otherwise a refusal that says what it is (a folder is not "no such file")."""
    path = Path(path)
    if path.is_file():
        return path
    if path.is_dir():
        raise InputRefused(f"{path} is a folder, not a file", accepted=f"{accepted}; `apate scan` analyses folders")
    raise InputRefused(f"No such file: {path}", accepted=accepted)


def intake_file(path: str | Path, settings: Settings, name: Optional[str] = None) -> MediaFile:
    """Validate a file by content and return what it is; raise an InputRefused subclass otherwise."""
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise CorruptMedia("The file is empty (0 bytes)", accepted=_accepted(settings))
    found = sniff_file(path)
    kind, fmt = found.kind, found.format
    if fmt in ANIMATED_IMAGE_FORMATS:
        kind = _animation_kind(path, fmt, settings)
    if kind == "audio":
        raise UnsupportedMedia(f"The file is {fmt.upper()} audio with no picture", accepted=_accepted(settings))
    image_info, video_info = None, None
    if kind == "image":
        if fmt not in settings.image_formats:
            raise UnsupportedMedia(f"{fmt.upper()} images are not accepted", accepted=_accepted(settings))
        _check_size(size, settings.max_image_bytes, "image", "APATE_MAX_IMAGE_MB")
        image_info = decode_image(path, max_pixels=settings.max_image_pixels, accepted=settings.image_formats).info
    elif kind == "video":
        video_info = _intake_video(path, fmt, settings)
        fmt = getattr(video_info, "container", fmt) or fmt
    else:
        raise UnsupportedMedia(
            f"The content is not a recognised image or video (detected: {fmt})", accepted=_accepted(settings)
        )
    return MediaFile(path, name or path.name, kind, fmt, size, sha256_file(path), image_info, video_info)
