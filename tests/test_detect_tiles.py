"""Large frames are scored in tiles: memory depends on the tile side, not on the frame; scores and heatmaps hold."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from apate_core.detect import Detector, DetectorConfig, create_detector
from apate_core.detect.cam import score_and_cam
from apate_core.detect.models import DEFAULT_TILE, tile_boxes
from apate_core.detect.pipeline import DetectParams, analyse_path, frame_view
from apate_core.store import ResultStore

pytestmark = pytest.mark.usefixtures("one_thread")
TILE = 128


class Brightness(nn.Module):
    """Fully convolutional: logit = mean of a positive conv of the image (brighter = more 'fake')."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.act = nn.ReLU()
        self.head = nn.Linear(4, 1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.rand_like(self.conv.weight) / 27)
            self.conv.bias.zero_()
            self.head.weight.fill_(4.0)
            self.head.bias.fill_(-1.0)

    def forward(self, x):
        return self.head(self.act(self.conv(x)).mean(dim=(2, 3)))


def _toy(tile: int = TILE) -> Detector:
    config = DetectorConfig(architecture="toy", resize="none", mean=(0, 0, 0), std=(1, 1, 1), tile=tile)
    return Detector(module=Brightness(), config=config, target_layers_fn=lambda m: [m.act])


def _direct_logit(detector: Detector, image: np.ndarray) -> float:
    with torch.inference_mode():
        return float(detector.module(detector.preprocess([image]))[0, 0])


