"""Checkpoints users bring: Apate safetensors + card, CNNDetection .pth, plain state_dicts, refusals."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.models as tvm
import torchvision.transforms.functional as TF
from safetensors.torch import save_file
from torch import nn

from apate_core.detect import create_detector, load_detector, save_detector
from apate_core.detect.models import IMAGENET_MEAN, IMAGENET_STD
from apate_core.errors import CheckpointError

SIZE = 64


def _images(shapes, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for shape in shapes]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _scramble_batchnorm(module: nn.Module, seed: int) -> None:
    # Non-trivial running stats, so a loader that left BatchNorm in train mode or dropped
    # buffers would give different scores.
    generator = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=generator) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=generator) + 0.5)


# ---- Apate format ---------------------------------------------------------------------------


def test_apate_format_round_trip(tmp_path):
    torch.manual_seed(0)
    original = create_detector("resnet18", input_size=SIZE, resize="center_crop")
    _scramble_batchnorm(original.module, 0)
    in_memory_sha = original.weights_sha256
    path = save_detector(original, tmp_path / "mine", trained_on="unit-test noise", metrics={"auc": 0.5},
                         recipe={"epochs": 0}, date="2024-01-02")
    card_file = tmp_path / "mine.json"
    assert path == tmp_path / "mine.safetensors" and path.is_file() and card_file.is_file()

    card = json.loads(card_file.read_text())
    for key in ("name", "architecture", "config", "trained_on", "metrics", "recipe", "date"):
        assert key in card
    assert card["architecture"] == "resnet18" and card["metrics"] == {"auc": 0.5}
    assert card["weights_sha256"] == _sha256(path) == in_memory_sha

    loaded = load_detector(path)
    assert loaded.config == original.config
    assert loaded.card["trained_on"] == "unit-test noise" and loaded.card["format"] == "apate"
    assert loaded.weights_sha256 == _sha256(path)
    images = _images([(70, 90, 3), (70, 90, 3)])
    np.testing.assert_allclose(loaded.predict_proba(images), original.predict_proba(images), atol=1e-6)
    via_create = create_detector(str(path))
    np.testing.assert_allclose(via_create.predict_proba(images), original.predict_proba(images), atol=1e-6)


def test_apate_format_keeps_architecture_options(tmp_path):
    torch.manual_seed(1)
    original = create_detector("vit_tiny", input_size=SIZE, num_layers=2, hidden_dim=48, mlp_dim=96)
    with torch.no_grad():
        original.module.heads.head.weight.normal_()
    path = save_detector(original, tmp_path / "vit.safetensors")
    loaded = load_detector(path)
    assert loaded.config.option_dict["num_layers"] == 2 and len(loaded.module.encoder.layers) == 2
    images = _images([(50, 60, 3)])
    np.testing.assert_allclose(loaded.predict_proba(images), original.predict_proba(images), atol=1e-6)


def test_card_that_does_not_match_the_weights_is_refused(tmp_path):
    path = save_detector(create_detector("resnet18", input_size=SIZE), tmp_path / "a.safetensors")
    card_file = tmp_path / "a.json"
    card = json.loads(card_file.read_text())
    card["weights_sha256"] = "0" * 64
    card_file.write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="sha256"):
        load_detector(path)


def test_card_architecture_conflict_is_refused(tmp_path):
    path = save_detector(create_detector("resnet18", input_size=SIZE), tmp_path / "b.safetensors")
    with pytest.raises(CheckpointError, match="resnet18"):
        load_detector(path, architecture="resnet50")


# ---- CNNDetection format ---------------------------------------------------------------------


def _cnndetection_reference(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = tvm.resnet50(weights=None)
    model.fc = nn.Linear(2048, 1)
    _scramble_batchnorm(model, seed)
    return model.eval()


def test_cnndetection_scores_exactly_like_torchvision_resnet50(tmp_path):
    reference = _cnndetection_reference(2)
    path = tmp_path / "blur_jpg_prob0.5.pth"
    torch.save({"model": reference.state_dict(), "total_steps": 1234}, path)

    detector = load_detector(path)  # format recognised from the keys and the (1, 2048) fc
    assert detector.card["format"] == "cnndetection"
    assert detector.config.resize == "none"
    assert detector.config.mean == IMAGENET_MEAN and detector.config.std == IMAGENET_STD

    images = _images([(72, 96, 3), (64, 64, 3), (81, 47, 3)], seed=3)  # sizes differ: no resize anywhere
    scores = torch.from_numpy(detector.predict_proba(images))
    with torch.no_grad():
        expected = torch.stack([
            torch.sigmoid(reference(TF.normalize(TF.to_tensor(img), IMAGENET_MEAN, IMAGENET_STD)[None]))[0, 0]
            for img in images
        ])
    assert torch.allclose(scores, expected, atol=1e-5), (scores, expected)
    assert detector.weights_sha256 == _sha256(path)


def test_cnndetection_dataparallel_prefix_and_create_by_path(tmp_path):
    reference = _cnndetection_reference(4)
    path = tmp_path / "dp.pth"
    torch.save({"model": {f"module.{k}": v for k, v in reference.state_dict().items()}}, path)
    detector = create_detector(str(path))
    image = _images([(48, 48, 3)], seed=5)
    with torch.no_grad():
        expected = torch.sigmoid(reference(TF.normalize(TF.to_tensor(image[0]), IMAGENET_MEAN, IMAGENET_STD)[None]))
    assert detector.predict_proba(image)[0] == pytest.approx(expected.item(), abs=1e-5)


# ---- plain torchvision state_dicts -------------------------------------------------------------


def test_plain_state_dict_named_and_inferred(tmp_path):
    torch.manual_seed(6)
    model = tvm.resnet18(weights=None, num_classes=1)
    _scramble_batchnorm(model, 6)
    path = tmp_path / "resnet18_fake.pth"
    torch.save(model.state_dict(), path)
    images = _images([(80, 80, 3)], seed=7)
    named = load_detector(path, architecture="resnet18", input_size=SIZE)
    inferred = load_detector(path, input_size=SIZE)
    assert named.card["format"] == inferred.card["format"] == "torchvision"
    assert inferred.architecture == "resnet18"
    with torch.no_grad():
        expected = torch.sigmoid(model.eval()(named.preprocess(images)))[:, 0].numpy()
    np.testing.assert_allclose(named.predict_proba(images), expected, atol=1e-5)
    np.testing.assert_allclose(inferred.predict_proba(images), expected, atol=1e-5)


def test_plain_resnet50_named_by_caller_keeps_registry_preprocessing(tmp_path):
    path = tmp_path / "r50.pth"
    torch.save(_cnndetection_reference(8).state_dict(), path)
    detector = load_detector(path, architecture="resnet50")
    assert detector.card["format"] == "torchvision" and detector.config.resize == "resize"


def test_plain_vit_options_inferred_from_shapes(tmp_path):
    torch.manual_seed(9)
    source = create_detector("vit_tiny", input_size=SIZE, num_layers=2, mlp_dim=128)
    with torch.no_grad():
        source.module.heads.head.weight.normal_()
    path = tmp_path / "vit.pt"
    torch.save(source.module.state_dict(), path)
    loaded = load_detector(path)
    assert loaded.architecture == "vit_tiny" and loaded.config.input_size == SIZE
    assert loaded.config.option_dict["num_layers"] == 2 and loaded.config.option_dict["mlp_dim"] == 128
    images = _images([(50, 70, 3)], seed=10)
    np.testing.assert_allclose(loaded.predict_proba(images), source.predict_proba(images), atol=1e-6)


def test_safetensors_without_card_needs_a_known_layout(tmp_path):
    model = tvm.resnet18(weights=None, num_classes=1)
    known = tmp_path / "known.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(known))
    assert load_detector(known).architecture == "resnet18"
    unknown = tmp_path / "unknown.safetensors"
    save_file({"w": torch.zeros(3)}, str(unknown))
    with pytest.raises(CheckpointError, match="architecture"):
        load_detector(unknown)


# ---- refusals ----------------------------------------------------------------------------------


def test_mismatched_checkpoint_names_the_keys(tmp_path):
    path = tmp_path / "r18.pth"
    torch.save(tvm.resnet18(weights=None, num_classes=1).state_dict(), path)
    with pytest.raises(CheckpointError) as info:
        load_detector(path, architecture="resnet50")
    message = str(info.value)
    assert "missing keys: layer1.0.conv3.weight" in message  # resnet50's bottleneck convs
    assert "mis-shaped keys: layer1.0.conv1.weight: checkpoint (64, 64, 3, 3) vs model (64, 64, 1, 1)" in message
    assert "more)" in message and len(message) < 2000  # the first few keys, not all of them


def test_thousand_class_head_is_refused(tmp_path):
    path = tmp_path / "imagenet_head.pth"
    torch.save(tvm.resnet18(weights=None).state_dict(), path)
    with pytest.raises(CheckpointError, match=r"fc\.weight: checkpoint \(1000, 512\)"):
        load_detector(path, architecture="resnet18")


def _leave_mark(path: str) -> None:
    Path(path).write_text("code ran while loading a checkpoint")


class _Payload:
    """Pickles to a call of _leave_mark: what a malicious checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (_leave_mark, (self.marker,))


def test_pickle_with_arbitrary_objects_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "marker.txt"
    path = tmp_path / "evil.pth"
    torch.save({"model": _Payload(marker)}, path)
    with pytest.raises(CheckpointError, match="weights_only") as refused:
        load_detector(path, architecture="resnet18")
    assert not marker.exists()
    assert "references Python code" in str(refused.value)
    assert "weights_only=False" not in str(refused.value) and "Re-running" not in str(refused.value)


def test_damaged_and_missing_files_are_refused(tmp_path):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(CheckpointError):
        load_detector(garbage, architecture="resnet18")
    bad_safetensors = tmp_path / "bad.safetensors"
    bad_safetensors.write_bytes(b"\xff" * 64)
    with pytest.raises(CheckpointError):
        load_detector(bad_safetensors, architecture="resnet18")
    with pytest.raises(CheckpointError, match="not found"):
        load_detector(tmp_path / "absent.pth")
    tensors_only_list = tmp_path / "list.pth"
    torch.save([torch.zeros(2)], tensors_only_list)
    with pytest.raises(CheckpointError):
        load_detector(tensors_only_list)
