"""Detect analysis pipeline: stream sampled frames, score them in batches, heatmaps, verdict, result store.

    detector = load_detector_by_name(DEFAULT_DETECTOR)        # or create_detector(...)
    result = analyse_path("clip.mp4", settings, detector, DetectParams(fps=1), store=store)
    result.data["score"], result.data["label"], result.heatmap(12), result.frame(12)

Memory stays bounded whatever the video length and frame size: frames are decoded one at a time
and scored in chunks of ``batch_size`` frames and at most CHUNK_PIXELS pixels (network batches are
smaller still where their input would pass models.BATCH_PIXELS, and large frames of native-resolution
detectors go in tiles of at most ``config.tile`` px, see models);
only the ``top_k`` most suspicious frames are held (at full resolution, for their heatmaps) until the
end, and what is kept is downscaled: frames to ``frame_side`` px, heatmaps (uint8, 0-255 for [0, 1])
to ``heatmap_side`` px. Any other frame is decoded again when asked for (:func:`frame_view`), and its
heatmap kept in the store.

Scores: P(fake) per frame (face mode: per face crop; a frame's score is its most suspicious face).
The input's score is the MEAN of frame scores (DeepfakeBench's video-level protocol); max and the
mean of the top-k frames are reported beside it. The label (real, uncertain, fake, generated segments
or declared generated) and which signal decided it come from :mod:`.verdict`, once provenance is read.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from .. import __version__, history, monitoring
from ..errors import ApateError, InputRefused
from ..progress import CancelToken, ProgressCallback, check_cancelled, no_progress
from ..settings import Settings
from ..store import ResultStore, make_key
from .models import Detector
from .registry import list_detectors
from .model_summary import model_summary  # noqa: F401 - re-exported
from .frame_scoring import (FrameScorer, chunks, downscale, image_samples, reporting, to_uint8_map,
                            video_samples)
from .face_evidence import face_swap_model, score_frame_faces
from .face_evidence import summarise as summarise_faces
from .faces import FaceBox
from .verdict import LABELS, apply_verdict, label_for, most_severe, suspicious_segments  # noqa: F401 (re-exported)

FALLBACK_DETECTOR = "resnet18"
SHIPPED_DETECTORS = ("apate-universal", "apate")  # the first one installed is the default
HEATMAP_MODES = ("top_k", "all")
RESULT_VERSION = 2  # 2: labels segments/declared, data["verdict"], segments with peak and frames
# Most full-resolution frame pixels decoded and scored together (16 frames of 1280x720, one 4K frame): the
# frames, their float32 heatmaps and tile maps of one chunk are what the pipeline holds at a time.
CHUNK_PIXELS = 16 * 1280 * 720


def default_detector_name() -> str:
    """Apate's shipped detector once it is registered, else an (untrained) ResNet-18. The one place this is decided."""
    return next((name for name in SHIPPED_DETECTORS if name in list_detectors()), FALLBACK_DETECTOR)


DEFAULT_DETECTOR = default_detector_name()


# --------------------------------------------------------------------------------------------
# Parameters, aggregation, verdict
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DetectParams:
    """Everything that changes a detect result (all of it goes into the store key, batch_size aside).

    cam: heatmap method (see list_cam_methods) or None for no heatmaps.
    heatmaps: "top_k" (heatmaps only for the top_k most suspicious frames) or "all".
    band: (low, high) -- real at score <= low, fake at score >= high, uncertain between.
    """

    fps: float = 1.0
    cam: Optional[str] = "gradcam"
    heatmaps: str = "top_k"
    top_k: int = 8
    faces: bool = False
    face_margin: float = 0.3
    face_evidence: bool = True  # search every sampled frame for faces and score them for face swaps
    band: tuple[float, float] = (0.4, 0.6)
    frame_side: int = 480  # kept frames (top-k and requested), longest side in px
    heatmap_side: int = 224  # stored heatmaps, longest side in px
    batch_size: int = 16

    def __post_init__(self) -> None:
        object.__setattr__(self, "band", (float(self.band[0]), float(self.band[1])))
        if not self.fps or self.fps <= 0 or not math.isfinite(self.fps):
            raise InputRefused(f"fps must be a positive number, got {self.fps}")
        if self.heatmaps not in HEATMAP_MODES:
            raise InputRefused(f"Unknown heatmap selection {self.heatmaps!r}", accepted=", ".join(HEATMAP_MODES))
        if self.top_k < 1:
            raise InputRefused(f"top_k must be at least 1, got {self.top_k}")
        low, high = self.band
        if not 0.0 <= low <= high <= 1.0:
            raise InputRefused(f"Uncertain band {self.band} is not 0 <= low <= high <= 1")
        if self.cam is not None:
            from .cam import get_cam_method

            get_cam_method(self.cam)  # refuse an unknown method before any decoding
        if self.face_margin < 0 or self.frame_side < 16 or self.heatmap_side < 8 or self.batch_size < 1:
            raise InputRefused("face_margin >= 0, frame_side >= 16, heatmap_side >= 8 and batch_size >= 1 are needed")

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["band"] = list(self.band)
        return out

    def key_dict(self) -> dict[str, Any]:
        out = self.to_dict()
        out.pop("batch_size")
        return out


