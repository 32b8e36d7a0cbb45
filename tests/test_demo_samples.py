"""The shipped demo samples show what they claim with the shipped detector: real stays real, the re-synthesised
middle segment and face read as fake (the dashboard's 0.4 / 0.6 band; the clip as "generated segments"), and the
heatmap sits on the face."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from apate_core.detect import create_detector, score_faces
from apate_core.detect.pipeline import DetectParams, analyse_path
from apate_core.media.video import iter_frames

SAMPLES = Path(__file__).resolve().parent.parent / "assets" / "samples"
REAL_MAX, FAKE_MIN = 0.4, 0.6  # DetectParams().band: real at <= 0.4, fake at >= 0.6
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def detector():
    return create_detector("apate")


def test_middle_segment_of_the_demo_clip_reads_fake_and_the_rest_real(detector):
    frames = list(iter_frames(SAMPLES / "coffee_pan_resynth_middle.mp4", 1.0))
    scores = detector.predict_proba([f.image for f in frames])
    inside = np.array([2.0 <= f.time < 4.0 for f in frames])
    assert inside.sum() == 2 and len(frames) == 6
    assert scores[inside].min() >= FAKE_MIN, scores
    assert scores[~inside].max() <= REAL_MAX, scores
    real = detector.predict_proba([f.image for f in iter_frames(SAMPLES / "coffee_pan.mp4", 1.0)])
    assert real.max() <= REAL_MAX, real


def test_the_dashboard_shades_and_names_exactly_the_re_synthesised_seconds(detector, settings):
    result = analyse_path(SAMPLES / "coffee_pan_resynth_middle.mp4", settings, detector, DetectParams(cam=None))
    segments = result.data["suspicious_segments"]
    assert [(s["start"], s["end"], s["frames"]) for s in segments] == [(1.5, 3.5, 2)]
    assert [f["time"] for f in result.frames if f["score"] >= FAKE_MIN] == [2.0, 3.0]
    # two fake seconds in a row of a real clip: "generated segments", whatever the clip's mean
    assert result.label == "segments" and result.data["verdict"]["segments"] == segments


def test_only_the_face_of_the_demo_photo_is_flagged(detector):
    original = np.asarray(Image.open(SAMPLES / "astronaut.jpg").convert("RGB"))
    edited = np.asarray(Image.open(SAMPLES / "astronaut_face_resynth.png").convert("RGB"))
    before, after = score_faces(detector, original), score_faces(detector, edited)
    assert len(before) == len(after) == 1
    assert before[0].score <= REAL_MAX and after[0].score >= FAKE_MIN, (before, after)
    assert detector.predict_proba([original])[0] <= REAL_MAX  # the untouched portrait reads real


def test_heatmap_of_the_demo_photo_sits_on_the_face(detector):
    from apate_core.detect import compute_cam, detect_faces

    edited = np.asarray(Image.open(SAMPLES / "astronaut_face_resynth.png").convert("RGB"))
    cam = compute_cam(detector, [edited], "gradcam")[0]
    face = detect_faces(edited)[0]
    on_face = cam[face.y : face.y + face.h, face.x : face.x + face.w]
    assert cam.shape == edited.shape[:2] and on_face.mean() > 3 * cam.mean()
    # the re-synthesised region (the face box with the script's 25 % margin) holds at least 3x its share of the mass
    margin = int(0.25 * max(face.w, face.h))
    region = cam[max(face.y - margin, 0) : face.y + face.h + margin, max(face.x - margin, 0) : face.x + face.w + margin]
    assert region.sum() / cam.sum() > 3 * region.size / cam.size
