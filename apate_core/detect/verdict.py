"""The verdict: one label per analysed input, from the model's scores, their timeline, provenance and faces.

Labels (``data["label"]``; :data:`LABEL_NAMES` gives what people read):

* ``real`` / ``uncertain`` / ``fake``: the model's score against the band (real at <= low, fake at >= high).
  Still images only ever get these three (or ``declared``).
* ``segments`` ("generated segments"), videos only: at least one *sustained* run of suspicious frames, i.e.
  :data:`MIN_RUN_FRAMES` or more consecutive sampled frames at >= the band's high end covering at least
  :data:`MIN_RUN_SECONDS` of the clip, whatever the clip's mean says. An isolated spike is not enough: one
  frame is as likely to be a model misfire as a spliced shot. A clip whose scored frames are (nearly) all at or
  above high (share >= :data:`NEARLY_ALL`) is ``fake``, not ``segments``.
* ``declared`` ("declared generated"): a valid (or trusted) C2PA manifest declares trained-algorithmic,
  composite-with-trained-algorithmic or algorithmic media. The signer said so; the model's score cannot overrule it.

Precedence: provenance, then the timeline (segments / nearly all fake), then face evidence when it says more than
the whole frames, then the mean. ``data["verdict"]`` records the label, ``decided_by`` (model, segments,
provenance or faces) and one human sentence.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

LABELS = ("real", "fake", "uncertain", "segments", "declared")
LABEL_NAMES = {"real": "real", "fake": "fake", "uncertain": "uncertain", "segments": "generated segments",
               "declared": "declared generated"}
# Most alarming last: a batch reads as its most severe label.
SEVERITY = ("real", "uncertain", "segments", "fake", "declared")
DECIDERS = {"model": "the model's score", "segments": "the timeline of frame scores",
            "provenance": "provenance (C2PA Content Credentials)", "faces": "face evidence"}
MIN_RUN_FRAMES = 2
MIN_RUN_SECONDS = 1.0
NEARLY_ALL = 0.9
# IPTC digital source types that say a model or an algorithm made the pixels (OpenAI, Adobe Firefly, Google...).
GENERATED_SOURCE_TYPES = ("trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia", "algorithmicMedia")
VALID_STATES = ("Valid", "Trusted")


def display_label(label: str) -> str:
    return LABEL_NAMES.get(label, label)


def explain(verdict: dict) -> str:
    """"Decided by <signal>: <reason>" for the page, the report and the CLI."""
    reason = verdict["reason"]
    return f"Decided by {DECIDERS.get(verdict['decided_by'], verdict['decided_by'])}: {reason[:1].lower()}{reason[1:]}"


def describe_segment(segment: dict) -> str:
    return (f"{segment['start']:.1f}–{segment['end']:.1f} s, peak P(fake) {segment['peak']:.3f} "
            f"({segment['frames']} frames)")


def most_severe(labels: Sequence[str]) -> Optional[str]:
    known = [label for label in labels if label in SEVERITY]
    return max(known, key=SEVERITY.index) if known else None


def label_for(score: Optional[float], band: Sequence[float] = (0.4, 0.6)) -> str:
    """fake at score >= high, real at score <= low, uncertain otherwise (and when there is no score)."""
    low, high = float(band[0]), float(band[1])
    if score is None:
        return "uncertain"
    if score >= high:
        return "fake"
    if score <= low:
        return "real"
    return "uncertain"


# --------------------------------------------------------------------------------------------
# The timeline
# --------------------------------------------------------------------------------------------


def suspicious_segments(frames: Sequence[dict], threshold: float, step: float) -> list[dict[str, Any]]:
    """Runs of consecutive sampled frames scoring >= threshold: {start, end} seconds (each frame covers
    +-step/2), the run's peak score and its frame count. A frame without a score (no face) ends a run."""
    segments: list[dict[str, Any]] = []
    half = step / 2.0
    previous_hit = False
    for record in frames:
        score = record.get("score")
        hit = score is not None and score >= threshold
        if hit and previous_hit:
            last = segments[-1]
            last["end"] = round(record["time"] + half, 6)
            last["peak"], last["frames"] = max(last["peak"], float(score)), last["frames"] + 1
        elif hit:
            segments.append({"start": round(max(0.0, record["time"] - half), 6),
                             "end": round(record["time"] + half, 6), "peak": float(score), "frames": 1})
        previous_hit = hit
    return segments


def is_sustained(segment: dict) -> bool:
    return segment["frames"] >= MIN_RUN_FRAMES and segment["end"] - segment["start"] >= MIN_RUN_SECONDS - 1e-6


def _fake_share(frames: Sequence[dict], high: float) -> tuple[int, int]:
    scores = [r["score"] for r in frames if r.get("score") is not None]
    return sum(1 for s in scores if s >= high), len(scores)


# --------------------------------------------------------------------------------------------
# Provenance and faces
# --------------------------------------------------------------------------------------------


def declared_generated(provenance: Optional[dict]) -> Optional[str]:
    """The human label of a generated digital source type that a valid C2PA manifest declares, else None.

    ``provenance`` is what the pipeline stores as ``data["provenance"]`` (``{"c2pa": C2paReport.to_dict(), ...}``).
    An invalid manifest proves nothing, so it declares nothing here.
    """
    c2pa = (provenance or {}).get("c2pa") or {}
    if c2pa.get("validation_state") not in VALID_STATES:
        return None
    uri = c2pa.get("digital_source_type") or ""
    if uri.rstrip("/").rsplit("/", 1)[-1] not in GENERATED_SOURCE_TYPES:
        return None
    return c2pa.get("digital_source_label") or uri


