"""Animated WebP as a short clip, decoded by Pillow: FFmpeg (8.0 here) demuxes WebP but has no decoder for its
animation chunks, so it cannot play one. Like an animated GIF, it is analysed frame by frame (APATE_ANIMATED_GIF
governs both); a still WebP stays an image.

The probe reads only RIFF chunk headers (canvas size, loop count, each frame's duration), never pixels: intake's
pixel cap is checked on the canvas before anything is decoded. Frames come out composited on the canvas, one at a
time, through :func:`webp_frames`; video_frames samples them and video_transcode makes the browser copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
from PIL import Image

from ..errors import CorruptMedia, UnsupportedMedia
from ..progress import CancelToken, check_cancelled

CONTAINER = "webp"
_ANIMATION_FLAG = 0x02  # VP8X flags: the file holds an ANIM chunk and ANMF frames
# Browsers show a frame of 10 ms or less for 100 ms (so do GIF players): frame times follow what people see.
_SHORTEST_MS, _SHOWN_MS = 10, 100


@dataclass(frozen=True)
class WebpAnimation:
    width: int  # canvas
    height: int
    durations: tuple[float, ...]  # seconds each frame shows
    loop: Optional[int] = None  # 0: forever
    size_bytes: int = field(default=0, compare=False)

    @property
    def duration(self) -> float:
        return round(sum(self.durations), 6)

    def intervals(self) -> list[tuple[float, float]]:
        """(start, stop) seconds of each frame."""
        out, t = [], 0.0
        for seconds in self.durations:
            out.append((round(t, 6), round(t + seconds, 6)))
            t += seconds
        return out


def read_webp_animation(path: str | Path) -> Optional[WebpAnimation]:
    """The animation of a WebP file from its chunk headers; None when it is not an animated WebP.

    A truncated frame chunk ends the animation there (as a damaged video's tail does).
    """
    path = Path(path)
    total = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WEBP":
            return None
        canvas, animated, loop, durations = (0, 0), False, None, []
        while len(header := fh.read(8)) == 8:
            fourcc, size = header[:4], int.from_bytes(header[4:], "little")
            start = fh.tell()
            if start + size > total:
                break
            payload = fh.read(min(size, 16)) if fourcc in (b"VP8X", b"ANIM", b"ANMF") else b""
            if fourcc == b"VP8X" and size >= 10:
                animated = bool(payload[0] & _ANIMATION_FLAG)
                canvas = (1 + _u24(payload, 4), 1 + _u24(payload, 7))
            elif fourcc == b"ANIM" and size >= 6:
                loop = int.from_bytes(payload[4:6], "little")
            elif fourcc == b"ANMF" and size >= 16:
                ms = _u24(payload, 12)
                durations.append((ms if ms > _SHORTEST_MS else _SHOWN_MS) / 1000.0)
            fh.seek(start + size + (size & 1))  # chunks are padded to an even size
    if not animated or not durations:
        return None
    return WebpAnimation(canvas[0], canvas[1], tuple(durations), loop, total)


def _u24(data: bytes, at: int) -> int:
    return int.from_bytes(data[at:at + 3], "little")


def is_animated_webp(path: str | Path) -> bool:
    """More than one frame: a one-frame animation is a still image."""
    animation = read_webp_animation(path)
    return animation is not None and len(animation.durations) > 1


def probe_webp(path: str | Path):
    """A VideoInfo for an animated WebP, from its chunk headers. Raises UnsupportedMedia for a still WebP and
    CorruptMedia for a damaged one."""
    from .images import _open
    from .video_probe import ACCEPTED, VideoInfo

    animation = read_webp_animation(path)
    if animation is None or len(animation.durations) < 2:
        raise UnsupportedMedia("A still WebP is an image, not a video", accepted=ACCEPTED)
    if animation.width <= 0 or animation.height <= 0:
        raise CorruptMedia("The animated WebP declares no canvas size", accepted=ACCEPTED)
    with _open(Path(path)) as image:  # libwebp's demuxer checks every chunk (no pixels yet): a cut file fails here
        if getattr(image, "n_frames", 1) != len(animation.durations):
            raise CorruptMedia("The animated WebP's frames do not add up (damaged)", accepted=ACCEPTED)
    duration = animation.duration
    frames = len(animation.durations)
    return VideoInfo(
        container=CONTAINER, codec="webp", width=animation.width, height=animation.height, rotation=0,
        display_width=animation.width, display_height=animation.height, fps=frames / duration, duration=duration,
        frame_count=frames, has_audio=False, audio_codec=None, audio_channels=None, audio_sample_rate=None,
        bit_rate=int(animation.size_bytes * 8 / duration), pixel_format="rgba", keyframe_interval=None,
        tags={} if animation.loop is None else {"loop": str(animation.loop)},
    )


def webp_frames(path: str | Path, cancel: Optional[CancelToken] = None) -> Iterator[tuple[float, float, Image.Image]]:
    """(start, stop, canvas) of each frame in order; the canvas image is only valid until the next one.

    A frame that fails to decode ends the clip, like a damaged video tail.
    """
    from .images import _open

    animation = read_webp_animation(path)
    if animation is None:
        return
    with _open(Path(path)) as image:
        for n, (start, stop) in enumerate(animation.intervals()):
            check_cancelled(cancel)
            try:
                image.seek(n)
                image.load()
            except (OSError, EOFError, ValueError, SyntaxError):
                return
            yield start, stop, image


def webp_rgb(image: Image.Image, max_side: Optional[int] = None) -> np.ndarray:
    """An H x W x 3 uint8 copy of a frame, transparency on white (as for still images), longest side <= max_side."""
    from .images import _to_rgb8
    from .video_frames import scaled_size

    size = scaled_size(image.width, image.height, max_side)
    if size != image.size:
        image = image.resize(size, Image.Resampling.BOX)  # area averaging, as swscale's AREA does for videos
    return _to_rgb8(image)
