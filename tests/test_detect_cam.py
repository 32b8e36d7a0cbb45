"""Heatmaps: sign (evidence FOR fake), placement, shape at the frame's own size, hook release."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from apate_core.detect import Detector, DetectorConfig, compute_cam, compute_cam_list, create_detector
from apate_core.detect import list_cam_methods, overlay_heatmap
from apate_core.detect.cam import cam_session
from apate_core.errors import Cancelled, InputRefused
from apate_core.progress import CancelToken

GRADIENT_WEIGHTED = ("gradcam", "gradcam++", "hirescam", "xgradcam", "layercam")
SIZE = 64


class RegionMask(nn.Module):
    """Keeps features in one quadrant only: the CAM target layer of the toy model."""

    def __init__(self, size: int, quadrant: tuple[int, int]):
        super().__init__()
        mask = torch.zeros(1, 1, size, size)
        half = size // 2
        mask[..., quadrant[0] * half:(quadrant[0] + 1) * half, quadrant[1] * half:(quadrant[1] + 1) * half] = 1
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mask


class QuadrantBrightness(nn.Module):
    """Fake logit = sign x mean brightness of one quadrant (conv -> relu -> mask -> pool -> linear)."""

    def __init__(self, quadrant: tuple[int, int], sign: float = 1.0, size: int = SIZE):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.region = RegionMask(size, quadrant)
        self.head = nn.Linear(4, 1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.rand_like(self.conv.weight) / 27)  # positive: brightness detector
            self.conv.bias.zero_()
            self.head.weight.fill_(sign * 4.0)
            self.head.bias.fill_(-sign * 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.region(torch.relu(self.conv(x))).mean(dim=(2, 3)))


def _toy_detector(quadrant, sign=1.0, resize="resize", native_side=0) -> Detector:
    config = DetectorConfig(architecture="toy", input_size=SIZE, resize=resize, mean=(0, 0, 0), std=(1, 1, 1),
                            native_side=native_side)
    return Detector(module=QuadrantBrightness(quadrant, sign), config=config, target_layers_fn=lambda m: [m.region])


def _noise(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _mass_in(cam: np.ndarray, rows: slice, cols: slice) -> float:
    return float(cam[rows, cols].sum() / cam.sum())


@pytest.mark.parametrize("method", list_cam_methods())
@pytest.mark.parametrize("quadrant", [(0, 0), (1, 1)])
def test_cam_points_at_the_region_that_raises_the_fake_logit(method, quadrant):
    torch.manual_seed(0)
    detector = _toy_detector(quadrant)
    height, width = 90, 120  # not the input size: the map must come back at the frame's size
    cams = compute_cam(detector, [_noise((height, width, 3), 1), _noise((height, width, 3), 2)], method)
    assert cams.shape == (2, height, width) and cams.dtype == np.float32
    assert cams.min() >= 0.0 and cams.max() <= 1.0
    rows = slice(0, height // 2) if quadrant[0] == 0 else slice(height // 2, height)
    cols = slice(0, width // 2) if quadrant[1] == 0 else slice(width // 2, width)
    for cam in cams:
        assert cam.max() > 0.5, "empty map: the target's sign is wrong"
        assert _mass_in(cam, rows, cols) > 0.9


@pytest.mark.parametrize("method", GRADIENT_WEIGHTED)
def test_cam_is_empty_when_nothing_supports_fake(method):
    # Brightness LOWERS this model's fake logit: no pixel is evidence for "fake". A map that took
    # |gradient| or targeted "real" would light the quadrant up.
    torch.manual_seed(0)
    cams = compute_cam(_toy_detector((0, 0), sign=-1.0), [_noise((SIZE, SIZE, 3))], method)
    assert float(cams.max()) == 0.0


def test_centre_crop_maps_back_inside_the_crop():
    torch.manual_seed(0)
    detector = _toy_detector((0, 0), resize="center_crop")
    cam = compute_cam(detector, [_noise((SIZE, 2 * SIZE, 3))], "gradcam")[0]  # crop = columns 32..96
    assert cam.shape == (SIZE, 2 * SIZE)
    assert cam[:, :SIZE // 2].max() == 0.0 and cam[:, SIZE // 2 + SIZE:].max() == 0.0
    assert _mass_in(cam, slice(0, SIZE // 2), slice(SIZE // 2, SIZE)) > 0.9


def test_native_centre_crop_maps_back_onto_the_pixels_it_saw():
    torch.manual_seed(0)
    detector = _toy_detector((1, 1), resize="center_crop", native_side=2 * SIZE)
    frame = _noise((SIZE + 32, 3 * SIZE, 3))  # kept at its own scale: the crop is rows 16..80, columns 64..128
    cam = compute_cam(detector, [frame], "gradcam")[0]
    assert cam.shape == frame.shape[:2]
    outside = np.ones(cam.shape, bool)
    outside[16:16 + SIZE, SIZE:2 * SIZE] = False
    assert cam[outside].max() == 0.0
    assert _mass_in(cam, slice(16 + SIZE // 2, 16 + SIZE), slice(SIZE + SIZE // 2, 2 * SIZE)) > 0.9


@pytest.mark.parametrize("name", ["resnet18", "vit_tiny"])
def test_real_architectures_give_maps_at_each_frame_size(name):
    torch.manual_seed(0)
    detector = create_detector(name, input_size=SIZE)
    frames = [_noise((50, 70, 3), 3), _noise((80, 40, 3), 4), _noise((50, 70, 3), 5)]
    maps = compute_cam_list(detector, frames, "eigencam")
    assert [m.shape for m in maps] == [(50, 70), (80, 40), (50, 70)]
    for cam in maps:
        assert cam.dtype == np.float32 and np.isfinite(cam).all()
        assert cam.max() > 0.5  # an oriented principal component is never all-negative
    with pytest.raises(InputRefused):
        compute_cam(detector, frames, "eigencam")  # mixed sizes cannot stack into (N,H,W)
    grad_maps = compute_cam(detector, frames[::2], "gradcam")
    assert grad_maps.shape == (2, 50, 70) and 0.0 <= grad_maps.min() and grad_maps.max() <= 1.0


def test_hooks_are_released_even_on_cancel():
    detector = create_detector("resnet18", input_size=SIZE)
    layer = detector.target_layers[0]
    compute_cam(detector, [_noise((40, 40, 3))], "gradcam++")
    assert not layer._forward_hooks
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        compute_cam(detector, [_noise((40, 40, 3))], "gradcam", cancel=token)
    assert not layer._forward_hooks
    with pytest.raises(RuntimeError):
        with cam_session(detector, "hirescam"):
            assert layer._forward_hooks
            raise RuntimeError("boom")
    assert not layer._forward_hooks


def test_unknown_method_is_refused():
    with pytest.raises(InputRefused):
        compute_cam(create_detector("resnet18", input_size=SIZE), [_noise((40, 40, 3))], "magic")


def test_overlay_heatmap_blends_in_rgb():
    image = _noise((30, 40, 3))
    cam = np.zeros((15, 20), dtype=np.float32)  # half size: resized to the image
    cam[:, 10:] = 1.0
    assert np.array_equal(overlay_heatmap(image, cam, opacity=0.0), image)
    full = overlay_heatmap(image, cam, opacity=1.0, colormap="jet")
    assert full.shape == image.shape and full.dtype == np.uint8
    # jet: 0 is dark blue, 1 is dark red, in RGB order
    assert full[5, 2, 2] > 100 and full[5, 2, 0] < 50
    assert full[5, 37, 0] > 100 and full[5, 37, 2] < 50
    half = overlay_heatmap(image, cam, opacity=0.5)
    expected = np.round(0.5 * image.astype(np.float32) + 0.5 * full.astype(np.float32))
    assert np.abs(half.astype(np.int16) - expected.astype(np.int16)).max() <= 1
    with pytest.raises(ValueError):
        overlay_heatmap(image, cam, opacity=1.5)


def test_scores_use_the_card_temperature_in_both_paths():
    from apate_core.detect.cam import score_and_cam

    detector = _toy_detector((0, 0))
    images = [_noise((SIZE, SIZE, 3), seed=s) for s in range(3)]
    logits = detector.logits(images)
    raw = detector.predict_proba(images)
    assert np.allclose(raw, 1 / (1 + np.exp(-logits)), atol=1e-6)  # no temperature in the card: T = 1
    detector.card["temperature"] = 2.5
    calibrated = detector.predict_proba(images)
    assert np.allclose(calibrated, 1 / (1 + np.exp(-logits / 2.5)), atol=1e-6)
    assert not np.allclose(calibrated, raw, atol=1e-3)
    assert np.allclose(score_and_cam(detector, images)[0], calibrated, atol=1e-5)  # heatmap pass scores the same
    detector.card["temperature"] = "not a number"
    assert detector.temperature == 1.0
