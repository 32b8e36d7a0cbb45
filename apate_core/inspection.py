"""Inspect a file or URL: what it is, its metadata and provenance, a playable copy and sampled frames."""

from __future__ import annotations

import json
import re
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from .media.intake import MediaFile, existing_file, intake_file
from .progress import CancelToken, ProgressCallback, no_progress
from .settings import Settings
from .store import ResultStore, make_key

URL_PATTERN = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
STRIP_SIDE = 320  # longest side of frame-strip thumbnails


@dataclass
class InspectReport:
    source: str
    media: MediaFile
    metadata: dict
    provenance: object  # C2paReport
    summary: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "media": self.media.to_dict(),
            "metadata": self.metadata,
            "provenance": asdict(self.provenance),
            "summary": self.summary,
        }


def is_url(source: str) -> bool:
    """Anything with a scheme is treated as a URL (and then refused unless it is http/https)."""
    return bool(URL_PATTERN.match(source)) and not Path(source).exists()


def fetch_source(
    source: str,
    settings: Settings,
    workdir: Path,
    progress: ProgressCallback = no_progress,
    cancel: Optional[CancelToken] = None,
) -> tuple[Path, str]:
    """A local path for ``source``: the file itself, or a download of the URL under the same limits."""
    if not is_url(source):
        path = existing_file(source, "a path to a video or image file, or an http(s) URL")
        return path, path.name
    from .media.url import download_url

    limit = max(settings.max_video_bytes, settings.max_image_bytes)
    got = download_url(
        source, workdir, max_bytes=limit, timeout=settings.url_timeout_s, progress=progress, cancel=cancel
    )
    return Path(got.path), Path(got.path).name


def inspect_path(path: Path, settings: Settings, name: Optional[str] = None, source: str = "",
                 store: Optional[ResultStore] = None) -> InspectReport:
    """What the file is; with a ``store``, the report is kept there and listed in the history."""
    from .provenance import read_c2pa, read_metadata, summarise_provenance

    media = intake_file(path, settings, name=name)
    metadata = read_metadata(media.path, media.kind)
    c2pa = read_c2pa(media.path)
    report = InspectReport(source or str(path), media, metadata, c2pa, summarise_provenance(c2pa, metadata))
    if store is not None:
        _remember(report, store)
    return report


def _remember(report: InspectReport, store: ResultStore) -> None:
    from . import history

    media = report.media
    key = make_key(media.sha256, "inspect", params={"version": 1})
    data = json.loads(json.dumps(report.to_dict(), default=str))  # dataclasses and paths as plain JSON
    store.put(key, data)
    summary = f"{media.kind} · {media.format} · {media.size_bytes / 1048576:.2f} MB"
    if report.summary:
        summary += f" · {report.summary[0]}"
    thumb = None
    if media.kind == "image":
        from .media.images import decode_image

        thumb = decode_image(media.path, max_pixels=10**12, accepted=(media.format,)).rgb  # intake checked it
    history.record(store, history.HistoryEntry(key, "inspect", media.name, time.time(), summary, "inspect"), thumb)


def inspect_source(
    source: str,
    settings: Settings,
    workdir: Optional[Path] = None,
    progress: ProgressCallback = no_progress,
    cancel: Optional[CancelToken] = None,
    store: Optional[ResultStore] = None,
) -> InspectReport:
    workdir = Path(workdir or tempfile.mkdtemp(prefix="apate-"))
    path, name = fetch_source(source, settings, workdir, progress, cancel)
    return inspect_path(path, settings, name=name, source=source, store=store)


def playable_video(
    media: MediaFile,
    store: ResultStore,
    progress: ProgressCallback = no_progress,
    cancel: Optional[CancelToken] = None,
    max_height: int = 720,
) -> bytes:
    """Browser-playable H.264 copy of an accepted video, made once per content and kept in the store."""
    from .media.video import make_browser_copy

    key = make_key(media.sha256, "browser-copy", params={"max_height": max_height})
    cached = store.get_bytes(key)
    if cached is not None:
        return cached
    with tempfile.TemporaryDirectory(prefix="apate-") as tmp:
        out = Path(tmp) / "playable.mp4"
        make_browser_copy(media.path, out, max_height=max_height, progress=progress, cancel=cancel)
        data = out.read_bytes()
    store.put_bytes(key, data)
    return data


@dataclass(frozen=True)
class FrameStrip:
    times: np.ndarray  # seconds, one per frame
    frames: np.ndarray  # (N, H, W, 3) uint8 thumbnails


def frame_strip(
    media: MediaFile,
    fps: float,
    store: ResultStore,
    progress: ProgressCallback = no_progress,
    cancel: Optional[CancelToken] = None,
    max_side: int = STRIP_SIDE,
    limit: Optional[int] = None,
) -> FrameStrip:
    """Up to ``limit`` frames sampled at ``fps`` with their timestamps (an image is its own single frame)."""
    params = {"fps": fps, "max_side": max_side, "limit": limit}
    key = make_key(media.sha256, "frame-strip", params=params)
    cached = store.get(key)
    if cached is not None:
        return FrameStrip(cached.arrays["times"], cached.arrays["frames"])
    if media.kind == "image":
        strip = _image_strip(media, max_side)
    else:
        from .media.video import iter_frames

        frames, times = [], []
        end = None if limit is None else limit / fps
        for frame in iter_frames(media.path, fps, end=end, max_side=max_side, progress=progress, cancel=cancel):
            frames.append(frame.image)
            times.append(frame.time)
        strip = FrameStrip(np.asarray(times, dtype=np.float64), _stack(frames))
    store.put(key, {**params, "count": len(strip.times)}, {"times": strip.times, "frames": strip.frames})
    return strip


def _image_strip(media: MediaFile, max_side: int) -> FrameStrip:
    from PIL import Image

    from .media.images import decode_image

    # Intake already enforced the pixel cap and the accepted formats for this file.
    rgb = decode_image(media.path, max_pixels=10**12, accepted=(media.format,)).rgb
    thumb = Image.fromarray(rgb)
    thumb.thumbnail((max_side, max_side))
    return FrameStrip(np.zeros(1), np.asarray(thumb)[None])


def _stack(frames: list[np.ndarray]) -> np.ndarray:
    if not frames:
        return np.zeros((0, 1, 1, 3), dtype=np.uint8)
    h = max(f.shape[0] for f in frames)
    w = max(f.shape[1] for f in frames)
    out = np.zeros((len(frames), h, w, 3), dtype=np.uint8)
    for i, f in enumerate(frames):
        out[i, : f.shape[0], : f.shape[1]] = f
    return out
