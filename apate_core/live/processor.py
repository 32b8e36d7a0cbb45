"""Live frame processor: score camera frames in a worker thread without ever stalling the video.

    processor = LiveProcessor(detector, LiveOptions(heatmap=True))
    out = processor.process(rgb)      # called for every camera frame; returns at once
    processor.stats(), processor.timeline(), processor.snapshot(), processor.stop()

Design (nothing here waits on inference):

* ``process(frame)`` (the video callback's thread) puts the frame in a ONE-slot mailbox,
  overwriting any frame the worker has not taken yet (that frame is *dropped*, and counted),
  then returns the frame with the latest result drawn on it: score label, a colour from real
  (green) to generated (red), face boxes in face mode and the heatmap when enabled (drawn by
  ``overlay.annotate``).
* One worker thread per processor takes the newest frame, no more often than
  ``target_fps``, downscales it to the processing size, runs the detector (under
  ``detector.lock``: it is shared by every session of the process) and appends the result to a
  ring buffer holding the last ``window_s`` seconds. The worker starts on the first frame and
  exits on ``stop()`` or after ``idle_timeout_s`` without frames, so a closed tab or a stopped
  stream releases the thread and the frames it held; the next frame starts a fresh one.
* Smoothed score: an exponential moving average over time with a half-life of
  ``half_life_s`` seconds (weight of a new score: 1 - 0.5 ** (dt / half_life)), so it does not
  depend on how many frames per second are processed.

Every public method is thread-safe; results leave through copies taken under one lock.
"""

from __future__ import annotations

import io
import json
import math
import threading
import time
import zipfile
from collections import deque
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Callable, ContextManager, Optional, Sequence

import cv2
import numpy as np

from .overlay import annotate, colour_heatmap, encode_png

PROCESSING_SIZES: dict[str, tuple[int, int]] = {"320x240": (320, 240), "480x360": (480, 360), "640x480": (640, 480)}
WINDOW_S = 60.0  # timeline length
FPS_WINDOW_S = 5.0  # processed fps and latency are measured over this many seconds
FACE_MARGIN = 0.3
FACE_SEARCH_SIDE = 200  # face detection runs on a copy at most this long (faces >= ~32 px at 320x240)


def default_detector_name() -> str:
    """The model the Live page starts with: Detect's default (decided in one place, the pipeline)."""
    from apate_core.detect.pipeline import default_detector_name as detect_default

    return detect_default()


# --------------------------------------------------------------------------------------------
# Options and results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveOptions:
    """What the page lets a person choose. size: frames are downscaled to fit (w, h) before analysis."""

    face_mode: bool = False
    heatmap: bool = False
    size: tuple[int, int] = (320, 240)
    target_fps: float = 15.0  # most frames analysed per second; 0 = as many as possible
    cam_method: str = "gradcam"
    half_life_s: float = 1.0  # EMA half-life of the smoothed score
    opacity: float = 0.45  # heatmap opacity

    def __post_init__(self) -> None:
        if len(self.size) != 2 or min(self.size) < 32:
            raise ValueError("size must be (width, height), each at least 32 px")
        if self.target_fps < 0 or self.half_life_s <= 0 or not 0.0 <= self.opacity <= 1.0:
            raise ValueError("target_fps >= 0, half_life_s > 0 and opacity in [0, 1] are required")


@dataclass(frozen=True)
class FaceResult:
    box: tuple[int, int, int, int]  # x, y, w, h in processed-frame pixels
    score: float

    def to_dict(self) -> dict[str, Any]:
        x, y, w, h = self.box
        return {"x": x, "y": y, "w": w, "h": h, "score": round(self.score, 4)}


@dataclass(frozen=True, eq=False)
class FrameResult:
    """One analysed frame. score: P(fake) (face mode: the most suspicious face; None: no face)."""

    index: int
    captured: float  # monotonic time the frame reached process()
    done: float  # monotonic time its result was ready
    wall: float  # time.time() when ready
    score: Optional[float]
    smoothed: Optional[float]
    faces: tuple[FaceResult, ...]
    shape: tuple[int, int]  # processed frame (h, w)
    face_mode: bool
    model: str
    heatmap: Optional[np.ndarray] = None  # float32 [0, 1] at the processed size
    heat_rects: tuple[tuple[int, int, int, int], ...] = ()  # where the heatmap applies (x0, y0, x1, y1)
    frame: Optional[np.ndarray] = None  # processed-size RGB, kept for snapshots

    @property
    def latency_s(self) -> float:
        return self.done - self.captured

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "time_utc": datetime.fromtimestamp(self.wall, timezone.utc).isoformat(timespec="milliseconds"),
            "score": None if self.score is None else round(self.score, 4),
            "smoothed": None if self.smoothed is None else round(self.smoothed, 4),
            "faces": [f.to_dict() for f in self.faces],
            "face_mode": self.face_mode,
            "model": self.model,
            "latency_ms": round(self.latency_s * 1000.0, 1),
            "processed_size": [self.shape[1], self.shape[0]],
        }