def aggregate(scores: Sequence[float], top_k: int = 8) -> dict[str, Any]:
    """mean (the input's score), max and mean of the top_k highest of per-frame P(fake)."""
    values = np.asarray([s for s in scores if s is not None], dtype=np.float64)
    if values.size == 0:
        return {"mean": None, "max": None, "top_k_mean": None, "top_k": int(top_k), "count": 0}
    top = np.sort(values)[::-1][: max(1, int(top_k))]
    return {"mean": float(values.mean()), "max": float(values.max()), "top_k_mean": float(top.mean()),
            "top_k": int(top_k), "count": int(values.size)}


# --------------------------------------------------------------------------------------------
# Result
# --------------------------------------------------------------------------------------------


def heatmap_name(index: int) -> str:
    return f"heatmaps/{index:06d}.png"


def _heat_key(index: int) -> str:
    return f"heatmap_{index:06d}"


def _frame_key(index: int) -> str:
    return f"frame_{index:06d}"


@dataclass
class DetectResult:
    """result.json as a dict (``data``) plus the kept arrays: uint8 heatmaps and downscaled frames."""

    data: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    from_store: bool = False
    key: str = ""

    @property
    def score(self) -> Optional[float]:
        return self.data["score"]

    @property
    def label(self) -> str:
        return self.data["label"]

    @property
    def frames(self) -> list[dict[str, Any]]:
        return self.data["frames"]

    def frame_record(self, index: int) -> dict[str, Any]:
        for record in self.frames:
            if record["index"] == index:
                return record
        raise KeyError(index)

    def heatmap(self, index: int) -> Optional[np.ndarray]:
        """(h, w) float32 in [0, 1], or None when none was kept for this frame."""
        arr = self.arrays.get(_heat_key(index))
        return None if arr is None else arr.astype(np.float32) / 255.0

    def frame(self, index: int) -> Optional[np.ndarray]:
        return self.arrays.get(_frame_key(index))

    def heatmap_indices(self) -> list[int]:
        return sorted(int(k.split("_")[1]) for k in self.arrays if k.startswith("heatmap_"))

    def top_frames(self) -> list[int]:
        return list(self.data.get("top_frames", []))


@dataclass
class BatchResult:
    """Several inputs in one job: one result each (or the refusal) plus a combined summary."""

    results: list[DetectResult]
    errors: list[dict[str, str]]
    summary: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary, "results": [r.data for r in self.results], "errors": self.errors}


def summarise_batch(results: Sequence[DetectResult], errors: Sequence[dict[str, str]] = (),
                    band: Sequence[float] = (0.4, 0.6)) -> dict[str, Any]:
    scores = [r.score for r in results if r.score is not None]
    counts = {label: sum(1 for r in results if r.label == label) for label in LABELS}
    worst = max(results, key=lambda r: -1.0 if r.score is None else r.score, default=None)
    return {
        "inputs": len(results) + len(errors), "analysed": len(results), "refused": len(errors),
        "labels": counts, "mean_score": float(np.mean(scores)) if scores else None,
        "max_score": float(max(scores)) if scores else None,
        "most_suspicious": worst.data["input"]["name"] if worst is not None else None,
        "label": most_severe([r.label for r in results]) or label_for(None, band),
    }


