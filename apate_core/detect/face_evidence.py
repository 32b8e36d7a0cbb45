"""Face evidence: every sampled frame is searched for faces and each face is scored by the face-swap model.

A swapped face in an otherwise untouched frame barely moves a whole-frame score, so Detect looks at faces on
its own: MTCNN on a copy of the frame downscaled to :data:`SEARCH_SIDE` px (a fast pass; faces under about
24 px there are not searched), each face cropped with face mode's margin and scored by ``apate-faceswap``.
A frame's face score is its most suspicious face; the input's is the mean over frames that hold a face
(as a clip's whole-frame score is the mean over frames). When the model's card allows it (``verdict_use``:
its held-out face swaps were found well enough), the verdict fuses it with the whole frames'
(:func:`verdict.fuse_face_evidence`) and says when faces decided; otherwise it is shown and not used.

Nothing here runs when the face-swap weights are absent: the result then says face evidence was unavailable.
"""

from __future__ import annotations

import threading
from typing import Any, Optional, Sequence

import numpy as np

from .faces import FaceBox, score_faces
from .models import Detector

FACE_SWAP_MODEL = "apate-faceswap"
SEARCH_SIDE = 320  # longest side of the face-search copy: about 0.01 CPU-s per 720p frame
_LOCK = threading.Lock()
_LOADED: dict[str, Detector] = {}


def face_swap_model(name: str = FACE_SWAP_MODEL) -> Optional[Detector]:
    """The face-swap detector, loaded once per process; None when its weights are not installed."""
    from .registry import SHIPPED_MODELS, create_detector

    with _LOCK:
        if name not in _LOADED:
            if name not in SHIPPED_MODELS or not SHIPPED_MODELS[name]().is_file():
                return None
            _LOADED[name] = create_detector(name)
        return _LOADED[name]


def score_frame_faces(model: Detector, image: np.ndarray, *, margin: float = 0.3,
                      boxes: Optional[Sequence[FaceBox]] = None) -> list[dict[str, Any]]:
    """[{box, score}] for each face of ``image`` (found by the fast pass unless ``boxes`` are given)."""
    return [face.to_dict() for face in score_faces(model, image, margin=margin, faces=boxes, max_side=SEARCH_SIDE)]


def summarise(records: Sequence[dict[str, Any]], model: Optional[Detector]) -> dict[str, Any]:
    """result.json's ``face_evidence``: the input's face-swap score and where it comes from."""
    if model is None:
        return {"available": False, "model": FACE_SWAP_MODEL, "score": None,
                "note": f"Face evidence unavailable: the {FACE_SWAP_MODEL} weights are not installed."}
    per_frame = [(r["index"], max(f["score"] for f in r["face_swap"])) for r in records if r.get("face_swap")]
    scores = [s for _, s in per_frame]
    worst = max(per_frame, key=lambda item: item[1], default=(None, None))
    use = model.card.get("verdict_use") or {}
    return {"available": True, "model": model.card.get("name", FACE_SWAP_MODEL),
            "fused": bool(use.get("fused")), "fused_reason": use.get("reason", "the model card sets no verdict use"),
            "score": float(np.mean(scores)) if scores else None, "max": worst[1], "max_frame": worst[0],
            "frames_with_faces": len(scores), "faces": sum(len(r.get("face_swap") or []) for r in records),
            "search_side": SEARCH_SIDE}


def describe(evidence: Optional[dict[str, Any]]) -> Optional[str]:
    """One sentence on the face evidence for the page, the report and the CLI; None when it was not searched."""
    if not evidence:
        return None
    if not evidence.get("available"):
        return evidence.get("note")
    if not evidence.get("faces"):
        return f"Face evidence ({evidence['model']}): no face found in the sampled frames."
    frames = evidence["frames_with_faces"]
    use = ("It joins the verdict" if evidence.get("fused") else "Shown, not used in the verdict") + \
        f": {evidence.get('fused_reason')}."
    return (f"Face evidence ({evidence['model']}): {evidence['faces']} face(s) in {frames} frame(s), "
            f"P(face swap) {evidence['score']:.3f}" + (f" on average, max {evidence['max']:.3f}" if frames > 1 else "")
            + f". {use}")
