"""Small synthetic test media, written with PyAV.

Every video frame carries its own frame number, so a test can check that a sampled frame is the one its
timestamp says it is:

* a row of ``CODE_BITS`` black/white blocks along the top edge of the *stored* picture spells the frame index in
  binary (most significant bit on the left) -- black and white survive every lossy codec and the GIF palette;
* a red block at the left edge, just under the code row (the top-left corner of the stored picture), shows how a
  picture was turned;
* a vertical bar moves right one step per frame, so encoders see real motion.

Use :func:`read_frame_index` to recover the index from an RGB image (rotate it back to storage orientation first,
or pass ``rotation``).

Functions:

* :func:`make_video` -- any of mp4, mov, mkv, webm, avi, flv or an animated gif; optional audio, display rotation
  and keyframe interval. ``DEFAULT_CODECS`` lists each container's default video and audio codecs.
* :func:`make_audio_only` -- an .m4a (MP4) file with only an AAC track.
* :func:`truncate` -- cut a file to a fraction of its size (corrupt-media tests).
* :func:`write_empty` -- a zero-byte file.
* :func:`frame_image` -- the picture of frame ``i``; :func:`read_frame_index` and :func:`red_corner` read one back.

Encoders used (all in PyAV 18's bundled FFmpeg): libx264, libvpx (vp8), libvpx-vp9, mpeg4, mjpeg, flv (flv1), gif;
audio aac, libopus (webm), pcm_s16le (avi; mp3's encoder delay makes the avi muxer drop a video timestamp).
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path
from typing import Optional, Sequence

import av
import numpy as np

CODE_BITS = 10  # frame indices 0..1023 are encoded; make_video refuses longer clips
MAX_CODED_FRAMES = 2**CODE_BITS

# container -> (default video codec, default audio codec)
DEFAULT_CODECS: dict[str, tuple[str, Optional[str]]] = {
    "mp4": ("h264", "aac"),
    "mov": ("h264", "aac"),
    "mkv": ("h264", "aac"),
    "webm": ("vp9", "opus"),
    "avi": ("mpeg4", "pcm"),  # mp3's encoder delay makes the avi muxer shift and drop a video timestamp
    "flv": ("flv1", "aac"),
    "gif": ("gif", None),
}

# codec name as a test says it -> (PyAV encoder name, pixel format the encoder wants)
_ENCODERS: dict[str, tuple[str, str]] = {
    "h264": ("libx264", "yuv420p"),
    "vp8": ("libvpx", "yuv420p"),
    "vp9": ("libvpx-vp9", "yuv420p"),
    "mpeg4": ("mpeg4", "yuv420p"),
    "mjpeg": ("mjpeg", "yuvj420p"),
    "flv1": ("flv", "yuv420p"),
    "gif": ("gif", "rgb8"),
}

_AUDIO_ENCODERS: dict[str, tuple[str, int]] = {  # encoder, sample rate it accepts
    "aac": ("aac", 44100),
    "opus": ("libopus", 48000),
    "vorbis": ("libvorbis", 44100),
    "mp3": ("libmp3lame", 44100),
    "pcm": ("pcm_s16le", 44100),
}

# muxer name PyAV wants for each container short name
_MUXERS = {"mp4": "mp4", "mov": "mov", "mkv": "matroska", "webm": "webm", "avi": "avi", "flv": "flv", "gif": "gif"}


def frame_image(index: int, size: tuple[int, int] = (160, 120)) -> np.ndarray:
    """The RGB picture (H x W x 3 uint8, storage orientation) that :func:`make_video` writes as frame ``index``."""
    width, height = size
    img = np.full((height, width, 3), 96, dtype=np.uint8)
    # a soft diagonal gradient so the picture is not flat
    img[..., 2] = (np.add.outer(np.arange(height), np.arange(width)) * 128 // (width + height) + 64).astype(np.uint8)
    bar_w = max(2, width // 40)
    x = (index * bar_w) % max(1, width - bar_w)
    img[height // 3 :, x : x + bar_w] = (255, 255, 0)
    block_w, block_h = width // CODE_BITS, _code_height(height)
    for bit in range(CODE_BITS):
        on = (index >> (CODE_BITS - 1 - bit)) & 1
        img[:block_h, bit * block_w : (bit + 1) * block_w] = 255 if on else 0
    # red corner marker just below the code row, on the left: shows which way the picture was turned
    img[block_h : 2 * block_h, : block_w] = (255, 0, 0)
    return img


def make_animated_webp(path: str | Path, durations_ms: Sequence[int] = (100,) * 10,
                       size: tuple[int, int] = (160, 120)) -> Path:
    """A lossless animated WebP whose frame k is :func:`frame_image` (k), shown for ``durations_ms[k]``."""
    from PIL import Image

    frames = [Image.fromarray(frame_image(k, size)) for k in range(len(durations_ms))]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=list(durations_ms), loop=0, lossless=True)
    return Path(path)


def _code_height(height: int) -> int:
    return max(8, height // 6)


def read_frame_index(image: np.ndarray, rotation: int = 0) -> int:
    """Recover the frame number that :func:`frame_image` drew.

    ``image`` is RGB H x W x 3; ``rotation`` is how many degrees clockwise it was turned from storage orientation
    (e.g. the ``rotation`` of a probed video, since frames come out upright). Works after downscaling.
    """
    stored = np.rot90(image, k=(rotation // 90) % 4)  # undo a clockwise turn with counter-clockwise turns
    height, width = stored.shape[:2]
    block_w, block_h = width / CODE_BITS, _code_height(height)
    grey = stored.astype(np.float32).mean(axis=2)
    value = 0
    for bit in range(CODE_BITS):
        x0, x1 = int(bit * block_w + block_w / 4), int((bit + 1) * block_w - block_w / 4)
        y0, y1 = int(block_h / 4), max(int(block_h / 4) + 1, int(block_h * 3 / 4))
        value = (value << 1) | int(grey[y0:y1, x0:x1].mean() > 128)
    return value


def red_corner(image: np.ndarray) -> str:
    """Which corner of an RGB image holds the red marker: ``"top-left"``, ``"top-right"``, ... (rotation tests)."""
    height, width = image.shape[:2]
    corners = {
        "top-left": image[: height // 4, : width // 4],
        "top-right": image[: height // 4, -width // 4 :],
        "bottom-left": image[-height // 4 :, : width // 4],
        "bottom-right": image[-height // 4 :, -width // 4 :],
    }

    def redness(patch: np.ndarray) -> float:
        p = patch.astype(np.float32)
        return float(((p[..., 0] > 180) & (p[..., 1] < 90) & (p[..., 2] < 90)).mean())

    return max(corners, key=lambda name: redness(corners[name]))


def make_video(
    path: str | Path,
    container: str,
    codec: Optional[str] = None,
    seconds: float = 2,
    fps: float = 10,
    size: tuple[int, int] = (160, 120),
    audio: bool = False,
    rotation: int = 0,
    gop: Optional[int] = None,
    audio_codec: Optional[str] = None,
) -> Path:
    """Write a synthetic clip and return its path.

    ``container``: mp4, mov, mkv, webm, avi, flv or gif. ``codec``: h264, vp8, vp9, mpeg4, mjpeg, flv1 or gif
    (default per container: see ``DEFAULT_CODECS``). ``size`` is (width, height) as stored. ``rotation``: degrees
    clockwise a player must turn the picture to show it upright, written as a display matrix (mp4/mov only: other
    muxers do not store one). ``gop``: frames between keyframes (None: the encoder's default). ``audio`` adds a 440 Hz
    tone as long as the video (not for gif); ``audio_codec`` overrides the container's default.
    Frame ``i`` has pts ``i / fps`` and shows :func:`frame_image` ``(i)``.
    """
    path = Path(path)
    codec = codec or DEFAULT_CODECS[container][0]
    n_frames = int(round(seconds * fps))
    if n_frames > MAX_CODED_FRAMES:
        raise ValueError(f"{n_frames} frames: the pattern encodes at most {MAX_CODED_FRAMES} frame numbers")
    if rotation % 360 and container not in ("mp4", "mov"):
        raise ValueError("display rotation is only written to mp4/mov here")
    if audio and container == "gif":
        raise ValueError("a gif has no audio")
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), "w", format=_MUXERS[container]) as out:
        vstream = _add_video_stream(out, codec, rate, size, gop)
        if rotation % 360:
            # PyAV's set_display_rotation takes counter-clockwise degrees (as VideoFrame.rotation reads back)
            vstream.set_display_rotation(-(rotation % 360))
        astream = _add_audio_stream(out, audio_codec or DEFAULT_CODECS[container][1]) if audio else None
        tone = _Tone(astream) if astream is not None else None
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(frame_image(i, size), format="rgb24")
            frame.pts = i
            frame.time_base = 1 / rate
            out.mux(vstream.encode(frame))
            if tone is not None:  # interleave audio as a real recorder would (the avi muxer needs it)
                out.mux(tone.encode_until((i + 1) / float(rate)))
        out.mux(vstream.encode(None))
        if tone is not None:
            out.mux(tone.flush())
    return path


def _add_video_stream(out, codec: str, rate: Fraction, size: tuple[int, int], gop: Optional[int]):
    encoder, pix_fmt = _ENCODERS[codec]
    options: dict[str, str] = {}
    if encoder == "libx264":
        options = {"preset": "veryfast"}  # has B-frames, so decode order differs from display order
        if gop is not None:
            options["x264-params"] = f"keyint={gop}:min-keyint={gop}:scenecut=0"
    elif encoder.startswith("libvpx"):
        options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    stream = out.add_stream(encoder, rate=rate, options=options)
    stream.width, stream.height = size
    stream.pix_fmt = pix_fmt
    if gop is not None:
        stream.codec_context.gop_size = gop
    if encoder in ("mpeg4", "flv", "mjpeg"):
        stream.codec_context.bit_rate = 800_000  # the default 200 kb/s smears the code blocks at low sizes
    return stream


def _add_audio_stream(out, codec: Optional[str]):
    if codec is None:
        raise ValueError("this container has no default audio codec")
    encoder, rate = _AUDIO_ENCODERS[codec]
    stream = out.add_stream(encoder, rate=rate)
    stream.layout = "stereo"
    return stream


class _Tone:
    """A 440 Hz stereo tone, encoded in chunks up to a given time (PyAV re-chunks to the encoder's frame size)."""

    CHUNK = 1024

    def __init__(self, stream) -> None:
        self.stream = stream
        self.rate = stream.rate
        self.written = 0  # samples

    def encode_until(self, seconds: float) -> list:
        packets = []
        total = int(math.ceil(seconds * self.rate))
        while self.written < total:
            n = min(self.CHUNK, total - self.written)
            packets += self.stream.encode(self._frame(self.written, n))
            self.written += n
        return packets

    def flush(self) -> list:
        return self.stream.encode(None)

    def _frame(self, start: int, n: int):
        t = np.arange(start, start + n) / self.rate
        wave = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        fmt = self.stream.format.name
        planar = np.stack([wave, wave])
        if fmt == "fltp":
            data = planar
        elif fmt == "s16p":
            data = (planar * 32767).astype(np.int16)
        elif fmt == "s16":
            data = (planar.T.reshape(1, -1) * 32767).astype(np.int16)
        else:  # flt
            data, fmt = planar.T.reshape(1, -1), "flt"
        frame = av.AudioFrame.from_ndarray(data, format=fmt, layout="stereo")
        frame.sample_rate = self.rate
        frame.pts = start
        frame.time_base = Fraction(1, self.rate)
        return frame


def make_audio_only(path: str | Path, seconds: float = 1.0) -> Path:
    """Write an MP4 (use an .m4a or .mp4 name) holding only an AAC stereo tone: probe_video must refuse it."""
    path = Path(path)
    with av.open(str(path), "w", format="mp4") as out:
        tone = _Tone(_add_audio_stream(out, "aac"))
        out.mux(tone.encode_until(seconds))
        out.mux(tone.flush())
    return path


def truncate(path: str | Path, fraction: float, dst: str | Path | None = None, keep_bytes: int = 0) -> Path:
    """Keep the first ``fraction`` (0..1) of ``path``'s bytes, at least ``keep_bytes`` of them, in ``dst``
    (default: in place). Returns the path written."""
    src = Path(path)
    data = src.read_bytes()
    out = Path(dst) if dst is not None else src
    out.write_bytes(data[: max(keep_bytes, int(len(data) * fraction))])
    return out


def write_empty(path: str | Path) -> Path:
    """A zero-byte file."""
    path = Path(path)
    path.write_bytes(b"")
    return path