# --------------------------------------------------------------------------------------------
# The pipeline
# --------------------------------------------------------------------------------------------


def result_key(media, detector: Detector, params: DetectParams) -> str:
    face_model = face_swap_model() if params.face_evidence else None  # new face-swap weights, new result
    return make_key(media.sha256, "detect", model_id=detector.name, weights_sha256=detector.weights_sha256,
                    params={**params.key_dict(), "temperature": detector.temperature,
                            "face_model": face_model.weights_sha256 if face_model else None})


def _provenance(media) -> dict[str, Any]:
    from ..provenance import read_c2pa, read_metadata, summarise_provenance

    try:
        c2pa = read_c2pa(media.path)
        metadata = read_metadata(media.path, media.kind)
        summary = summarise_provenance(c2pa, metadata)
        c2pa_dict = c2pa.to_dict()
        c2pa_dict.pop("manifest_json", None)
        return {"c2pa": c2pa_dict, "summary": summary,
                "declares_generative_ai": bool(c2pa.declares_generative_ai)}
    except (ApateError, OSError, ValueError) as exc:  # provenance must never sink a detection
        return {"c2pa": None, "summary": [f"Provenance could not be read: {exc}"], "declares_generative_ai": False}


def analyse_media(media, detector: Detector, params: Optional[DetectParams] = None, *,
                  store: Optional[ResultStore] = None, progress: ProgressCallback = no_progress,
                  cancel: Optional[CancelToken] = None, settings: Optional[Settings] = None,
                  normalise: bool = False, source: str = "") -> DetectResult:
    """Analyse an accepted MediaFile (see intake_file). Re-opens from ``store`` when the same content,
    model weights and parameters were analysed before. Raises Cancelled when ``cancel`` is set."""
    params = params or DetectParams()
    key = result_key(media, detector, params)
    if store is not None:
        cached = store.get(key)
        if cached is not None:
            data = apply_verdict(cached.meta)  # judged by today's rules, whenever it was stored
            data["input"].update(_input_dict(media, source))
            progress(1.0, "Opened from the result store")
            return DetectResult(data, cached.arrays, from_store=True, key=key)
    started = time.perf_counter()
    result = _run(media, detector, params, progress, cancel)
    result.data["provenance"] = _provenance(media)
    apply_verdict(result.data)
    result.data["input"] = _input_dict(media, source)
    result.data["video_path"] = str(Path(media.path).resolve()) if media.kind == "video" else None
    result.data["normalised_video"] = None
    if normalise and media.kind == "video" and store is not None and settings is not None:
        result.data["normalised_video"] = str(normalised_video(media, settings, store, cancel=cancel))
    result.data["elapsed_s"] = round(time.perf_counter() - started, 3)
    result.key = key
    if store is not None:
        store.put(key, result.data, result.arrays)
        shown = result.top_frames()[:1] or [r["index"] for r in result.frames[:1]]
        history.record(store, history.detect_entry(result.data, key), result.frame(shown[0]) if shown else None)
    progress(1.0, "Done")
    return result


def _input_dict(media, source: str = "") -> dict[str, Any]:
    out = {"name": media.name, "path": str(Path(media.path).resolve()), "source": source or media.name,
           "sha256": media.sha256, "kind": media.kind, "format": media.format, "size_bytes": media.size_bytes}
    info = media.video or media.image
    if media.video is not None:
        out.update(duration=info.duration, fps=info.fps, width=info.display_width, height=info.display_height)
    elif info is not None:
        out.update(width=info.width, height=info.height)
    return out


