"""Browser-playable H.264 copies of any accepted video (including animated GIF and WebP), made with PyAV.

Browsers play H.264 High/yuv420p with AAC in MP4 everywhere; they ignore or mishandle rotation metadata in some
players and cannot play yuv444p, VP9-in-MOV, MPEG-4 Part 2, FLV or GIF-as-video. So the copy is re-encoded with
the rotation applied to the pixels, at a constant frame rate and with the index (moov) before the media data so it
starts playing before it has fully downloaded.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Optional

import av

from ..progress import CancelToken, ProgressCallback, check_cancelled
from .video_probe import (
    _FFMPEG_ERRORS,
    VideoInfo,
    first_audio_stream,
    frame_rate,
    open_video,
    probe_video,
    video_stream,
)

MAX_FPS = Fraction(60)
AUDIO_RATE = 48000
_UNSPECIFIED = 2  # AVCOL_*_UNSPECIFIED
_BT709 = 1
_LIMITED_RANGE = 1  # AVCOL_RANGE_MPEG


def make_browser_copy(
    src: str | Path,
    dst: str | Path,
    *,
    max_height: int = 720,
    crf: int = 23,
    max_seconds: Optional[float] = None,
    progress: Optional[ProgressCallback] = None,
    cancel: Optional[CancelToken] = None,
    info: Optional[VideoInfo] = None,
) -> Path:
    """Write an MP4 at ``dst`` that every browser plays: H.264 (libx264, veryfast, ``crf``) yuv420p with even
    dimensions, upright picture no taller than ``max_height``, the source's constant frame rate (at most 60), AAC
    stereo 48 kHz when the source has audio, ``+faststart``. ``max_seconds`` keeps only the beginning.

    ``dst`` appears only when complete (written beside it, then renamed). Raises what :func:`probe_video` raises
    and Cancelled.
    """
    src, dst = Path(src), Path(dst)
    info = info or probe_video(src)
    end = info.duration if max_seconds is None else min(info.duration, max_seconds)
    partial = dst.with_name(f".{dst.name}.{os.getpid()}.partial")
    try:
        _transcode(src, partial, info, end, max_height, crf, progress, cancel)
        os.replace(partial, dst)
    finally:
        partial.unlink(missing_ok=True)
    if progress is not None:
        progress(1.0, "Browser copy ready")
    return dst


def browser_size(display_width: int, display_height: int, max_height: int = 720) -> tuple[int, int]:
    """Upright output size: height at most ``max_height``, aspect kept, both even (yuv420p needs it)."""
    height = min(display_height, max_height)
    width = display_width * height / display_height
    return max(2, int(round(width / 2)) * 2), max(2, height // 2 * 2)


def output_rate(vstream) -> Fraction:
    """The source's average frame rate, capped at 60 (25 when the file gives none)."""
    rate = frame_rate(vstream) or Fraction(25)
    return min(rate.limit_denominator(1001), MAX_FPS)


