"""Stream sampled video frames as upright RGB arrays, one at a time.

Sampling rule: the targets are ``t_k = start + k / fps`` while ``t_k`` is before ``end`` (default: the duration);
each target gets the first frame whose timestamp is at or after it, and the first frame of the file always counts
for ``t_0 = 0``. A frame that satisfies several targets (sampling faster than the video's own frame rate) is yielded
once, with the index of the first, so indices can skip. Times are seconds from the video stream's first pts.

Two ways to reach the targets, which yield the same frames:

* ``sequential`` decodes every frame in order and keeps the sampled ones;
* ``seek`` jumps to the keyframe before each target and decodes forward to it.

Seeking pays, per sample, the decode from the keyframe before it (half a keyframe interval on average) plus a
decoder restart, so it wins when keyframes are dense and sampling sparse; ``auto`` compares the probed keyframe
interval with the sampling interval (benchmarks/bench_decode.py, 1 fps sampling on 2 shared cores: seek took
0.36-0.8x the time with 0.5 s keyframes, 0.65-1.1x at 1.5 s, ~0.8x at 2 s, 1.1-1.4x at 3 s and 2-5x with 3.6-10 s
keyframes; real footage, heavier to decode, favours seeking a little more).

Animated WebP, which FFmpeg cannot decode, comes from Pillow (:mod:`.animated`) under the same sampling rule.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..progress import CancelToken, ProgressCallback, check_cancelled
from .video_probe import _FFMPEG_ERRORS, VideoInfo, open_video, probe_video, video_stream

STRATEGIES = ("auto", "sequential", "seek")
# auto seeks when keyframes are less than this many sampling intervals apart (measured break-even: about 2.5)
SEEK_MAX_KEYFRAME_GAP = 2.0
# a packet that fails to decode is skipped; this many failures in a row end the stream (damaged tail)
MAX_BAD_PACKETS = 25


@dataclass
class Frame:
    """One sampled frame: ``image`` is H x W x 3 uint8 RGB, upright, downscaled when ``max_side`` asked for it."""

    index: int  # sample number k of the target t_k this frame satisfies
    time: float  # the frame's own pts, seconds from the stream start
    image: np.ndarray


def _stop(duration: float, start: float, end: Optional[float]) -> float:
    return duration if end is None else min(end, duration)


def count_samples(duration: float, fps: float, start: float = 0.0, end: Optional[float] = None) -> int:
    """How many targets :func:`sample_times` makes (an upper bound on the frames :func:`iter_frames` yields)."""
    stop = _stop(duration, start, end)
    n = math.ceil((stop - start) * fps - 1e-9) if stop > start else 0
    return max(n, 1) if start <= 0 else max(n, 0)  # the first frame of the file always counts


def sample_times(duration: float, fps: float, start: float = 0.0, end: Optional[float] = None) -> list[float]:
    """Target times ``start + k / fps`` before ``end`` (default ``duration``); computed from k, so no drift."""
    return [start + k / fps for k in range(count_samples(duration, fps, start, end))]


def choose_strategy(info: VideoInfo, fps: float) -> str:
    """``seek`` when keyframes are less than two sampling intervals apart, else ``sequential``."""
    if info.container == "gif" or not info.keyframe_interval:
        return "sequential"  # GIF demuxing has no keyframe index: every seek would rescan from the start
    return "seek" if info.keyframe_interval < SEEK_MAX_KEYFRAME_GAP / fps else "sequential"


def iter_frames(
    path: str | Path,
    fps: float,
    *,
    start: float = 0.0,
    end: Optional[float] = None,
    max_side: Optional[int] = None,
    strategy: str = "auto",
    progress: Optional[ProgressCallback] = None,
    cancel: Optional[CancelToken] = None,
    info: Optional[VideoInfo] = None,
) -> Iterator[Frame]:
    """Yield sampled frames of the video at ``path`` lazily, holding one decoded frame at a time.

    ``fps``: samples per second. ``start``/``end``: seconds from the stream start. ``max_side``: downscale so the
    longest side is at most this. ``strategy``: auto, sequential or seek. ``info``: a probe already made (saves
    probing again). A damaged tail ends the iteration early instead of raising. Raises Cancelled when ``cancel`` is
    set (checked between packets) and what :func:`probe_video` raises.
    """
    _validate(fps, start, end, max_side, strategy)
    return _iter_frames(Path(path), fps, start, end, max_side, strategy, progress, cancel, info)


def _validate(fps: float, start: float, end: Optional[float], max_side: Optional[int], strategy: str) -> None:
    if not fps or fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if start < 0 or (end is not None and end <= start):
        raise ValueError(f"need 0 <= start < end, got start={start}, end={end}")
    if max_side is not None and max_side < 2:
        raise ValueError(f"max_side must be at least 2, got {max_side}")
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")


def _iter_frames(path, fps, start, end, max_side, strategy, progress, cancel, info) -> Iterator[Frame]:
    info = info or probe_video(path)
    targets = sample_times(info.duration, fps, start, end)
    if not targets:
        return
    picks = _webp_picks if info.container == "webp" else _ffmpeg_picks
    for k, image, t in picks(path, info, fps, targets, max_side, strategy, cancel):
        check_cancelled(cancel)
        if progress is not None:
            progress((k + 1) / len(targets), f"Frame at {t:.1f} s")
        yield Frame(k, t, image)
    if progress is not None:
        progress(1.0, "Frames done")


def _ffmpeg_picks(path, info, fps, targets, max_side, strategy, cancel) -> Iterator[tuple[int, np.ndarray, float]]:
    mode = choose_strategy(info, fps) if strategy == "auto" else strategy
    with open_video(path) as container:
        vstream = video_stream(container)
        vstream.thread_type = "AUTO"  # frame + slice threads: decoding is the cost here
        clock = _Clock(vstream, info)
        walk = _sequential if mode == "sequential" else _seeking
        for k, frame, t in walk(container, vstream, targets, clock, cancel):
            yield k, to_rgb(frame, info.rotation, max_side), t


def _webp_picks(path, info, fps, targets, max_side, strategy, cancel) -> Iterator[tuple[int, np.ndarray, float]]:
    """Animated WebP (decoded by Pillow, see media.animated): every frame in order, as ``sequential`` does."""
    from .animated import webp_frames, webp_rgb

    timed = ((t, image) for t, _, image in webp_frames(path, cancel))
    for k, image, t in _pick(timed, targets, 1e-6):  # frame times are whole milliseconds
        yield k, webp_rgb(image, max_side), t


# -- timestamps ------------------------------------------------------------------------------------------------


class _Clock:
    """Frame times in seconds from the stream start, and how close to a target counts as on it."""

    def __init__(self, vstream, info: VideoInfo) -> None:
        self.time_base = vstream.time_base
        self.origin = info.start_time
        self.step = 1.0 / info.fps if info.fps else 0.04
        # one timestamp tick (mkv stores milliseconds: 0.033 for 1/30), never more than a quarter frame
        self.eps = max(1e-6, min(float(self.time_base), self.step / 4))
        self.last: Optional[float] = None

    def __call__(self, frame) -> float:
        pts = frame.pts if frame.pts is not None else getattr(frame, "dts", None)
        if pts is None:  # no timestamp at all: one frame after the last
            t = 0.0 if self.last is None else self.last + self.step
        else:
            t = round(float(pts * self.time_base) - self.origin, 6)
        self.last = t
        return t

    def stream_ts(self, seconds: float) -> int:
        """Stream timestamp at or before ``seconds`` (for seeking). A target that falls on a keyframe must seek to
        that keyframe, not the one before, so float noise just under a tick is rounded up to it."""
        return int(math.floor((max(0.0, seconds) + self.origin) / self.time_base + 1e-3))


def _next_target(targets: list[float], k: int, t: float, eps: float) -> int:
    """The first target after those that the frame at ``t`` satisfies."""
    k += 1
    while k < len(targets) and targets[k] <= t + eps:
        k += 1
    return k


# -- decoding --------------------------------------------------------------------------------------------------

Decoded = Iterator  # of av.VideoFrame


def _decoded(container, vstream, cancel: Optional[CancelToken]) -> Decoded:
    """Frames in presentation order from the current position; a packet that fails to decode is skipped, and the
    stream ends at a demux error (a truncated file) or after MAX_BAD_PACKETS failures in a row."""
    bad = 0
    packets = container.demux(vstream)
    while True:
        check_cancelled(cancel)
        try:
            packet = next(packets)
        except StopIteration:
            return
        except _FFMPEG_ERRORS:
            return
        try:
            frames = packet.decode()
        except _FFMPEG_ERRORS:
            bad += 1
            if bad >= MAX_BAD_PACKETS:
                return
            continue
        bad = 0
        yield from frames


def _pick(timed: Iterator[tuple[float, object]], targets: list[float], eps: float) -> Iterator[tuple]:
    """(k, frame, t) for each (t, frame), in time order, that is the first at or after target k (the first frame
    always counts for t_0 = 0)."""
    k = 0
    first = targets[0] <= 0
    for t, frame in timed:
        if first or t + eps >= targets[k]:
            first = False
            yield k, frame, t
            k = _next_target(targets, k, t, eps)
            if k >= len(targets):
                return


def _sequential(container, vstream, targets: list[float], clock: _Clock, cancel) -> Iterator[tuple]:
    """Decode in order from the first target (seeking once when it is past the start); keep sampled frames."""
    frames = _decoded(container, vstream, cancel)  # lazy: reads nothing unless used
    if targets[0] > 0:
        frames = _seek_before(container, vstream, targets[0], clock, cancel, fallback=frames)
    yield from _pick(((clock(frame), frame) for frame in frames), targets, clock.eps)


def _seeking(container, vstream, targets: list[float], clock: _Clock, cancel) -> Iterator[tuple]:
    """For each target: seek to the keyframe before it and decode forward to the first frame at or after it."""
    k, last_t = 0, None
    frames = _decoded(container, vstream, cancel)
    first = targets[0] <= 0
    while k < len(targets):
        if not first:
            frames = _seek_before(container, vstream, targets[k], clock, cancel, fallback=frames)
        for frame in frames:
            t = clock(frame)
            if last_t is not None and t <= last_t:
                continue
            if first or t + clock.eps >= targets[k]:
                first = False
                yield k, frame, t
                last_t = t
                k = _next_target(targets, k, t, clock.eps)
                break
        else:
            return  # end of stream before the target


def _seek_before(container, vstream, target: float, clock: _Clock, cancel, fallback: Optional[Decoded] = None):
    """Decoded frames from the keyframe at or before ``target``.

    Some demuxers land after the asked time, or on a packet their index wrongly calls a keyframe (FLV); then seek
    further back, doubling the margin, until the first decoded frame is not after the target or the start of the
    file is reached. If the container cannot seek at
    all, ``fallback`` (decoding on from where we are) is used.
    """
    margin = 0.0
    while True:
        seconds = max(0.0, target - margin)
        try:
            container.seek(clock.stream_ts(seconds), stream=vstream, backward=True, any_frame=False)
        except _FFMPEG_ERRORS:
            if fallback is None:
                return iter(())
            return fallback
        frames = _decoded(container, vstream, cancel)
        head = next(frames, None)
        if head is not None and (seconds <= 0 or clock(head) <= target + clock.eps):
            return itertools.chain([head], frames)
        if seconds <= 0:
            return iter(())
        margin = max(1.0, margin * 2)  # landed after the target, or on a frame that does not decode alone


# -- pixels ----------------------------------------------------------------------------------------------------


def scaled_size(width: int, height: int, max_side: Optional[int]) -> tuple[int, int]:
    """(width, height) shrunk so the longest side is at most ``max_side``, keeping the aspect ratio."""
    if not max_side or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def to_rgb(frame, rotation: int, max_side: Optional[int] = None) -> np.ndarray:
    """An upright H x W x 3 uint8 RGB copy of a decoded frame (scaled in swscale before the turn: less to turn)."""
    width, height = scaled_size(frame.width, frame.height, max_side)
    if (width, height) != (frame.width, frame.height):
        image = frame.to_ndarray(format="rgb24", width=width, height=height, interpolation="AREA")
    else:
        image = frame.to_ndarray(format="rgb24")
    if rotation:
        image = np.rot90(image, k=-(rotation // 90))  # rot90 turns counter-clockwise for positive k
    return np.ascontiguousarray(image)

