"""Probe a video file with PyAV: container, codecs, geometry, timing, keyframe spacing and tags.

A probe proves the file decodes (it decodes the first frame) but otherwise only demuxes packets, and only a bounded
stretch of them, so it stays fast on long files.
"""

from __future__ import annotations

import statistics
from collections.abc import Collection
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Optional

import av

from ..errors import CorruptMedia, MediaTooLarge, UnsupportedMedia

KNOWN_CONTAINERS = ("mp4", "mov", "mkv", "webm", "avi", "flv", "gif", "webp")
ACCEPTED = "video in MP4, MOV, MKV, WebM, AVI, FLV, animated GIF or animated WebP"

# The keyframe scan stops after this many keyframe intervals or this much media time, whichever comes first.
SCAN_KEYFRAME_INTERVALS = 30
SCAN_SECONDS = 60.0

_FFMPEG_ERRORS = (av.error.FFmpegError, EOFError, OSError, UnicodeDecodeError, ValueError)


@dataclass(frozen=True)
class VideoInfo:
    """What a probe learned about a video. Sizes in pixels, times in seconds."""

    container: str  # one of KNOWN_CONTAINERS
    codec: str  # FFmpeg's codec name (not the decoder's): h264, hevc, vp9, mpeg4, flv1, gif, ...
    width: int  # as stored
    height: int
    rotation: int  # degrees clockwise a player turns the stored picture to show it upright: 0, 90, 180, 270
    display_width: int  # after rotation
    display_height: int
    fps: float  # average frame rate
    duration: float
    frame_count: int  # from the container when it says, else counted or estimated (duration x fps)
    has_audio: bool
    audio_codec: Optional[str]
    audio_channels: Optional[int]
    audio_sample_rate: Optional[int]
    bit_rate: Optional[int]  # the video stream's, else the whole file's, bits per second
    pixel_format: Optional[str]
    keyframe_interval: Optional[float]  # median seconds between keyframes in the first ~60 s
    start_time: float = 0.0  # pts of the video stream's first frame; Frame.time is counted from here
    tags: dict = field(default_factory=dict, hash=False)  # container tags, then video stream tags (see _tags)

    @property
    def is_animated(self) -> bool:
        """More than one frame: a still GIF (or a one-frame clip) is an image, not a video."""
        return self.frame_count > 1


def probe_video(
    path: str | Path, max_seconds: Optional[float] = None, *, containers: Optional[Collection[str]] = None
) -> VideoInfo:
    """Describe the video at ``path``.

    Raises UnsupportedMedia (not a video container, or no video stream: e.g. audio only, or a container outside
    ``containers`` when given), CorruptMedia (empty, truncated before the first frame, undecodable) and MediaTooLarge
    (longer than ``max_seconds``).
    """
    path = Path(path)
    head = _read_head(path)
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":  # FFmpeg cannot decode animated WebP: Pillow reads it
        from .animated import CONTAINER, probe_webp

        _check_container(CONTAINER, None, containers)
        info = probe_webp(path)
        _check_duration(info.duration, max_seconds)
        return info
    with open_video(path, head) as container:
        short = container_name(container.format.name, head)
        _check_container(short, container.format, containers)
        vstream = video_stream(container)
        duration_hint = _metadata_duration(container, vstream)
        _check_duration(duration_hint, max_seconds)
        scan = _scan(container, vstream)
        info = _build_info(container, vstream, short, scan)
    _check_duration(info.duration, max_seconds)
    return info


# -- opening ---------------------------------------------------------------------------------------------------

_SIGNATURES = {  # first bytes of each known container, to tell "corrupt" from "not a video at all"
    b"\x1a\x45\xdf\xa3": "Matroska/WebM",
    b"FLV": "FLV",
    b"GIF8": "GIF",
}


def _read_head(path: Path, size: int = 4096) -> bytes:
    with open(path, "rb") as handle:
        head = handle.read(size)
    if not head:
        raise CorruptMedia("The file is empty (0 bytes)", accepted=ACCEPTED)
    return head