def _transcode(src: Path, dst: Path, info: VideoInfo, end: float, max_height, crf, progress, cancel) -> None:
    if info.container == "webp":
        _transcode_webp(src, dst, info, end, max_height, crf, progress, cancel)
        return
    with open_video(src) as inp, av.open(str(dst), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        vin = video_stream(inp)
        vin.thread_type = "AUTO"
        ain = first_audio_stream(inp) if info.has_audio else None
        video = _VideoTrack(out, vin, info, end, max_height, crf)
        audio = _AudioTrack(out, ain, info.start_time, end) if ain is not None else None
        reporter = _Reporter(progress, end)
        for packet in inp.demux(*([vin] + ([ain] if ain is not None else []))):
            check_cancelled(cancel)
            if packet.stream is vin:
                video.take(packet)
                reporter.report(video.time)
            elif audio is not None:
                audio.take(packet)
            if video.done and (audio is None or audio.done):
                break
        video.finish()
        if audio is not None:
            audio.finish()


def _transcode_webp(src: Path, dst: Path, info: VideoInfo, end: float, max_height, crf, progress, cancel) -> None:
    """Animated WebP (decoded by Pillow, see media.animated): each frame held for its own duration, at a constant
    rate fast enough for the shortest frame (at most 60 fps)."""
    from .animated import read_webp_animation, webp_frames, webp_rgb

    rate = min(Fraction(1 / min(read_webp_animation(src).durations)).limit_denominator(1001), MAX_FPS)
    width, height = browser_size(info.display_width, info.display_height, max_height)
    reporter = _Reporter(progress, end)
    with av.open(str(dst), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        stream = _h264_stream(out, rate, (width, height), crf)
        tick = 0  # next output frame number
        for start, stop, image in webp_frames(src, cancel):
            if start >= end:
                break
            until = max(round(min(stop, end) * rate), 1)  # the output ticks before this one show this frame
            if tick >= until:
                continue  # shorter than one tick: dropped, as at any constant frame rate
            picture = av.VideoFrame.from_ndarray(webp_rgb(image), format="rgb24").reformat(
                width=width, height=height, format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG",
                interpolation="AREA")
            while tick < until:
                picture.pts, picture.time_base = tick, 1 / rate
                out.mux(stream.encode(picture))
                tick += 1
            reporter.report(start)
        out.mux(stream.encode(None))


class _Reporter:
    """Progress by decoded time / duration, at most once per percent."""

    def __init__(self, progress: Optional[ProgressCallback], end: float) -> None:
        self.progress, self.end, self.last = progress, end, -1.0

    def report(self, t: float) -> None:
        if self.progress is None or self.end <= 0:
            return
        fraction = min(0.99, max(0.0, t / self.end))
        if fraction - self.last >= 0.01:
            self.last = fraction
            self.progress(fraction, f"Making a browser copy: {t:.0f} of {self.end:.0f} s")


def _decode(stream, packet) -> list:
    """Frames of one packet; a packet that fails to decode is skipped, as players do."""
    try:
        return stream.decode(packet)
    except _FFMPEG_ERRORS:
        return []


def _h264_stream(out, rate: Fraction, size: tuple[int, int], crf: int, src_ctx=None):
    """libx264 yuv420p, limited range; colour tags BT.709 for RGB sources (``src_ctx`` None: converted with that
    matrix), the source's own for YUV ones."""
    stream = out.add_stream("libx264", rate=rate, options={"preset": "veryfast", "crf": str(crf)})
    stream.width, stream.height = size
    stream.pix_fmt = "yuv420p"
    ctx = stream.codec_context
    ctx.color_range = _LIMITED_RANGE
    rgb = src_ctx is None or src_ctx.pix_fmt is None or not src_ctx.pix_fmt.startswith(("yuv", "nv", "p0"))
    for name in ("colorspace", "color_primaries", "color_trc"):
        setattr(ctx, name, _BT709 if rgb else getattr(src_ctx, name))
    return stream


class _VideoTrack:
    """Decoded frames -> rotate + scale + yuv420p (an FFmpeg filter graph) -> constant frame rate -> libx264."""

    def __init__(self, out, vin, info: VideoInfo, end: float, max_height: int, crf: int) -> None:
        self.vin, self.info, self.end = vin, info, end
        self.rate = output_rate(vin)
        self.size = browser_size(info.display_width, info.display_height, max_height)
        self.stream = _h264_stream(out, self.rate, self.size, crf, vin.codec_context)
        self.out = out
        self.graph = None
        self.graph_key = None
        self.pending = None  # the latest filtered frame, shown until the next one's time
        self.pending_end = 0.0  # when the pending frame stops showing, if no frame follows
        self.tick = 0  # next output frame number
        self.time = 0.0
        self.done = False

    def take(self, packet) -> None:
        if self.done:
            return
        for frame in _decode(self.vin, packet):
            self._add(frame)

    def _add(self, frame) -> None:
        t = self._frame_time(frame)
        if t >= self.end and self.pending is not None:
            self.done = True
            return
        self.time = t
        filtered = self._filter(frame)
        if self.pending is not None:
            self._emit_until(round(t * self.rate))  # earlier ticks show the previous frame
        self.pending = filtered
        self.pending_end = t + self._frame_duration(frame)

    def _frame_time(self, frame) -> float:
        if frame.pts is None:
            return self.time + float(1 / self.rate)
        return float(frame.pts * self.vin.time_base) - self.info.start_time

    def _frame_duration(self, frame) -> float:
        duration = getattr(frame, "duration", None)
        if duration:
            return float(duration * self.vin.time_base)
        return float(1 / self.rate)

    def _emit_until(self, tick: int) -> None:
        """Encode the pending frame for every output tick before ``tick`` (duplicates it across gaps, drops it when
        the next frame falls in the same tick): a constant frame rate, as browsers expect."""
        while self.tick < tick:
            self.pending.pts = self.tick
            self.pending.time_base = 1 / self.rate
            self.out.mux(self.stream.encode(self.pending))
            self.tick += 1

    def finish(self) -> None:
        if self.pending is not None:
            last = min(self.end, self.pending_end)
            self._emit_until(max(self.tick + 1, round(last * self.rate)))
        self.out.mux(self.stream.encode(None))

    def _filter(self, frame):
        key = (frame.width, frame.height, frame.format.name)
        if key != self.graph_key:  # built on the first frame; rebuilt if the stream changes size mid-way
            self.graph, self.graph_key = self._build_graph(frame), key
        self.graph.vpush(frame)
        return self.graph.vpull()

    def _build_graph(self, frame):
        graph = av.filter.Graph()
        nodes = [graph.add_buffer(width=frame.width, height=frame.height, format=frame.format.name,
                                  time_base=self.vin.time_base)]
        for name, args in _turn_filters(self.info.rotation):
            nodes.append(graph.add(name, args))
        width, height = self.size
        scale = f"w={width}:h={height}:out_range=limited"
        if not frame.format.name.startswith(("yuv", "nv", "p0")):
            scale += ":out_color_matrix=bt709"
        nodes.append(graph.add("scale", scale))
        nodes.append(graph.add("format", "yuv420p"))
        nodes.append(graph.add("buffersink"))
        graph.link_nodes(*nodes)
        graph.configure()
        return graph


def _turn_filters(rotation: int) -> list[tuple[str, Optional[str]]]:
    """FFmpeg filters that turn the picture ``rotation`` degrees clockwise."""
    return {
        90: [("transpose", "clock")],
        180: [("hflip", None), ("vflip", None)],
        270: [("transpose", "cclock")],
    }.get(rotation % 360, [])


class _AudioTrack:
    """Decoded audio -> stereo 48 kHz fltp (av.AudioResampler) -> AAC, timed from the video's start."""

    def __init__(self, out, ain, origin: float, end: float) -> None:
        self.ain, self.origin, self.end = ain, origin, end
        self.stream = out.add_stream("aac", rate=AUDIO_RATE)
        self.stream.layout = "stereo"
        self.resampler = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE)
        self.out = out
        self.next_pts: Optional[int] = None  # output samples written so far, offset by the audio's start
        self.done = False

    def take(self, packet) -> None:
        if self.done:
            return
        for frame in _decode(self.ain, packet):
            start = (frame.time if frame.time is not None else 0.0) - self.origin
            if start >= self.end:
                self.done = True
                return
            if start + frame.samples / frame.sample_rate <= 0:
                continue  # audio from before the first video frame
            if self.next_pts is None:
                self.next_pts = max(0, round(start * AUDIO_RATE))
            self._encode(self.resampler.resample(frame))

    def _encode(self, frames) -> None:
        for frame in frames:
            frame.pts = self.next_pts
            frame.time_base = Fraction(1, AUDIO_RATE)
            self.next_pts += frame.samples
            self.out.mux(self.stream.encode(frame))

    def finish(self) -> None:
        if self.next_pts is not None:
            self._encode(self.resampler.resample(None))
        self.out.mux(self.stream.encode(None))
