"""MTCNN (apate_core/detect/mtcnn.py) on real faces: boxes, landmarks, the downscaled fast path, face mode."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data

from apate_core.detect import mtcnn
from apate_core.detect.faces import FaceBox, detect_faces

pytestmark = pytest.mark.skipif(not mtcnn.weights_installed(),
                                reason="MTCNN weights not installed (python -m apate_core.detect.backbones)")


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture(scope="module")
def detector() -> mtcnn.MTCNN:
    return mtcnn.default_mtcnn()


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    """A 1280x720 video-sized frame: the astronaut's portrait pasted on the coffee photo."""
    out = cv2.resize(skimage.data.coffee(), (1280, 720), interpolation=cv2.INTER_AREA)
    out[100:612, 600:1112] = skimage.data.astronaut()
    return out


def test_networks_load_the_installed_weights_strictly():
    pnet, rnet, onet = mtcnn.load_networks()
    assert sum(p.numel() for p in pnet.parameters()) == 6632
    assert rnet.dense4.in_features == 576 and onet.dense6_3.out_features == 10


def test_one_face_on_astronaut_with_landmarks_in_place(detector):
    faces = detector.detect(skimage.data.astronaut())
    assert len(faces) == 1 and faces.probs[0] > 0.99
    x0, y0, x1, y1 = faces.boxes[0]
    assert 60 <= x1 - x0 <= 160 and 60 <= y1 - y0 <= 160
    points = faces.landmarks[0]
    assert np.all((points[:, 0] > x0) & (points[:, 0] < x1) & (points[:, 1] > y0) & (points[:, 1] < y1))
    left_eye, right_eye, nose, mouth_left, mouth_right = points
    assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])
    # checked by eye on the image: eyes near (204, 101) and (247, 103), nose tip near (225, 129)
    assert np.allclose(points[:3], [[204, 101], [247, 103], [225, 129]], atol=6)


def test_no_face_on_coffee_or_a_flat_image(detector):
    assert len(detector.detect(skimage.data.coffee())) == 0
    assert len(detector.detect(np.full((240, 320, 3), 128, np.uint8))) == 0
    assert len(detector.detect(np.zeros((8, 8, 3), np.uint8))) == 0  # smaller than one P-Net window


def test_fast_path_on_a_downscaled_frame_finds_the_same_face(detector, frame):
    full = detector.detect(frame, max_side=None)
    fast = detector.detect(frame, max_side=640)
    assert len(full) == 1 and len(fast) == 1
    assert _iou(full.boxes[0], fast.boxes[0]) > 0.8
    side = full.boxes[0, 2] - full.boxes[0, 0]
    assert np.abs(full.landmarks[0] - fast.landmarks[0]).max() < 0.08 * side
    assert fast.boxes[0, 0] > 600 and fast.boxes[0, 2] < 1112  # mapped back into frame pixels


def test_face_mode_uses_mtcnn_and_keeps_landmarks(frame):
    faces = detect_faces(frame)
    assert len(faces) == 1 and faces[0].landmarks is not None and len(faces[0].landmarks) == 5
    again = FaceBox(**faces[0].to_dict())  # what the pipeline stores and rebuilds
    assert (again.x, again.y, again.w, again.h) == (faces[0].x, faces[0].y, faces[0].w, faces[0].h)
    assert np.allclose(again.landmarks, faces[0].landmarks, atol=0.01)
    assert detect_faces(skimage.data.coffee()) == []


def _detect_data() -> Path:
    root = Path(os.environ.get("APATE_DETECT_DATA", "")).expanduser()
    if not os.environ.get("APATE_DETECT_DATA") or not (root / "MANIFEST.tsv").is_file():
        pytest.skip("APATE_DETECT_DATA (shared detect-data) is not set")
    return root


@pytest.mark.parametrize("stem", ["muxspace_facial-expressions_camera_001",
                                  "muxspace_facial-expressions_camera_040",
                                  "kushagragupta-23_Dual-Cue-AI-Generated-Image-Detection-vi_camera_001",
                                  "kushagragupta-23_Dual-Cue-AI-Generated-Image-Detection-vi_camera_090"])
def test_real_face_photos_of_detect_data(detector, stem):
    from apate_core.detect.training.embeddings import load_rgb

    path = _detect_data() / "real" / f"{stem}.jpg"
    if not path.is_file():
        pytest.skip(f"{path.name} is not in this detect-data copy")
    image = load_rgb(path)
    faces = detector.detect(image)
    assert len(faces) >= 1 and faces.probs[0] > 0.9
    x0, y0, x1, y1 = faces.boxes[0]
    assert (x1 - x0) > 0.2 * min(image.shape[:2])  # these are face photos: the face is large