def _looks_like(head: bytes) -> Optional[str]:
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free"):
        return "MP4/MOV"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "AVI"
    for prefix, name in _SIGNATURES.items():
        if head.startswith(prefix):
            return name
    return None


def open_video(path: Path, head: Optional[bytes] = None) -> av.container.InputContainer:
    """``av.open`` for reading, with FFmpeg's failures turned into CorruptMedia / UnsupportedMedia."""
    head = _read_head(path) if head is None else head
    try:
        # Only local file access: a playlist-like file must never make FFmpeg open network URLs.
        return av.open(str(path), mode="r", metadata_errors="ignore", options={"protocol_whitelist": "file"})
    except _FFMPEG_ERRORS as exc:
        kind = _looks_like(head)
        if kind:
            raise CorruptMedia(
                f"The file starts like {kind} video but cannot be read (truncated or damaged: {_reason(exc)})",
                accepted=ACCEPTED,
            ) from None
        raise UnsupportedMedia("The file is not a recognised video format", accepted=ACCEPTED) from None


def _reason(exc: BaseException) -> str:
    """FFmpeg's words for a failure, without the errno number and file name PyAV adds."""
    text = getattr(exc, "strerror", None) or str(exc).strip()
    return text or type(exc).__name__


def container_name(format_name: str, head: bytes) -> Optional[str]:
    """Short container name from PyAV's format name and the file's first bytes (None: not a known container)."""
    names = set(format_name.split(","))
    if "mov" in names or "mp4" in names:
        return "mov" if head[4:8] == b"ftyp" and head[8:12] == b"qt  " or head[4:8] in (b"moov", b"wide") else "mp4"
    if "matroska" in names or "webm" in names:
        return "webm" if _ebml_doctype(head) == "webm" else "mkv"
    for short in ("avi", "flv", "gif"):
        if short in names:
            return short
    return None


def _ebml_doctype(head: bytes) -> Optional[str]:
    """The DocType string of a Matroska EBML header ("matroska" or "webm")."""
    at = head.find(b"\x42\x82", 4, 64)  # DocType element id
    if at < 0 or at + 3 > len(head):
        return None
    size_byte = head[at + 2]
    length = 1
    while length <= 8 and not size_byte & (0x80 >> (length - 1)):
        length += 1
    if length > 8:
        return None
    size = size_byte & (0xFF >> length)
    for byte in head[at + 3 : at + 2 + length]:
        size = (size << 8) | byte
    start = at + 2 + length
    return head[start : start + size].decode("ascii", "replace").rstrip("\x00")


def _check_container(short: Optional[str], fmt, containers: Optional[Collection[str]]) -> None:
    if short is None:
        raise UnsupportedMedia(f"{fmt.long_name or fmt.name} is not an accepted video container", accepted=ACCEPTED)
    if containers is not None and short not in containers:
        raise UnsupportedMedia(
            f"{short.upper()} video is not accepted here", accepted=", ".join(c.upper() for c in containers)
        )


def video_stream(container) -> av.video.stream.VideoStream:
    """The first real video stream (cover art in an audio file is a video stream too, so it is skipped)."""
    for stream in container.streams.video:
        if stream.disposition & av.stream.Disposition.attached_pic:
            continue
        if stream.codec_context is None:  # FFmpeg knows the container but has no decoder for this codec
            raise UnsupportedMedia(
                f"The video codec ({getattr(stream.codec, 'name', 'unknown')}) cannot be decoded here",
                accepted=ACCEPTED + " with a codec FFmpeg decodes (H.264, HEVC, VP8, VP9, AV1, MPEG-4, ...)",
            )
        return stream
    what = "only audio" if container.streams.audio else "no video stream"
    raise UnsupportedMedia(f"The file has {what}: there is no video to analyse", accepted=ACCEPTED)


def first_audio_stream(container):
    """The first audio stream FFmpeg can decode, or None."""
    return next((s for s in container.streams.audio if s.codec_context is not None), None)


# -- timing ----------------------------------------------------------------------------------------------------


def _seconds(value: Optional[int], time_base: Optional[Fraction]) -> Optional[float]:
    if value is None or time_base is None:
        return None
    return float(value * time_base)