def _run(media, detector: Detector, params: DetectParams, progress: ProgressCallback,
         cancel: Optional[CancelToken]) -> DetectResult:
    from ..media.video import count_samples

    scorer = FrameScorer(detector, params, cancel)
    face_model = face_swap_model() if params.face_evidence else None
    is_video = media.kind == "video"
    total = count_samples(media.video.duration, params.fps) if is_video else 1
    samples = video_samples(media, params.fps, cancel) if is_video else image_samples(media)
    want_maps = params.cam is not None
    scan_share = 0.9 if want_maps and params.heatmaps == "top_k" else 1.0
    records: list[dict[str, Any]] = []
    arrays: dict[str, np.ndarray] = {}
    # min-heap of (score, -index, index, frame: full-res while its heatmap is to be made, small heatmap or None)
    top: list[tuple[float, int, int, np.ndarray, Optional[np.ndarray]]] = []
    check_cancelled(cancel)
    progress(0.0, f"Analysing {total} frame{'s' if total != 1 else ''}")
    samples = reporting(samples, total, scan_share, progress)
    cam_all = want_maps and params.heatmaps == "all"
    for chunk in chunks(samples, params.batch_size, CHUNK_PIXELS):
        check_cancelled(cancel)
        # Top-k mode keeps each candidate at full resolution for its heatmap at the end; where top_k such
        # frames would pass CHUNK_PIXELS (4K, say), the map is made now instead, and only small copies kept.
        largest = max(int(np.prod(s.image.shape[:2])) for s in chunk)
        scores, faces, maps = scorer.score(chunk, cam_all or params.top_k * largest > CHUNK_PIXELS)
        for sample, score, face_list, cam in zip(chunk, scores, faces, maps):
            record = {"index": sample.index, "time": round(float(sample.time), 6), "score": score,
                      "heatmap": None, "faces": face_list}
            if params.faces:
                record["no_face"] = not face_list
            if face_model is not None:
                boxes = [FaceBox(**f["box"]) for f in face_list] if params.faces else None
                record["face_swap"] = score_frame_faces(face_model, sample.image, margin=params.face_margin,
                                                        boxes=boxes)
            records.append(record)
            small_map = None if cam is None else to_uint8_map(cam, params.heatmap_side)
            if cam_all:
                arrays[_heat_key(sample.index)] = small_map
                record["heatmap"] = heatmap_name(sample.index)
            if score is None:
                continue
            # Keep full-res frames only where a heatmap is still to be made; otherwise a small copy.
            keep = sample.image if (want_maps and cam is None) else downscale(sample.image, params.frame_side)
            item = (score, -sample.index, sample.index, keep, None if cam_all else small_map)
            if len(top) < params.top_k:
                heapq.heappush(top, item)
            elif item[:2] > top[0][:2]:
                heapq.heapreplace(top, item)
        progress(scan_share * min(1.0, len(records) / max(total, 1)),
                 f"Scored {len(records)}/{total} frame{'s' if total != 1 else ''}")
    if not records:
        raise InputRefused("No frame could be decoded from this file", accepted="videos with at least one frame")
    face_fallback = False
    if params.faces and all(r["score"] is None for r in records):
        face_fallback = True  # no face anywhere: score whole frames rather than nothing
    best = sorted(top, key=lambda item: (-item[0], item[2]))
    if want_maps and params.heatmaps == "top_k" and best:
        check_cancelled(cancel)
        progress(scan_share, f"Heatmaps for the top {len(best)} frames" if len(best) > 1 else "Heatmap for the frame")
        by_index = {r["index"]: r for r in records}
        for item in best:
            if item[4] is not None:  # made during the scan
                arrays[_heat_key(item[2])] = item[4]
                by_index[item[2]]["heatmap"] = heatmap_name(item[2])
        pending = iter([item for item in best if item[4] is None])
        for group in chunks(pending, params.batch_size, CHUNK_PIXELS, image=lambda item: item[3]):
            maps = scorer.heatmaps([b[3] for b in group], [by_index[b[2]]["faces"] for b in group])
            for item, cam in zip(group, maps):
                arrays[_heat_key(item[2])] = to_uint8_map(cam, params.heatmap_side)
                by_index[item[2]]["heatmap"] = heatmap_name(item[2])
    for item in best:
        arrays[_frame_key(item[2])] = downscale(item[3], params.frame_side)
    data = _result_data(records, [b[2] for b in best], detector, params, media.kind, face_fallback)
    if face_fallback:
        data = _whole_frame_fallback(media, detector, params, data, arrays, cancel)
    if params.face_evidence:
        data["face_evidence"] = summarise_faces(data["frames"], face_model)
    return DetectResult(data, arrays)


