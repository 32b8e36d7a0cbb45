"""Self-blended images (training/self_blend.py): changes stay inside the mask, per-seed determinism, sizes."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data

from apate_core.detect.training.self_blend import RATIOS, face_mask, self_blend

# A face's five points (left eye, right eye, nose, mouth left, mouth right) in a 240x200 image.
LANDMARKS = np.array([[80.0, 100.0], [120.0, 100.0], [100.0, 122.0], [84.0, 142.0], [116.0, 142.0]])


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (240, 200, 3), dtype=np.uint8)


def test_changes_only_inside_the_mask_and_keeps_size(image):
    for seed in range(6):
        fake = self_blend(image, LANDMARKS, seed)
        assert fake.image.shape == image.shape and fake.image.dtype == np.uint8
        assert fake.mask.shape == image.shape[:2] and fake.mask.dtype == np.float32
        assert 0.0 <= fake.mask.min() and fake.mask.max() == pytest.approx(1.0)
        changed = np.any(fake.image != image, axis=2)
        assert changed.any()
        assert not (changed & (fake.mask == 0)).any()
        assert fake.ratio in RATIOS
        inside = fake.mask[LANDMARKS[:, 1].astype(int), LANDMARKS[:, 0].astype(int)]
        assert (inside > 0.5).all()  # the mask covers the face's points
        assert fake.mask[:10].max() == 0 and fake.mask[-10:].max() == 0  # and not the whole image


def test_deterministic_per_seed(image):
    a, b, c = self_blend(image, LANDMARKS, 7), self_blend(image, LANDMARKS, 7), self_blend(image, LANDMARKS, 8)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask) and a.steps == b.steps
    assert not np.array_equal(a.image, c.image)
    rng1, rng2 = np.random.default_rng(3), np.random.default_rng(3)
    assert np.array_equal(face_mask(image.shape, LANDMARKS, rng1), face_mask(image.shape, LANDMARKS, rng2))


def test_a_grey_photo_stays_grey():
    grey = np.repeat(skimage.data.camera()[:240, 150:350, None], 3, axis=2)
    fake = self_blend(grey, LANDMARKS, 1)
    assert np.array_equal(fake.image[..., 0], fake.image[..., 1])
    assert np.array_equal(fake.image[..., 1], fake.image[..., 2])


def test_refuses_what_is_not_rgb_uint8(image):
    with pytest.raises(ValueError):
        self_blend(image.astype(np.float32), LANDMARKS, 0)


def test_on_astronaut_with_mtcnn_landmarks():
    from apate_core.detect import mtcnn

    if not mtcnn.weights_installed():
        pytest.skip("MTCNN weights not installed (python -m apate_core.detect.backbones)")
    astronaut = skimage.data.astronaut()
    faces = mtcnn.default_mtcnn().detect(astronaut)
    fake = self_blend(astronaut, faces.landmarks[0], 0)
    ys, xs = np.nonzero(fake.mask > 0)
    x0, y0, x1, y1 = faces.boxes[0]
    side = x1 - x0
    assert x0 - 0.5 * side < xs.min() and xs.max() < x1 + 0.5 * side  # the blend stays around the face
    assert y0 - 0.6 * side < ys.min() and ys.max() < y1 + 0.6 * side
    assert np.abs(fake.image.astype(int) - astronaut).mean() > 0.2
