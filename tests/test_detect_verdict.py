"""The verdict: sustained runs make "generated segments", spikes do not, valid C2PA declarations of generated media
win over the model, face evidence can decide, and the label reaches result.json, the report and the batch summary."""

import numpy as np
import pytest

from apate_core.detect.pipeline import DetectResult, summarise_batch
from apate_core.detect.report import report_html
from apate_core.detect.verdict import (LABELS, MIN_RUN_FRAMES, apply_verdict, decide_verdict, declared_generated,
                                       display_label, fuse_face_evidence, suspicious_segments)
from apate_core.provenance import C2paReport, describe_source_type

BAND = (0.4, 0.6)
IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"


def frames_of(scores, fps=1.0):
    return [{"index": k, "time": k / fps, "score": s} for k, s in enumerate(scores)]


def video_verdict(scores, fps=1.0, provenance=None, face_score=None):
    scored = [s for s in scores if s is not None]
    return decide_verdict(float(np.mean(scored)), frames_of(scores, fps), provenance, BAND, face_score,
                          kind="video", step=1.0 / fps)


def provenance_for(source_type, state="Valid"):
    """data["provenance"] as the pipeline builds it from a C2paReport (provenance.py)."""
    uri = IPTC + source_type
    report = C2paReport(present=True, validation_state=state, signer="Example AI", digital_source_type=uri,
                        digital_source_label=describe_source_type(uri),
                        actions=[{"action": "c2pa.created", "digital_source_type": uri, "software_agent": "gen",
                                  "when": None}])
    c2pa = report.to_dict()
    c2pa.pop("manifest_json")
    return {"c2pa": c2pa, "summary": ["..."], "declares_generative_ai": report.declares_generative_ai}


# -- the timeline ---------------------------------------------------------------------------------------------


def test_a_sustained_run_makes_generated_segments_with_the_segments_listed():
    verdict = video_verdict([0.1, 0.2, 0.8, 0.9, 0.7, 0.1, 0.2, 0.1, 0.15, 0.1])
    assert verdict["label"] == "segments" and verdict["decided_by"] == "segments"
    assert verdict["display"] == "generated segments"
    assert verdict["segments"] == [{"start": 1.5, "end": 4.5, "peak": 0.9, "frames": 3}]
    assert "1.5 s" in verdict["reason"] and "0.900" in verdict["reason"]


def test_the_run_must_also_cover_a_second_at_high_sampling_rates():
    spike = [0.1] * 10 + [0.9] * MIN_RUN_FRAMES + [0.1] * 10  # two frames at 10 fps: 0.2 s
    assert video_verdict(spike, fps=10)["label"] == "real"
    sustained = [0.1] * 10 + [0.9] * 10 + [0.1] * 10  # a whole second
    verdict = video_verdict(sustained, fps=10)
    assert verdict["label"] == "segments" and verdict["segments"][0]["frames"] == 10


def test_an_isolated_spike_is_not_segments():
    verdict = video_verdict([0.1, 0.2, 0.95, 0.1, 0.2, 0.1, 0.7, 0.1])
    assert verdict["label"] == "real" and verdict["decided_by"] == "model" and verdict["segments"] == []
    assert len(suspicious_segments(frames_of([0.1, 0.2, 0.95, 0.1, 0.2, 0.1, 0.7, 0.1]), 0.6, 1.0)) == 2


def test_a_frame_without_a_score_breaks_a_run():
    assert video_verdict([0.1, 0.9, None, 0.9, 0.1])["label"] != "segments"


def test_a_clip_that_is_nearly_all_fake_is_fake():
    verdict = video_verdict([0.9, 0.8, 0.95, 0.7, 0.85, 0.9])
    assert verdict["label"] == "fake" and verdict["decided_by"] == "model"
    # 9 of 10 frames fake but a mean under the band's top: the timeline makes it fake, not segments
    verdict = video_verdict([0.61] * 9 + [0.0])
    assert verdict["label"] == "fake" and verdict["decided_by"] == "segments" and "9 of 10" in verdict["reason"]


def test_still_images_keep_real_fake_uncertain():
    for score, label in [(0.9, "fake"), (0.1, "real"), (0.5, "uncertain")]:
        verdict = decide_verdict(score, frames_of([score]), None, BAND, kind="image", step=0.0)
        assert verdict["label"] == label and verdict["decided_by"] == "model"