def stream_start(container, vstream) -> float:
    start = _seconds(vstream.start_time, vstream.time_base)
    if start is None and container.start_time is not None:
        start = container.start_time / av.time_base
    return start or 0.0


def _metadata_duration(container, vstream) -> Optional[float]:
    duration = _seconds(vstream.duration, vstream.time_base)
    if not duration and container.duration:
        duration = container.duration / av.time_base
    return duration or None


def _check_duration(duration: Optional[float], max_seconds: Optional[float]) -> None:
    if max_seconds is not None and duration is not None and duration > max_seconds:
        raise MediaTooLarge(
            f"The video is {duration:.1f} s long",
            accepted=f"videos up to {max_seconds:g} s",
            limit=f"{max_seconds:g} s (APATE_MAX_VIDEO_SECONDS)",
        )


def frame_rate(vstream) -> Optional[Fraction]:
    """Average frame rate, falling back to the rates FFmpeg guesses."""
    for rate in (vstream.average_rate, vstream.guessed_rate, vstream.base_rate):
        if rate and 0 < rate < 1000:
            return Fraction(rate)
    return None


# -- the bounded packet scan -----------------------------------------------------------------------------------


@dataclass
class _Scan:
    first_frame: Optional[av.VideoFrame] = None
    keyframes: list = field(default_factory=list)  # pts seconds
    first_pts: Optional[float] = None
    end_pts: Optional[float] = None  # pts + duration of the latest packet
    packets: int = 0
    complete: bool = False  # reached the end of the file


def _scan(container, vstream) -> _Scan:
    """Decode the first frame (proof that it decodes) and demux a bounded stretch of packets for keyframe timing."""
    scan = _Scan()
    tb = vstream.time_base
    rate = frame_rate(vstream)
    frame_seconds = float(1 / rate) if rate else 0.0
    try:
        for packet in container.demux(vstream):
            if packet.size == 0 and packet.pts is None and packet.dts is None:  # the end-of-file flush packet
                scan.complete = True
                if scan.first_frame is None:
                    _decode_into(scan, vstream, None)
                break
            _note_packet(scan, packet, tb, frame_seconds)
            if scan.first_frame is None:
                _decode_into(scan, vstream, packet)
            elif _scan_done(scan):
                break
    except _FFMPEG_ERRORS as exc:
        if scan.first_frame is None:
            raise CorruptMedia(
                f"The video cannot be decoded ({_reason(exc)})", accepted=ACCEPTED
            ) from None
        # Damage after the first frame: keep what was learned; the frame iterator stops at the same point.
    if scan.first_frame is None:
        raise CorruptMedia("The video stream holds no decodable frame (truncated or damaged)", accepted=ACCEPTED)
    return scan


def _note_packet(scan: _Scan, packet, tb: Fraction, frame_seconds: float = 0.0) -> None:
    ts = packet.pts if packet.pts is not None else packet.dts
    if ts is None:
        return
    t = float(ts * tb)
    scan.packets += 1
    scan.first_pts = t if scan.first_pts is None else min(scan.first_pts, t)
    end = t + (float(packet.duration * tb) if packet.duration else frame_seconds)  # flv stores no durations
    scan.end_pts = end if scan.end_pts is None else max(scan.end_pts, end)
    if packet.is_keyframe:
        scan.keyframes.append(t)


def _decode_into(scan: _Scan, vstream, packet) -> None:
    frames = vstream.decode(packet)
    if frames:
        scan.first_frame = frames[0]


def _scan_done(scan: _Scan) -> bool:
    if len(scan.keyframes) > SCAN_KEYFRAME_INTERVALS:
        return True
    return scan.first_pts is not None and scan.end_pts is not None and scan.end_pts - scan.first_pts >= SCAN_SECONDS


def _keyframe_interval(scan: _Scan, duration: float) -> Optional[float]:
    keys = sorted(set(scan.keyframes))
    if len(keys) >= 2:
        return round(statistics.median(b - a for a, b in zip(keys, keys[1:])), 6)
    if scan.complete:
        return duration or None  # one keyframe for the whole file
    if scan.first_pts is not None and scan.end_pts is not None:
        return scan.end_pts - scan.first_pts or None  # at least this long
    return None