def _whole_frame_fallback(media, detector: Detector, params: DetectParams, data: dict, arrays: dict,
                          cancel: Optional[CancelToken]) -> dict:
    """Face mode found no face in any frame: score whole frames, and say so."""
    whole = _run(media, detector, dataclasses.replace(params, faces=False, face_evidence=False), no_progress, cancel)
    for record, other in zip(data["frames"], whole.data["frames"]):
        record["score"], record["heatmap"] = other["score"], other["heatmap"]
    arrays.clear()
    arrays.update(whole.arrays)
    new = _result_data(data["frames"], whole.data["top_frames"], detector, params, media.kind, True)
    return new


def _result_data(records: list[dict], top_frames: list[int], detector: Detector, params: DetectParams,
                 kind: str, face_fallback: bool) -> dict[str, Any]:
    aggregates = aggregate([r["score"] for r in records], params.top_k)
    score = aggregates["mean"]
    notes = []
    if params.faces:
        no_face = sum(1 for r in records if r.get("no_face"))
        if face_fallback:
            notes.append("No face was found in any frame; the score is of whole frames.")
        elif no_face:
            notes.append(f"{no_face} of {len(records)} frames have no face; the score is over frames with faces.")
        aggregates["frames_with_faces"] = len(records) - no_face
        aggregates["faces"] = sum(len(r["faces"]) for r in records)
    summary = model_summary(detector)
    if summary["untrained"]:
        notes.append("The model is untrained (random initialisation): its scores carry no meaning.")
    return {
        "apate_version": __version__, "result_version": RESULT_VERSION, "task": "detect", "kind": kind,
        "score": score, "label": None, "verdict": None,  # set by apply_verdict once provenance is known
        "band": {"low": params.band[0], "high": params.band[1]},
        "aggregates": aggregates, "top_frames": list(top_frames), "suspicious_segments": [],
        "frames": records,
        "model": summary, "params": params.to_dict(), "face_fallback": face_fallback, "notes": notes,
    }


# --------------------------------------------------------------------------------------------
# Entry points: paths, several inputs, one frame on request
# --------------------------------------------------------------------------------------------


def analyse_path(path: str | Path, settings: Settings, detector: Detector, params: Optional[DetectParams] = None,
                 *, store: Optional[ResultStore] = None, progress: ProgressCallback = no_progress,
                 cancel: Optional[CancelToken] = None, name: Optional[str] = None, normalise: bool = False,
                 source: str = "") -> DetectResult:
    """Intake (refusing what is not accepted) then analyse."""
    from ..media.intake import existing_file, intake_file

    params = params or DetectParams()
    media = intake_file(existing_file(path), settings, name=name)
    return analyse_media(media, detector, params, store=store, progress=progress, cancel=cancel,
                         settings=settings, normalise=normalise, source=source)


def analyse_many(paths: Sequence[str | Path], settings: Settings, detector: Detector,
                 params: Optional[DetectParams] = None, *, store: Optional[ResultStore] = None,
                 progress: ProgressCallback = no_progress, cancel: Optional[CancelToken] = None,
                 names: Optional[Sequence[str]] = None, skip_refused: bool = True) -> BatchResult:
    """Several inputs (typically images) in one job: one result per input plus a combined summary.

    A refused input is reported in ``errors`` (skip_refused) or raised; Cancelled always stops the job.
    """
    params = params or DetectParams()
    if not paths:
        raise InputRefused("No input given")
    if len(paths) > settings.max_batch:
        raise InputRefused(f"{len(paths)} files in one job", limit=f"{settings.max_batch} (APATE_MAX_BATCH)")
    results, errors = [], []
    for n, path in enumerate(paths):
        check_cancelled(cancel)
        name = names[n] if names else Path(path).name

        def part(fraction: float, message: str, n: int = n, name: str = name) -> None:
            progress((n + min(max(fraction, 0.0), 1.0)) / len(paths), f"{name} ({n + 1}/{len(paths)}): {message}")

        try:
            results.append(analyse_path(path, settings, detector, params, store=store, progress=part,
                                        cancel=cancel, name=name))
        except InputRefused as exc:
            if not skip_refused:
                raise
            errors.append({"name": name, "error": str(exc)})
    return BatchResult(results, errors, summarise_batch(results, errors, params.band))