def _noise(shape, low=0, high=256, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(low, high, shape, dtype=np.uint8)


@pytest.mark.parametrize("height,width,side", [(2160, 3840, 1024), (1080, 1920, 1024), (720, 1280, 1024),
                                               (1001, 1025, 1024), (300, 130, 128), (64, 64, 128)])
def test_tiles_are_equal_bounded_and_cover_the_frame(height, width, side):
    boxes = tile_boxes(height, width, side)
    covered = np.zeros((height, width), bool)
    for top, left, h, w in boxes:
        assert (h, w) == boxes[0][2:]  # one size: tiles batch together and weigh equally
        assert h <= side and w <= side
        covered[top:top + h, left:left + w] = True
    assert covered.all()
    if height <= side and width <= side:
        assert boxes == [(0, 0, height, width)]
    assert tile_boxes(height, width, 0) == [(0, 0, height, width)]


def test_a_frame_larger_than_the_tile_scores_as_the_mean_of_its_tile_logits():
    torch.manual_seed(0)
    detector = _toy()
    frame = _noise((300, 330, 3))
    boxes = detector.tiles(frame)
    assert len(boxes) == 9 and all(h <= TILE and w <= TILE for _, _, h, w in boxes)
    per_tile = [_direct_logit(detector, frame[t:t + h, l:l + w]) for t, l, h, w in boxes]
    expected = 1.0 / (1.0 + np.exp(-np.mean(per_tile)))
    assert detector.predict_proba([frame])[0] == pytest.approx(expected, abs=1e-6)
    probs, maps = score_and_cam(detector, [frame])
    assert probs[0] == pytest.approx(expected, abs=1e-6)
    assert maps[0].shape == frame.shape[:2] and maps[0].dtype == np.float32
    assert 0.0 <= maps[0].min() and maps[0].max() <= 1.0
    whole = _toy(tile=0)
    whole.module.load_state_dict(detector.module.state_dict())
    assert whole.predict_proba([frame])[0] == pytest.approx(1 / (1 + np.exp(-_direct_logit(whole, frame))), abs=1e-6)


def test_a_frame_that_fits_in_one_tile_scores_exactly_as_one_forward_pass():
    detector = create_detector("apate")
    assert detector.config.tile == DEFAULT_TILE
    frame = _noise((200, 256, 3), seed=3)
    assert detector.tiles(frame) == [(0, 0, 200, 256)]
    with torch.inference_mode():
        logit = detector.module(detector.preprocess([frame]))[0, 0].double()
        direct = torch.sigmoid((logit / detector.temperature).float()).item()  # the card's calibration
    assert float(detector.predict_proba([frame])[0]) == pytest.approx(direct, rel=0, abs=0)
    assert float(score_and_cam(detector, [frame])[0][0]) == pytest.approx(direct, abs=1e-6)


def test_tiled_heatmap_is_stitched_at_frame_size_on_one_scale():
    torch.manual_seed(0)
    detector = _toy()
    frame = np.concatenate([_noise((TILE, TILE, 3), 150, 256, 1), _noise((TILE, TILE, 3), 0, 60, 2)], axis=1)
    assert len(detector.tiles(frame)) == 2
    _, maps = score_and_cam(detector, [frame])
    cam = maps[0]
    assert cam.shape == frame.shape[:2]
    # One scale for the frame: the dark tile is not stretched to 1 on its own.
    assert cam[:, :TILE].mean() > 2 * cam[:, TILE:].mean()
    assert cam[:, TILE:].max() < 0.7


def test_the_pipeline_never_feeds_the_network_more_than_a_tile(tmp_path, settings):
    torch.manual_seed(0)
    detector = _toy()
    path = tmp_path / "big.png"
    image = _noise((390, 520, 3), seed=5)
    Image.fromarray(image).save(path)
    seen = []
    handle = detector.module.register_forward_pre_hook(lambda m, inputs: seen.append(tuple(inputs[0].shape)))
    try:
        with ResultStore(tmp_path / "store", 1 << 28) as store:
            result = analyse_path(path, settings, detector, DetectParams(cam="gradcam", heatmaps="all"), store=store)
            frame, heat = frame_view(result, 0, detector, store=store)
    finally:
        handle.remove()
    assert seen and all(shape[2] <= TILE and shape[3] <= TILE for shape in seen)
    assert result.score == pytest.approx(float(detector.predict_proba([image])[0]), abs=1e-6)
    assert heat is not None and heat.shape[0] / heat.shape[1] == pytest.approx(390 / 520, abs=0.01)


def test_tile_is_recorded_in_the_config_and_validated():
    config = DetectorConfig(architecture="toy", resize="none")
    assert config.to_dict()["tile"] == DEFAULT_TILE
    assert DetectorConfig.from_dict({k: v for k, v in config.to_dict().items() if k != "tile"}).tile == DEFAULT_TILE
    assert create_detector("apate", tile=0).config.tile == 0
    for bad in (1, 32, -5, 1.5, True):
        with pytest.raises(ValueError):
            DetectorConfig(architecture="toy", tile=bad)


def test_top_k_heatmaps_of_large_frames_are_made_during_the_scan(tmp_path, settings, monkeypatch):
    """Where top_k full-resolution frames would pass CHUNK_PIXELS, no frame is held for the end: the same
    heatmaps come out, made while scanning."""
    from apate_core.detect import pipeline
    from tests.media_factory import make_video

    torch.manual_seed(0)
    detector = _toy()
    clip = make_video(tmp_path / "clip.mp4", "mp4", seconds=5, fps=4, size=(160, 120))
    params = DetectParams(cam="gradcam", heatmaps="top_k", top_k=2)
    held = analyse_path(clip, settings, detector, params)
    monkeypatch.setattr(pipeline, "CHUNK_PIXELS", 160 * 120)  # 2 frames of 160x120 pass it
    scanned = analyse_path(clip, settings, detector, params)
    assert scanned.top_frames() == held.top_frames() and len(scanned.top_frames()) == 2
    assert scanned.heatmap_indices() == held.heatmap_indices() == sorted(held.top_frames())
    for index in held.heatmap_indices():
        assert np.abs(scanned.heatmap(index) - held.heatmap(index)).max() <= 1 / 255 + 1e-6
    assert [f["score"] for f in scanned.frames] == pytest.approx([f["score"] for f in held.frames], abs=1e-6)