# -- assembling the answer -------------------------------------------------------------------------------------


def _build_info(container, vstream, short: str, scan: _Scan) -> VideoInfo:
    ctx = vstream.codec_context
    frame = scan.first_frame
    rate = frame_rate(vstream)
    fps = float(rate) if rate else 0.0
    duration = _duration(container, vstream, scan, fps)
    if not fps and duration and scan.complete and scan.packets:
        fps = scan.packets / duration
    rotation = display_rotation(frame)
    width, height = ctx.width or frame.width, ctx.height or frame.height
    dw, dh = (height, width) if rotation in (90, 270) else (width, height)
    audio = first_audio_stream(container)
    return VideoInfo(
        container=short,
        codec=_codec_name(ctx),
        width=width,
        height=height,
        rotation=rotation,
        display_width=dw,
        display_height=dh,
        fps=fps,
        duration=duration,
        frame_count=_frame_count(vstream, scan, duration, fps),
        has_audio=audio is not None,
        audio_codec=_codec_name(audio.codec_context) if audio else None,  # mp3, not mp3float
        audio_channels=audio.codec_context.channels if audio else None,
        audio_sample_rate=audio.codec_context.sample_rate if audio else None,
        bit_rate=(vstream.bit_rate or container.bit_rate or None),
        pixel_format=ctx.pix_fmt or frame.format.name,
        keyframe_interval=_keyframe_interval(scan, duration),
        start_time=stream_start(container, vstream),
        tags=_tags(container, vstream),
    )


def _codec_name(ctx) -> str:
    return getattr(ctx.codec, "canonical_name", None) or ctx.name


def _duration(container, vstream, scan: _Scan, fps: float) -> float:
    """Stream duration when stored; else the packets' span when the scan saw them all; else the file's."""
    stored = _seconds(vstream.duration, vstream.time_base)
    if stored:
        return stored
    if scan.complete and scan.first_pts is not None and scan.end_pts is not None:
        span = scan.end_pts - scan.first_pts
        if span <= 0 and fps:
            span = scan.packets / fps
        if span > 0:
            return span
    if container.duration:
        return container.duration / av.time_base
    return _full_scan_duration(container, vstream)


def _full_scan_duration(container, vstream) -> float:
    """Last resort when nothing stores a duration (e.g. a live-recorded WebM): demux every packet."""
    scan = _Scan()
    rate = frame_rate(vstream)
    try:
        container.seek(0)
        for packet in container.demux(vstream):
            _note_packet(scan, packet, vstream.time_base, float(1 / rate) if rate else 0.0)
    except _FFMPEG_ERRORS:
        pass
    if scan.first_pts is None or scan.end_pts is None:
        return 0.0
    return scan.end_pts - scan.first_pts


def _frame_count(vstream, scan: _Scan, duration: float, fps: float) -> int:
    if vstream.frames:
        return int(vstream.frames)
    if scan.complete:
        return scan.packets
    return max(1, int(round(duration * fps)))


def display_rotation(frame: av.VideoFrame) -> int:
    """Degrees clockwise to turn ``frame`` upright, from its display matrix, snapped to a quarter turn.

    PyAV's ``VideoFrame.rotation`` is FFmpeg's ``av_display_rotation_get``: counter-clockwise degrees in
    [-180, 180]. A phone's portrait clip (old ``rotate=90`` tag) reads -90 there, i.e. 90 clockwise here.
    """
    return int(round(-frame.rotation / 90.0)) * 90 % 360


def _tags(container, vstream) -> dict:
    """Container tags, then the video stream's: a stream tag whose name the container already uses with another
    value is kept as ``stream:<name>`` (e.g. the codec's ``encoder`` beside the muxer's). Blank values are dropped."""
    tags: dict[str, str] = {k: str(v) for k, v in dict(container.metadata).items() if str(v).strip()}
    for key, value in dict(vstream.metadata).items():
        value = str(value)
        if not value.strip() or tags.get(key) == value:
            continue
        tags[key if key not in tags else f"stream:{key}"] = value
    return tags
