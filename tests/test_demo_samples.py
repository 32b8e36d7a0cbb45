"""The shipped demo samples show what they claim with the shipped detector: a spike where a generator worked."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from apate_core.detect import create_detector, score_faces
from apate_core.media.video import iter_frames

SAMPLES = Path(__file__).resolve().parent.parent / "assets" / "samples"
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def detector():
    return create_detector("apate")


def test_middle_segment_of_the_demo_clip_spikes(detector):
    frames = list(iter_frames(SAMPLES / "coffee_pan_resynth_middle.mp4", 1.0))
    scores = detector.predict_proba([f.image for f in frames])
    inside = np.array([2.0 <= f.time < 4.0 for f in frames])
    assert inside.sum() == 2 and len(frames) == 6
    assert scores[inside].min() > 10 * scores[~inside].max()
    real = detector.predict_proba([f.image for f in iter_frames(SAMPLES / "coffee_pan.mp4", 1.0)])
    assert real.max() < 0.05


def test_only_the_face_of_the_demo_photo_is_flagged(detector):
    original = np.asarray(Image.open(SAMPLES / "astronaut.jpg").convert("RGB"))
    edited = np.asarray(Image.open(SAMPLES / "astronaut_face_resynth.png").convert("RGB"))
    before, after = score_faces(detector, original), score_faces(detector, edited)
    assert len(before) == len(after) == 1
    assert after[0].score > 10 * before[0].score


def test_heatmap_of_the_demo_photo_sits_on_the_face(detector):
    from apate_core.detect import compute_cam, detect_faces

    edited = np.asarray(Image.open(SAMPLES / "astronaut_face_resynth.png").convert("RGB"))
    cam = compute_cam(detector, [edited], "gradcam")[0]
    face = detect_faces(edited)[0]
    on_face = cam[face.y : face.y + face.h, face.x : face.x + face.w].mean()
    assert cam.shape == edited.shape[:2] and on_face > 3 * cam.mean()