@dataclass(frozen=True)
class LiveStats:
    running: bool
    received: int  # frames handed to process()
    processed: int
    dropped: int  # frames overwritten in the mailbox before the worker took them
    fps_processed: float
    fps_camera: float
    score: Optional[float]  # last raw score
    smoothed: Optional[float]
    latency_ms: Optional[float]  # median capture -> result over the last FPS_WINDOW_S (else the last result's)
    points: int  # scored points in the timeline window
    last_error: str


@dataclass(frozen=True, eq=False)
class Snapshot:
    result: FrameResult
    image: np.ndarray  # annotated RGB (heatmap included)
    frame: np.ndarray  # the processed frame as analysed

    def png(self) -> bytes:
        return encode_png(self.image)


# --------------------------------------------------------------------------------------------
# Pure helpers
# --------------------------------------------------------------------------------------------


def ema_alpha(dt: float, half_life_s: float) -> float:
    """Weight of a new value in a time-based EMA after dt seconds."""
    return 1.0 - 0.5 ** (max(dt, 0.0) / half_life_s)


def fit_within(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Downscale (never upscale) so the frame fits inside size=(w, h), aspect kept."""
    height, width = frame.shape[:2]
    scale = min(size[0] / width, size[1] / height, 1.0)
    if scale >= 1.0:
        return frame
    new = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(frame, new, interpolation=cv2.INTER_AREA)


def _margin_rect(shape: Sequence[int], box: tuple[int, int, int, int], margin: float) -> tuple[int, int, int, int]:
    # Same rectangle as apate_core.detect.faces.crop_with_margin.
    x, y, w, h = box
    height, width = shape[:2]
    x0, y0 = max(0, int(math.floor(x - margin * w))), max(0, int(math.floor(y - margin * h)))
    x1, y1 = min(width, int(math.ceil(x + w + margin * w))), min(height, int(math.ceil(y + h + margin * h)))
    return x0, y0, x1, y1


def _fit_crop(detector, crop: np.ndarray) -> np.ndarray:
    from apate_core.detect.models import MIN_SIDE_NO_RESIZE

    side = min(crop.shape[:2])
    if detector.config.resize != "none" or side >= MIN_SIDE_NO_RESIZE:
        return crop
    factor = MIN_SIDE_NO_RESIZE / side
    return cv2.resize(crop, (max(MIN_SIDE_NO_RESIZE, round(crop.shape[1] * factor)),
                             max(MIN_SIDE_NO_RESIZE, round(crop.shape[0] * factor))), interpolation=cv2.INTER_CUBIC)


def score_and_cam(detector, images: Sequence[np.ndarray], method: str = "gradcam") -> tuple[np.ndarray, list[np.ndarray]]:
    """P(fake) and a [0, 1] heatmap per image from ONE forward+backward pass: Detect's own
    ``score_and_cam`` (backward from the CAM target layers only), in batches of 8."""
    from apate_core.detect.cam import score_and_cam as detect_score_and_cam

    return detect_score_and_cam(detector, images, method, batch_size=8)


def analyse_frame(detector, frame: np.ndarray, *, face_mode: bool = False, heatmap: bool = False,
                  cam_method: str = "gradcam") -> tuple[Optional[float], tuple[FaceResult, ...],
                                                        Optional[np.ndarray], tuple[tuple[int, int, int, int], ...]]:
    """(score, faces, heatmap, heat_rects) for one RGB frame at the size it is given."""
    height, width = frame.shape[:2]
    if not face_mode:
        if heatmap:
            probs, maps = score_and_cam(detector, [frame], cam_method)
            return float(probs[0]), (), maps[0], ((0, 0, width, height),)
        return float(detector.predict_proba([frame])[0]), (), None, ()
    from apate_core.detect.faces import detect_faces

    # Faces are found on a copy at most FACE_SEARCH_SIDE px long (boxes come back in frame pixels):
    # a webcam face is large, and the cascade's cost grows with the pixel count.
    boxes = [(b.x, b.y, b.w, b.h) for b in detect_faces(frame, min_size=20, max_side=FACE_SEARCH_SIDE)]
    if not boxes:
        return None, (), None, ()
    rects = [_margin_rect(frame.shape, box, FACE_MARGIN) for box in boxes]
    crops = [_fit_crop(detector, frame[y0:y1, x0:x1]) for x0, y0, x1, y1 in rects]
    heat = None
    if heatmap:
        probs, maps = score_and_cam(detector, crops, cam_method)
        heat = np.zeros((height, width), dtype=np.float32)
        for (x0, y0, x1, y1), cam in zip(rects, maps):
            if cam.shape != (y1 - y0, x1 - x0):
                cam = cv2.resize(cam, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
            np.maximum(heat[y0:y1, x0:x1], cam, out=heat[y0:y1, x0:x1])
    else:
        probs = detector.predict_proba(crops)
    faces = tuple(FaceResult(box, float(p)) for box, p in zip(boxes, probs))
    return max(f.score for f in faces), faces, heat, tuple(rects) if heatmap else ()


def gallery_zip(snapshots: Sequence[Snapshot], timeline: Sequence[dict[str, Any]] = (),
                smoothing: str = "") -> bytes:
    """ZIP of snapshot_NN.png (annotated), snapshot_NN_frame.png (as analysed) and snapshots.json."""
    buffer = io.BytesIO()
    entries = []
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for n, snap in enumerate(snapshots, 1):
            name = f"snapshot_{n:02d}"
            archive.writestr(f"{name}.png", snap.png())
            archive.writestr(f"{name}_frame.png", encode_png(snap.frame))
            entries.append({"file": f"{name}.png", "frame_file": f"{name}_frame.png", **snap.result.to_dict()})
        meta = {"score": "P(fake) in [0, 1]; face mode: the most suspicious face", "smoothing": smoothing,
                "snapshots": entries, "timeline_last_minute": list(timeline)}
        archive.writestr("snapshots.json", json.dumps(meta, indent=2))
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------
# The processor
# --------------------------------------------------------------------------------------------


@dataclass
class _Counters:
    received: int = 0
    processed: int = 0
    dropped: int = 0
    errors: int = 0
    last_error: str = ""


class LiveProcessor:
    """Per-stream state: mailbox, worker thread, results ring buffer, EMA and snapshot gallery."""

    def __init__(self, detector=None, options: LiveOptions = LiveOptions(), *, window_s: float = WINDOW_S,
                 idle_timeout_s: float = 10.0, gallery_size: int = 12,
                 clock: Callable[[], float] = time.monotonic,
                 admission: Optional[Callable[[threading.Event, Callable[[Any], None]], ContextManager[Any]]] = None
                 ) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._detector = detector
        self._options = options
        self._window_s = window_s
        self._idle_timeout_s = idle_timeout_s
        self._clock = clock
        self._mailbox: Optional[tuple[np.ndarray, float, int]] = None
        self._thread: Optional[threading.Thread] = None
        self._stop_event: Optional[threading.Event] = None
        self._history: deque[FrameResult] = deque()
        self._arrivals: deque[float] = deque(maxlen=90)
        self._latest: Optional[FrameResult] = None
        self._ema: Optional[float] = None
        self._ema_t = 0.0
        self._counters = _Counters()
        self._gallery: deque[Snapshot] = deque(maxlen=gallery_size)
        self._heat_cache: tuple[Any, Optional[np.ndarray]] = (None, None)
        self._last_arrival = 0.0
        self._next_index = 0
        self._worker_started = clock()
        # The server's job queue, when given: the worker holds one of its slots while the stream is analysed,
        # so a stream and the Detect/Protect jobs of every session share the machine fairly.
        self._admission = admission
        self.admission_job: Any = None  # the queue's job while admitted or waiting (the page shows its place)

    # ---- configuration ----------------------------------------------------------------------
    def configure(self, detector=None, options: Optional[LiveOptions] = None) -> None:
        """Swap the model or options; takes effect from the next analysed frame."""
        with self._cond:
            if detector is not None:
                self._detector = detector
            if options is not None:
                self._options = options

    @property
    def options(self) -> LiveOptions:
        return self._options

    @property
    def smoothing_text(self) -> str:
        return f"exponential moving average over time, half-life {self._options.half_life_s:g} s"

    # ---- the video callback's side ------------------------------------------------------------
    def submit(self, frame: np.ndarray, captured: Optional[float] = None) -> bool:
        """Offer a frame to the worker; never blocks. True when it replaced (dropped) an untaken frame."""
        now = self._clock() if captured is None else captured
        with self._cond:
            dropped = self._mailbox is not None
            self._counters.received += 1
            self._counters.dropped += int(dropped)
            self._mailbox = (frame, now, self._next_index)
            self._next_index += 1
            self._arrivals.append(now)
            self._last_arrival = now
            self._ensure_worker_locked()
            self._cond.notify_all()
        return dropped

    def process(self, frame: np.ndarray) -> np.ndarray:
        """Video callback: submit the frame, return it with the latest result drawn on it."""
        self.submit(frame)
        return self.render(frame)

    def render(self, frame: np.ndarray) -> np.ndarray:
        with self._cond:
            result, options = self._latest, self._options
            key, heat = self._heat_cache
        heat_rgb = None
        if result is not None and result.heatmap is not None:
            wanted = (result.index, frame.shape[0], frame.shape[1])
            if key == wanted:
                heat_rgb = heat
            else:
                heat_rgb = colour_heatmap(result.heatmap, frame.shape[1], frame.shape[0])
                with self._cond:
                    self._heat_cache = (wanted, heat_rgb)
        return annotate(frame, result, opacity=options.opacity, heat_rgb=heat_rgb)

    # ---- worker -----------------------------------------------------------------------------------
    def _ensure_worker_locked(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop_event = threading.Event()
        self._worker_started = self._clock()
        self._thread = threading.Thread(target=self._run, args=(self._stop_event,), name="apate-live-worker",
                                        daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def _run(self, stop: threading.Event) -> None:
        if self._admission is None:
            return self._serve(stop)
        try:
            with self._admission(stop, self._queued) as job:
                if not stop.is_set() and not job.done:
                    self._serve(stop)
        except Exception as exc:  # noqa: BLE001 - e.g. the session's share of the queue is taken: shown on the page
            with self._cond:
                self._counters.errors += 1
                self._counters.last_error = str(exc)
                if self._thread is threading.current_thread():
                    self._thread = None
        finally:
            self.admission_job = None

    def _queued(self, job: Any) -> None:
        self.admission_job = job

    def _serve(self, stop: threading.Event) -> None:
        next_slot = 0.0
        while True:
            with self._cond:
                while True:
                    if stop.is_set():
                        return
                    now = self._clock()
                    if self._mailbox is not None and now >= next_slot:
                        break
                    if self._mailbox is None and now - self._last_arrival > self._idle_timeout_s:
                        if self._thread is threading.current_thread():
                            self._thread = None
                        return
                    wait = next_slot - now if self._mailbox is not None else self._idle_timeout_s
                    self._cond.wait(timeout=min(max(wait, 0.001), 0.5))
                (frame, captured, index), self._mailbox = self._mailbox, None
                detector, options = self._detector, self._options
            start = self._clock()
            if options.target_fps > 0:
                next_slot = start + 1.0 / options.target_fps
            try:
                result = self.analyse(frame, captured=captured, index=index, detector=detector, options=options)
            except Exception as exc:  # one bad frame must not end the stream; the page shows it
                with self._cond:
                    self._counters.errors += 1
                    self._counters.last_error = f"{type(exc).__name__}: {exc}"
                time.sleep(0.2)
                continue
            if stop.is_set():
                return
            self._publish(result)

    def analyse(self, frame: np.ndarray, *, captured: Optional[float] = None, index: int = -1,
                detector=None, options: Optional[LiveOptions] = None) -> FrameResult:
        """Analyse one frame synchronously (the worker's job; also used by tests and the benchmark)."""
        detector = detector or self._detector
        options = options or self._options
        if detector is None:
            raise RuntimeError("no detector configured")
        captured = self._clock() if captured is None else captured
        small = np.ascontiguousarray(fit_within(frame[:, :, :3], options.size))
        score, faces, heat, rects = analyse_frame(detector, small, face_mode=options.face_mode,
                                                  heatmap=options.heatmap, cam_method=options.cam_method)
        return FrameResult(index=index, captured=captured, done=self._clock(), wall=time.time(), score=score,
                           smoothed=None, faces=faces, shape=small.shape[:2], face_mode=options.face_mode,
                           model=getattr(detector, "name", "?"), heatmap=heat, heat_rects=rects, frame=small)

    def _publish(self, result: FrameResult) -> FrameResult:
        with self._cond:
            if result.score is not None:
                if self._ema is None:
                    self._ema = result.score
                else:
                    alpha = ema_alpha(result.done - self._ema_t, self._options.half_life_s)
                    self._ema += alpha * (result.score - self._ema)
                self._ema_t = result.done
            result = replace(result, smoothed=self._ema)
            self._latest = result
            # Only the latest result keeps its pixels (overlay, snapshots): the minute of history would
            # otherwise hold ~0.5 MB per analysed frame.
            self._history.append(replace(result, frame=None, heatmap=None))
            self._counters.processed += 1
            self._trim_locked(result.done)
        return result

    def _trim_locked(self, now: float) -> None:
        while self._history and now - self._history[0].done > self._window_s:
            self._history.popleft()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the worker and drop the frames it holds; the next frame starts a fresh worker."""
        with self._cond:
            thread, event = self._thread, self._stop_event
            self._thread = None
            self._mailbox = None
            if event is not None:
                event.set()
            self._cond.notify_all()
        if thread is not None and timeout > 0 and thread is not threading.current_thread():
            thread.join(timeout)
        with self._cond:
            self._latest = None if self._latest is None else replace(self._latest, frame=None, heatmap=None)
            self._heat_cache = (None, None)
            self._arrivals.clear()

    def reset(self) -> None:
        """Forget the timeline, the smoothed score and the counters (not the gallery)."""
        with self._cond:
            self._history.clear()
            self._latest = None
            self._ema = None
            self._counters = _Counters()

    # ---- what the page reads ---------------------------------------------------------------------
    def stats(self) -> LiveStats:
        now = self._clock()
        with self._cond:
            self._trim_locked(now)
            recent = [r for r in self._history if now - r.done <= FPS_WINDOW_S]
            arrivals = [t for t in self._arrivals if now - t <= FPS_WINDOW_S]
            latest, counters, ema = self._latest, replace(self._counters), self._ema
            points = sum(1 for r in self._history if r.score is not None)
            running = self.running
        fps = _rate([r.done for r in recent], now, self._worker_started)
        lat_from = recent or ([latest] if latest is not None else [])
        latency = float(np.median([r.latency_s for r in lat_from]) * 1000.0) if lat_from else None
        return LiveStats(running=running, received=counters.received, processed=counters.processed,
                         dropped=counters.dropped, fps_processed=fps,
                         fps_camera=_rate(arrivals, now, self._worker_started),
                         score=None if latest is None else latest.score, smoothed=ema if latest else None,
                         latency_ms=latency, points=points, last_error=counters.last_error)

    def timeline(self) -> list[dict[str, Any]]:
        """Scored points of the last window: seconds before now, wall time, score, smoothed score."""
        now = self._clock()
        with self._cond:
            self._trim_locked(now)
            rows = [(r.done, r.wall, r.score, r.smoothed) for r in self._history if r.score is not None]
        return [{"t": round(done - now, 3), "time_utc": datetime.fromtimestamp(wall, timezone.utc).isoformat(
            timespec="milliseconds"), "score": round(score, 4), "smoothed": None if sm is None else round(sm, 4)}
            for done, wall, score, sm in rows]

    def latest(self) -> Optional[FrameResult]:
        with self._cond:
            return self._latest

    def snapshot(self, with_heatmap: bool = True) -> Optional[Snapshot]:
        """Freeze the latest analysed frame (its heatmap computed now if it had none) into the gallery."""
        with self._cond:
            result, detector, options = self._latest, self._detector, self._options
        if result is None or result.frame is None:
            return None
        if with_heatmap and result.heatmap is None and detector is not None and result.score is not None:
            _, _, heat, rects = analyse_frame(detector, result.frame, face_mode=result.face_mode, heatmap=True,
                                              cam_method=options.cam_method)
            result = replace(result, heatmap=heat, heat_rects=rects)
        snap = Snapshot(result=result, image=annotate(result.frame, result, opacity=options.opacity),
                        frame=result.frame)
        with self._cond:
            self._gallery.append(snap)
        return snap

    def gallery(self) -> list[Snapshot]:
        with self._cond:
            return list(self._gallery)

    def clear_gallery(self) -> None:
        with self._cond:
            self._gallery.clear()

    def gallery_zip(self) -> bytes:
        return gallery_zip(self.gallery(), self.timeline(), self.smoothing_text)


def _rate(times: Sequence[float], now: float, since: float) -> float:
    """Events per second within the last FPS_WINDOW_S (a shorter span just after the stream started)."""
    if not times:
        return 0.0
    span = min(FPS_WINDOW_S, max(now - since, 1.0))
    return len(times) / span


__all__ = ["default_detector_name", "FaceResult", "FrameResult", "LiveOptions", "LiveProcessor", "LiveStats", "Snapshot",
           "analyse_frame", "ema_alpha", "fit_within", "gallery_zip", "score_and_cam"]
