"""Video intake with PyAV: probe, stream sampled frames, make browser-playable copies.

The work lives in three modules; import from here:

* :mod:`.video_probe` -- :class:`VideoInfo` and :func:`probe_video`;
* :mod:`.video_frames` -- :class:`Frame`, :func:`iter_frames`, :func:`sample_times`, :func:`count_samples`;
* :mod:`.video_transcode` -- :func:`make_browser_copy`.

PyAV does everything (OpenCV cannot write browser-playable H.264). Rotation: FFmpeg stores it as a display matrix;
PyAV 18 reads it as ``VideoFrame.rotation`` (counter-clockwise degrees) and writes it with
``VideoStream.set_display_rotation`` (counter-clockwise too). Apate speaks clockwise degrees, like the old
``rotate`` tag and like players: ``VideoInfo.rotation == 90`` means turn the stored picture a quarter turn clockwise.
"""

from __future__ import annotations

from .video_frames import Frame, choose_strategy, count_samples, iter_frames, sample_times, scaled_size, to_rgb
from .video_probe import KNOWN_CONTAINERS, VideoInfo, display_rotation, probe_video
from .video_transcode import browser_size, make_browser_copy

__all__ = [
    "KNOWN_CONTAINERS",
    "Frame",
    "VideoInfo",
    "browser_size",
    "choose_strategy",
    "count_samples",
    "display_rotation",
    "iter_frames",
    "make_browser_copy",
    "probe_video",
    "sample_times",
    "scaled_size",
    "to_rgb",
]