# -- provenance -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("source_type", ["trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia",
                                         "algorithmicMedia"])
@pytest.mark.parametrize("score", [0.02, 0.5, 0.99])
def test_valid_c2pa_declaring_generated_media_wins_whatever_the_score(source_type, score):
    provenance = provenance_for(source_type)
    verdict = decide_verdict(score, frames_of([score]), provenance, BAND, kind="image", step=0.0)
    assert verdict["label"] == "declared" and verdict["decided_by"] == "provenance"
    assert verdict["display"] == "declared generated" and "Example AI" in verdict["reason"]
    assert video_verdict([score] * 5, provenance=provenance)["label"] == "declared"


def test_invalid_or_non_generative_manifests_declare_nothing():
    assert declared_generated(provenance_for("trainedAlgorithmicMedia", state="Invalid")) is None
    assert declared_generated(provenance_for("digitalCapture")) is None
    assert declared_generated({"c2pa": None, "summary": []}) is None and declared_generated(None) is None
    verdict = decide_verdict(0.1, frames_of([0.1]), provenance_for("digitalCapture"), BAND, kind="image")
    assert verdict["label"] == "real" and verdict["decided_by"] == "model"


# -- faces ----------------------------------------------------------------------------------------------------


def test_face_evidence_decides_when_it_says_more_than_the_frames():
    assert fuse_face_evidence(0.2, 0.9) == 0.9 and fuse_face_evidence(0.2, None) == 0.2
    assert fuse_face_evidence(None, None) is None
    verdict = decide_verdict(0.2, frames_of([0.2]), None, BAND, face_score=0.9, kind="image")
    assert verdict["label"] == "fake" and verdict["decided_by"] == "faces" and "0.900" in verdict["reason"]
    # a segments clip with a fake face reads fake, decided by the faces
    assert video_verdict([0.1, 0.8, 0.9, 0.1, 0.1], face_score=0.95)["decided_by"] == "faces"


def test_weaker_face_evidence_changes_nothing():
    verdict = decide_verdict(0.8, frames_of([0.8]), None, BAND, face_score=0.1, kind="image")
    assert verdict["label"] == "fake" and verdict["decided_by"] == "model"
    assert video_verdict([0.1, 0.8, 0.9, 0.1], face_score=0.5)["label"] == "segments"


# -- where the verdict shows ----------------------------------------------------------------------------------


def _data(scores, kind="video", provenance=None):
    frames = frames_of(scores)
    return {"kind": kind, "score": float(np.mean(scores)), "frames": frames, "band": {"low": 0.4, "high": 0.6},
            "params": {"fps": 1.0}, "provenance": provenance, "input": {"name": f"{kind}.x"}}


def test_apply_verdict_fills_result_json_and_the_batch_counts_every_label():
    data = apply_verdict(_data([0.1, 0.8, 0.9, 0.1, 0.2]))
    assert data["label"] == "segments" and data["verdict"]["decided_by"] == "segments"
    assert data["suspicious_segments"] == data["verdict"]["segments"]
    declared = apply_verdict(_data([0.1], "image", provenance_for("trainedAlgorithmicMedia")))
    results = [DetectResult(data), DetectResult(declared)]
    summary = summarise_batch(results)
    assert set(summary["labels"]) == set(LABELS)
    assert summary["labels"]["segments"] == 1 and summary["labels"]["declared"] == 1
    assert summary["label"] == "declared"  # the most severe
    assert display_label("segments") == "generated segments"


@pytest.mark.testdata
def test_c2pa_sample_declaring_algorithmic_media_reads_declared(testdata, settings):
    """C.jpg's valid manifest marks algorithmic media: declared generated with an untrained model's any score."""
    import torch

    from apate_core.detect import create_detector
    from apate_core.detect.pipeline import DetectParams, analyse_path

    torch.manual_seed(0)
    detector = create_detector("resnet18", input_size=64)
    result = analyse_path(testdata / "c2pa" / "C.jpg", settings, detector, DetectParams(cam=None))
    assert result.label == "declared" and result.data["verdict"]["decided_by"] == "provenance"
    assert "declared generated" in report_html(result).lower()
    plain = analyse_path(testdata / "c2pa" / "A.jpg", settings, detector, DetectParams(cam=None))
    assert plain.label in ("real", "fake", "uncertain") and plain.data["verdict"]["decided_by"] == "model"