def frame_view(result: DetectResult, index: int, detector: Detector, *, store: Optional[ResultStore] = None,
               cam: Optional[str] = None) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """(frame at frame_side, heatmap in [0,1] or None) of any analysed frame; decoded again when not kept.

    Made once per (result, frame) and kept in the store: "requested" frames cost one decode + one CAM.
    """
    params = DetectParams(**{**result.data["params"], "band": tuple(result.data["params"]["band"])})
    cam = cam or params.cam
    image, heat = result.frame(index), result.heatmap(index)
    if image is not None and (heat is not None or cam is None):
        return image, heat
    key = make_key(result.data["input"]["sha256"], "detect-frame", model_id=result.data["model"]["name"],
                   weights_sha256=result.data["model"]["weights_sha256"],
                   params={**params.key_dict(), "index": index, "cam": cam})
    cached = store.get(key) if store is not None else None
    if cached is not None:
        heat_arr = cached.arrays.get("heatmap")
        return cached.arrays["frame"], None if heat_arr is None else heat_arr.astype(np.float32) / 255.0
    record = result.frame_record(index)
    full = _decode_one(result.data, record)
    small = downscale(full, params.frame_side)
    arrays = {"frame": small}
    if cam is not None:
        scorer = FrameScorer(detector, dataclasses.replace(params, cam=cam), None)
        cam_map = scorer.heatmaps([full], [record.get("faces") or []])[0]
        arrays["heatmap"] = to_uint8_map(cam_map, params.heatmap_side)
    if store is not None:
        store.put(key, {"index": index}, arrays)
    heat_arr = arrays.get("heatmap")
    return small, None if heat_arr is None else heat_arr.astype(np.float32) / 255.0


def _decode_one(data: dict, record: dict) -> np.ndarray:
    path = data["input"]["path"]
    if not Path(path).is_file():  # an upload pruned after APATE_UPLOAD_KEEP_DAYS, or a file moved since
        raise InputRefused(f"The analysed file is no longer at {Path(path).name!r}, so this frame cannot be decoded "
                           "again (the verdict, the scores and the top frames are kept with the result)",
                           accepted="analysing the file again", limit="uploads are kept APATE_UPLOAD_KEEP_DAYS "
                           "days after their last use")
    if data["kind"] != "video":
        from ..media.images import decode_image

        return decode_image(path, max_pixels=10**12, accepted=(data["input"]["format"],)).rgb
    from ..media.video import iter_frames

    t = float(record["time"])
    for frame in iter_frames(path, 1000.0, start=t, end=t + 0.0005):
        return frame.image
    raise InputRefused(f"The frame at {t:.2f} s could not be decoded again")


def normalised_video(media, settings: Settings, store: ResultStore, cancel: Optional[CancelToken] = None) -> Path:
    """Browser-playable H.264 copy (<= 720p) in the cache's normalised-media folder, made once per content."""
    from ..inspection import playable_video

    folder = settings.cache_path / "normalised"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    out = folder / f"{media.sha256}.mp4"
    if not out.exists():
        out.write_bytes(playable_video(media, store, cancel=cancel))
    return out


def load_detector(name: str, settings: Optional[Settings] = None) -> Detector:
    """A registered name or a checkpoint path (absolute, relative, or under APATE_MODELS_DIR)."""
    from .registry import create_detector

    device = settings.resolved_device() if settings is not None else "cpu"
    if name not in list_detectors() and settings is not None and not Path(name).exists():
        candidate = settings.models_path / name
        if candidate.exists():
            name = str(candidate)
    started = time.perf_counter()
    detector = create_detector(name, device=device)
    monitoring.model_loaded(getattr(detector, "name", name), detector, time.perf_counter() - started)
    return detector


def available_checkpoints(settings: Settings) -> list[Path]:
    """Detector checkpoints under APATE_MODELS_DIR that the model pickers offer: not the files under a Protect
    generator family's folder (``<models>/stargan/...``), which Protect lists and no detector can load."""
    from ..protect.generators import list_generators
    from .checkpoints import CHECKPOINT_SUFFIXES

    folder = settings.models_path
    if not folder.is_dir():
        return []
    generators = set(list_generators())
    found = [p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in CHECKPOINT_SUFFIXES
             and p.relative_to(folder).parts[0] not in generators]
    return sorted(found)[:50]
