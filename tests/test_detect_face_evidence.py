"""Face evidence: every sampled frame searched for faces, each face scored by the face-swap model, and the
verdict using it only when the model's card allows (verdict_use)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from apate_core.detect import create_detector, face_evidence, mtcnn
from apate_core.detect.pipeline import DetectParams, analyse_path
from apate_core.detect.report import report_html
from apate_core.detect.verdict import apply_verdict

FACE = Path(__file__).resolve().parents[1] / "assets" / "faces" / "obama.jpg"

pytestmark = pytest.mark.skipif(not mtcnn.weights_installed() or not FACE.is_file(),
                                reason="MTCNN weights or assets/faces missing; run `make bootstrap`")


def _constant(architecture: str, logit: float, **config):
    """A detector whose every P(fake) is sigmoid(logit): real computations, a known answer."""
    detector = create_detector(architecture, **config)
    head = detector.module.classifier[-1] if architecture == "mobilenet_v2" else detector.module.fc
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(logit)
    return detector


@pytest.fixture
def swap_model(monkeypatch):
    def install(logit: float, fused: bool):
        model = _constant("mobilenet_v2", logit, input_size=64)
        model.card.update(name="apate-faceswap", verdict_use={"fused": fused, "reason": "test gate"})
        monkeypatch.setitem(face_evidence._LOADED, face_evidence.FACE_SWAP_MODEL, model)
        monkeypatch.setattr(face_evidence, "face_swap_model", lambda name=face_evidence.FACE_SWAP_MODEL: model)
        import apate_core.detect.pipeline as pipeline
        monkeypatch.setattr(pipeline, "face_swap_model", lambda: model)
        return model
    return install


def _analyse(settings, frame_logit=-5.0, **params):
    detector = _constant("resnet18", frame_logit, input_size=64)
    return analyse_path(FACE, settings, detector, DetectParams(cam=None, **params))


def test_a_swapped_face_decides_when_the_card_lets_it(settings, swap_model, one_thread):
    swap_model(logit=5.0, fused=True)
    result = _analyse(settings)
    evidence = result.data["face_evidence"]
    assert evidence["faces"] >= 1 and evidence["frames_with_faces"] == 1 and evidence["score"] > 0.99
    assert result.data["frames"][0]["face_swap"][0]["box"]["w"] > 40  # the face was found, boxed in frame pixels
    assert result.data["score"] < 0.01  # the whole frame reads real ...
    assert result.label == "fake" and result.data["verdict"]["decided_by"] == "faces"  # ... the face decides
    html = report_html(result)
    assert "Decided by face evidence" in html and "It joins the verdict" in html


def test_a_gated_model_is_shown_and_never_decides(settings, swap_model, one_thread):
    swap_model(logit=5.0, fused=False)
    result = _analyse(settings)
    assert result.data["face_evidence"]["score"] > 0.99
    assert result.label == "real" and result.data["verdict"]["decided_by"] == "model"
    assert "Shown, not used in the verdict: test gate" in face_evidence.describe(result.data["face_evidence"])
    # re-judged from the stored result, the rule holds too
    assert apply_verdict(dict(result.data))["label"] == "real"


def test_no_face_means_no_face_evidence(settings, swap_model, one_thread, tmp_path):
    from PIL import Image

    swap_model(logit=5.0, fused=True)
    path = tmp_path / "bricks.png"
    Image.fromarray(np.tile(np.arange(128, dtype=np.uint8)[None, :, None], (96, 1, 3))).save(path)
    detector = _constant("resnet18", -5.0, input_size=64)
    result = analyse_path(path, settings, detector, DetectParams(cam=None))
    assert result.data["face_evidence"]["faces"] == 0 and result.data["face_evidence"]["score"] is None
    assert result.label == "real"
    assert "no face found" in face_evidence.describe(result.data["face_evidence"])


def test_the_check_can_be_turned_off(settings, swap_model, one_thread):
    swap_model(logit=5.0, fused=True)
    result = _analyse(settings, face_evidence=False)
    assert "face_evidence" not in result.data and "face_swap" not in result.data["frames"][0]
    assert result.label == "real"


def test_face_mode_reuses_its_boxes(settings, swap_model, one_thread):
    swap_model(logit=5.0, fused=True)
    result = _analyse(settings, faces=True)
    record = result.data["frames"][0]
    assert [f["box"] for f in record["face_swap"]] == [f["box"] for f in record["faces"]]