def fuse_face_evidence(frame_score: Optional[float], face_score: Optional[float]) -> Optional[float]:
    """Whole-frame and face (e.g. face-swap) evidence as one P(fake): the stronger of the two.

    Max, not mean: a swapped face in an untouched frame must not be diluted by the rest of the picture.
    """
    known = [s for s in (frame_score, face_score) if s is not None]
    return max(known) if known else None


# --------------------------------------------------------------------------------------------
# The decision
# --------------------------------------------------------------------------------------------


def _verdict(label: str, decided_by: str, reason: str, segments: Sequence[dict] = ()) -> dict[str, Any]:
    return {"label": label, "display": display_label(label), "decided_by": decided_by, "reason": reason,
            "segments": list(segments)}


def _model_reason(score: Optional[float], count: int, band: Sequence[float]) -> str:
    if score is None:
        return "No frame could be scored, so the model gives no verdict."
    what = f"The mean P(fake) of {count} sampled frames" if count > 1 else "The model's P(fake)"
    low, high = band
    where = f"at or above {high:g}" if score >= high else f"at or below {low:g}" if score <= low else \
        f"between {low:g} and {high:g}"
    return f"{what}, {score:.3f}, is {where}."


def _timeline_verdict(score: Optional[float], frames: Sequence[dict], band: Sequence[float],
                      step: float) -> Optional[dict]:
    """Nearly all frames fake -> fake; else a sustained run -> segments; else None (the mean decides)."""
    high = band[1]
    hits, scored = _fake_share(frames, high)
    if scored > 1 and hits >= NEARLY_ALL * scored:
        by = "model" if label_for(score, band) == "fake" else "segments"
        return _verdict("fake", by, f"{hits} of {scored} sampled frames score at or above {high:g}.")
    sustained = [s for s in suspicious_segments(frames, high, step) if is_sustained(s)]
    if not sustained:
        return None
    first = sustained[0]
    runs = f"{len(sustained)} sustained runs" if len(sustained) > 1 else "A sustained run"
    return _verdict("segments", "segments",
                    f"{runs} of frames at or above {high:g} (from {first['start']:.1f} s to {first['end']:.1f} s, "
                    f"peak {first['peak']:.3f}) although the clip's mean P(fake) is "
                    f"{'–' if score is None else f'{score:.3f}'}.", sustained)


def decide_verdict(score: Optional[float], frames: Sequence[dict], provenance: Optional[dict],
                   band: Sequence[float] = (0.4, 0.6), face_score: Optional[float] = None, *,
                   kind: str = "video", step: float = 1.0) -> dict[str, Any]:
    """The verdict of one input: {label, display, decided_by, reason, segments}.

    score: the model's P(fake) for the input (a video's mean of frame scores). frames: result.json's frame records
    ({time, score}, in order). provenance: result.json's provenance dict. face_score: optional face evidence
    (e.g. a face-swap detector's P(fake) for the input), fused with ``score`` by :func:`fuse_face_evidence`.
    kind: "video" or "image" (only videos get segments); step: seconds between sampled frames (1 / fps).
    """
    band = (float(band[0]), float(band[1]))
    declared = declared_generated(provenance)
    if declared:
        signer = ((provenance or {}).get("c2pa") or {}).get("signer") or "an unknown signer"
        return _verdict("declared", "provenance",
                        f"Valid Content Credentials signed by {signer} declare it {declared[:1].lower()}"
                        f"{declared[1:]}, whatever the model scores.")
    verdict = _timeline_verdict(score, frames, band, step) if kind == "video" else None
    verdict = verdict or _verdict(label_for(score, band), "model", _model_reason(score, len(frames), band))
    fused = fuse_face_evidence(score, face_score)
    by_faces = label_for(fused, band)
    if face_score is not None and SEVERITY.index(by_faces) > SEVERITY.index(verdict["label"]):
        whole = "–" if score is None else f"{score:.3f}"
        return _verdict(by_faces, "faces", f"Face evidence, P(fake) {face_score:.3f}, outweighs the whole frames' "
                                           f"{whole}.")
    return verdict


def apply_verdict(data: dict[str, Any], face_score: Optional[float] = None) -> dict[str, Any]:
    """Set result.json's suspicious_segments, verdict and label from its frames, band and provenance (in place).

    Cheap and deterministic, so a result re-opened from the store is judged by the current rules too.
    ``face_score`` defaults to the face-swap score the pipeline stored (``data["face_evidence"]``) when the
    face-swap model's card lets it join verdicts.
    """
    evidence = data.get("face_evidence") or {}
    if face_score is None and evidence.get("fused"):
        face_score = evidence.get("score")
    band = (data["band"]["low"], data["band"]["high"])
    step = 1.0 / float(data["params"]["fps"]) if data["kind"] == "video" else 0.0
    data["suspicious_segments"] = suspicious_segments(data["frames"], band[1], step)
    data["verdict"] = decide_verdict(data["score"], data["frames"], data.get("provenance"), band, face_score,
                                     kind=data["kind"], step=step)
    data["label"] = data["verdict"]["label"]
    return data
