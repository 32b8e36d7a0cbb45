"""Face finding with bundled cascades, cropping with a margin, and per-face scoring."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data
import torch

from apate_core.detect import FaceBox, create_detector, crop_with_margin, detect_faces, face_backend, score_faces
from apate_core.errors import InputRefused

# Ground truth, checked by eye: the astronaut's nose is at x=223, y=113 in skimage.data.astronaut().
NOSE = (223, 113)


def _contains(box: FaceBox, point: tuple[float, float]) -> bool:
    x, y = point
    return box.x <= x < box.x + box.w and box.y <= y < box.y + box.h


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skimage.data.astronaut()


def test_mtcnn_is_the_default_when_installed_else_the_opencv_cascade(monkeypatch):
    from apate_core.detect import faces as faces_module
    from apate_core.detect.mtcnn import weights_installed

    assert face_backend() == ("mtcnn" if weights_installed() else "haar")
    monkeypatch.setattr(faces_module, "_mtcnn_installed", lambda: False)
    assert face_backend() == "haar"
    with pytest.raises(InputRefused, match="MTCNN"):
        face_backend("mtcnn")


@pytest.mark.parametrize("backend", ["auto", "haar"])
def test_finds_the_one_face_in_astronaut(astronaut, backend):
    faces = detect_faces(astronaut, backend=backend)
    assert len(faces) == 1
    face = faces[0]
    assert _contains(face, NOSE)
    assert 60 <= face.w <= 160 and 60 <= face.h <= 160
    assert 0.0 < face.confidence < 1.0


def test_no_face_in_coffee_or_a_flat_image():
    assert detect_faces(skimage.data.coffee()) == []
    assert detect_faces(np.full((200, 300, 3), 127, dtype=np.uint8)) == []
    assert detect_faces(np.zeros((10, 10, 3), dtype=np.uint8)) == []  # smaller than any face


def test_large_images_are_searched_downscaled_and_boxes_mapped_back(astronaut):
    big = cv2.resize(astronaut, (1024, 1024), interpolation=cv2.INTER_CUBIC)
    faces = detect_faces(big, max_side=512)
    assert len(faces) == 1
    assert _contains(faces[0], (2 * NOSE[0], 2 * NOSE[1]))
    assert 120 <= faces[0].w <= 320


def test_scikit_image_lbp_fallback(astronaut):
    faces = detect_faces(astronaut, backend="lbp")
    assert any(_contains(face, NOSE) for face in faces)
    assert detect_faces(skimage.data.coffee(), backend="lbp") == []


def test_crop_with_margin_grows_and_clips():
    image = np.arange(100 * 120 * 3, dtype=np.uint32).reshape(100, 120, 3).astype(np.uint8)
    crop = crop_with_margin(image, FaceBox(40, 30, 20, 10, 1.0), margin=0.5)
    assert crop.shape == (20, 40, 3)
    assert np.array_equal(crop, image[25:45, 30:70])
    corner = crop_with_margin(image, FaceBox(0, 0, 20, 20, 1.0), margin=0.3)
    assert corner.shape == (26, 26, 3)
    assert np.array_equal(crop_with_margin(image, FaceBox(5, 5, 10, 10, 1.0), margin=0.0), image[5:15, 5:15])
    with pytest.raises(ValueError):
        crop_with_margin(image, FaceBox(200, 200, 10, 10, 1.0))


def test_score_faces_scores_the_crop(astronaut):
    torch.manual_seed(0)
    detector = create_detector("resnet18", input_size=64)
    scores = score_faces(detector, astronaut, margin=0.3)
    assert len(scores) == 1
    expected = detector.predict_proba([crop_with_margin(astronaut, scores[0].box, 0.3)])[0]
    assert scores[0].score == pytest.approx(float(expected), abs=1e-6)
    assert 0.0 < scores[0].score < 1.0
    assert score_faces(detector, skimage.data.coffee()) == []


def test_score_faces_upscales_tiny_crops_for_full_image_detectors():
    torch.manual_seed(0)
    detector = create_detector("resnet18", resize="none")
    image = np.random.default_rng(0).integers(0, 256, (60, 60, 3), dtype=np.uint8)
    scores = score_faces(detector, image, faces=[FaceBox(10, 10, 12, 12, 1.0)], margin=0.2)
    assert len(scores) == 1 and 0.0 < scores[0].score < 1.0


def test_auto_falls_back_to_lbp_without_opencv_cascades(monkeypatch):
    from apate_core.detect import faces as faces_module

    monkeypatch.setattr(faces_module, "_haar_path", lambda: None)
    monkeypatch.setattr(faces_module, "_mtcnn_installed", lambda: False)
    assert face_backend("auto") == "lbp"
    with pytest.raises(InputRefused):
        face_backend("haar")
