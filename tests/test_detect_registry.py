"""Detector registry, config and the Detector wrapper (CPU, random weights, small inputs)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from apate_core.detect import Detector, DetectorConfig, create_detector, list_detectors, register_detector
from apate_core.detect import registry as registry_module
from apate_core.errors import InputRefused

REQUIRED = {"resnet18", "resnet50", "efficientnet_b0", "vit_tiny", "cnn_gru"}
SIZE = 64  # every architecture accepts 64x64 (ViT: 4x4 patches), keeping CPU time low


def _images(n: int, shape=(48, 80, 3), seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(n)]


def _randomise_head(detector: Detector) -> None:
    # torchvision zero-initialises the ViT head: give every head real weights so different
    # images must give different probabilities.
    head = [m for m in detector.module.modules() if isinstance(m, nn.Linear) and m.out_features == 1][-1]
    with torch.no_grad():
        head.weight.normal_(0.0, 5.0 / head.in_features ** 0.5)
        head.bias.fill_(0.1)


def _calibrate_batchnorm(detector: Detector, images: list[np.ndarray]) -> None:
    # Untrained EfficientNet's depthwise init shrinks activations to ~1e-13 in eval mode;
    # batch statistics from a few images give BatchNorm realistic running stats.
    norms = [m for m in detector.module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    detector.module.train()
    with torch.no_grad():
        detector.module(detector.preprocess(images))
    detector.module.eval()


def _manual_proba(detector: Detector, images: list[np.ndarray]) -> np.ndarray:
    with torch.no_grad():
        return torch.sigmoid(detector.module(detector.preprocess(images))[:, 0]).numpy()


def test_lists_every_required_family():
    assert REQUIRED <= set(list_detectors())


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_each_detector_scores_images(name):
    torch.manual_seed(0)
    detector = create_detector(name, input_size=SIZE)
    images = _images(3)
    _randomise_head(detector)
    _calibrate_batchnorm(detector, images)
    probs = detector.predict_proba(images, batch_size=2)  # two batches: checks order is kept
    assert probs.shape == (3,) and probs.dtype == np.float32
    assert np.all((probs > 0) & (probs < 1))
    manual = np.concatenate([_manual_proba(detector, images[:2]), _manual_proba(detector, images[2:])])
    np.testing.assert_allclose(probs, manual, atol=1e-5)
    assert len(set(np.round(probs, 6))) > 1, "random images should not all score the same"


def test_model_card_and_config_are_json_round_trippable():
    detector = create_detector("vit_tiny", input_size=SIZE, num_layers=2)
    card = json.loads(json.dumps(detector.model_card))
    assert card["architecture"] == "vit_tiny" and card["config"]["options"]["num_layers"] == 2
    assert DetectorConfig.from_dict(card["config"]) == detector.config
    assert len(card["weights_sha256"]) == 64
    assert len(detector.module.encoder.layers) == 2


def test_temporal_model_clip_and_frame_scores():
    torch.manual_seed(1)
    detector = create_detector("cnn_gru", input_size=SIZE)
    frames = _images(5)
    clip, frame_probs = detector.predict_clip(frames, batch_size=2)  # backbone in 3 chunks
    with torch.no_grad():
        clip_logit, frame_logits = detector.module.forward_clip(detector.preprocess(frames)[None])
    assert 0 < clip < 1 and frame_probs.shape == (5,)
    assert clip == pytest.approx(torch.sigmoid(clip_logit[0]).item(), abs=1e-5)
    np.testing.assert_allclose(frame_probs, torch.sigmoid(frame_logits[0]).numpy(), atol=1e-5)
    np.testing.assert_allclose(frame_probs, detector.predict_proba(frames), atol=1e-5)


def test_non_temporal_clip_is_mean_of_frames():
    torch.manual_seed(2)
    detector = create_detector("resnet18", input_size=SIZE)
    frames = _images(4)
    clip, frame_probs = detector.predict_clip(frames)
    assert clip == pytest.approx(float(frame_probs.mean()), abs=1e-6)


def test_preprocess_policies_and_normalisation():
    gray = np.full((36, 50, 3), 128, dtype=np.uint8)
    for policy in ("resize", "center_crop"):
        x = create_detector("resnet18", input_size=40, resize=policy).preprocess([gray])
        assert tuple(x.shape) == (1, 3, 40, 40)
    detector = create_detector("resnet18", resize="none")
    x = detector.preprocess([gray])
    assert tuple(x.shape) == (1, 3, 36, 50)
    expected = (128 / 255 - np.array(detector.config.mean)) / np.array(detector.config.std)
    np.testing.assert_allclose(x[0, :, 0, 0].numpy(), expected, atol=1e-6)


def test_native_side_crops_pixels_at_their_own_scale_within_bounds():
    rng = np.random.default_rng(0)
    detector = create_detector("resnet18", input_size=SIZE, resize="center_crop", native_side=96,
                               mean=(0, 0, 0), std=(1, 1, 1))
    image = rng.integers(0, 256, (80, 120, 3), dtype=np.uint8)  # shorter side within [64, 96]: no resampling
    x = detector.preprocess([image])[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(x, image[8:72, 28:92] / 255.0, atol=1e-6)
    classic = create_detector("resnet18", input_size=SIZE, resize="center_crop", mean=(0, 0, 0), std=(1, 1, 1))
    assert not np.allclose(classic.preprocess([image])[0].permute(1, 2, 0).numpy(), x, atol=1e-2)
    # Larger frames shrink to the bound (a flat frame stays flat), smaller ones grow to the input size.
    for shape in ((300, 200, 3), (40, 50, 3)):
        flat = np.full(shape, 200, np.uint8)
        out = detector.preprocess([flat])
        assert tuple(out.shape) == (1, 3, SIZE, SIZE)
        np.testing.assert_allclose(out.numpy(), 200 / 255.0, atol=1e-5)
    config = detector.config
    assert DetectorConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    old_card = {k: v for k, v in config.to_dict().items() if k != "native_side"}
    assert DetectorConfig.from_dict(old_card).native_side == 0  # cards from before keep the classic crop
    with pytest.raises(ValueError, match="native_side"):
        create_detector("resnet18", input_size=SIZE, resize="center_crop", native_side=SIZE - 1)


def test_full_image_policy_groups_sizes_and_keeps_order():
    torch.manual_seed(3)
    detector = create_detector("resnet18", resize="none")
    images = _images(2, (40, 56, 3), seed=1) + _images(1, (64, 36, 3), seed=2) + _images(1, (40, 56, 3), seed=3)
    probs = detector.predict_proba(images, batch_size=8)
    one_by_one = np.array([_manual_proba(detector, [img])[0] for img in images])
    np.testing.assert_allclose(probs, one_by_one, atol=1e-5)


def test_input_validation():
    detector = create_detector("resnet18", input_size=SIZE)
    assert detector.predict_proba([np.zeros((20, 20), dtype=np.uint8)]).shape == (1,)  # grey accepted
    with pytest.raises(InputRefused):
        detector.predict_proba([np.zeros((20, 20, 3), dtype=np.float32)])
    full_image = create_detector("resnet18", resize="none")
    with pytest.raises(InputRefused):  # one tensor cannot hold two sizes
        full_image.preprocess(_images(1, (40, 40, 3)) + _images(1, (50, 40, 3)))
    with pytest.raises(InputRefused):  # below a ResNet's minimum side
        full_image.predict_proba(_images(1, (16, 40, 3)))


def test_unknown_names_and_options_are_refused():
    with pytest.raises(InputRefused):
        create_detector("not_a_detector")
    with pytest.raises(TypeError):
        create_detector("resnet18", num_layers=3)
    with pytest.raises(ValueError):
        create_detector("vit_tiny", resize="none")
    with pytest.raises(ValueError):
        create_detector("resnet18", resize="stretch")


def test_register_detector_decorator():
    name = "test_tiny_linear"

    @register_detector(target_layers=lambda m: [m[0]], name=name)
    def _builder(config: DetectorConfig) -> nn.Module:
        return nn.Sequential(nn.Conv2d(3, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 1))

    try:
        assert name in list_detectors()
        detector = create_detector(name, input_size=32)
        assert detector.predict_proba(_images(2)).shape == (2,)
        with pytest.raises(ValueError):
            register_detector(target_layers=lambda m: [m[0]], name=name)(_builder)
    finally:
        registry_module._REGISTRY.pop(name, None)


def test_weights_argument_takes_a_state_dict():
    torch.manual_seed(4)
    source = create_detector("resnet18", input_size=SIZE)
    _randomise_head(source)
    copy = create_detector("resnet18", weights=source.module.state_dict(), input_size=SIZE)
    images = _images(2)
    np.testing.assert_allclose(copy.predict_proba(images), source.predict_proba(images), atol=1e-6)
    assert copy.weights_sha256 == source.weights_sha256


def test_to_device_returns_detector():
    detector = create_detector("resnet18", input_size=SIZE)
    assert detector.to("cpu") is detector and detector.device.type == "cpu"
