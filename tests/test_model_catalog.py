"""Model catalog: every model listed with its card and hash; the loaded-models manager; checkpoint import (good
files recognised, saved where Detect/Protect/the CLI find them; mismatches explained key by key; a malicious
pickle refused without running and without PyTorch's advice to load it unsafely)."""

from __future__ import annotations

import hashlib
import io
import json
import os

import pytest
import torch
import torchvision.models as tvm
from safetensors.torch import save as st_save

from apate_core import model_catalog as mc
from apate_core.model_catalog.importing import _scrub
from apate_core import monitoring
from apate_core.detect.pipeline import available_checkpoints, load_detector
from apate_core.errors import CheckpointError, InputRefused
from apate_core.protect.job import available_generators

from conftest import ROOT

UNSAFE_ADVICE = ("weights_only=False", "weights_only` set to `False`", "Re-running", "trusted source")


@pytest.fixture(scope="module")
def resnet18_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return tvm.resnet18(weights=None, num_classes=1).state_dict()


def _pth(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


@pytest.fixture(autouse=True)
def default_device_reset():
    yield
    mc.set_default_device(None)
    for info in mc.loaded():
        mc.unload(info.key)


# --------------------------------------------------------------------------------------------- listing
def test_lists_every_kind_with_shipped_cards_and_hashes(settings):
    entries = {e.key: e for e in mc.list_models(settings)}
    assert {e.kind for e in entries.values()} == set(mc.KINDS)
    universal = entries["detector:apate-universal"]
    weights = ROOT / "assets" / "models" / "apate-universal.safetensors"
    assert universal.origin == "shipped" and universal.path == weights
    assert universal.sha256 == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert universal.sha256 == universal.card["weights_sha256"]  # the card describes the file shipped
    assert "MIT" in universal.licence and universal.trained_on and universal.metrics
    assert entries["detector:resnet18"].origin == "architecture" and entries["detector:resnet18"].sha256 is None
    for family in ("stargan", "ganimation", "pix2pixhd", "cyclegan"):
        gen = entries[f"generator:{family}/shipped"]
        assert gen.sha256 == hashlib.sha256(gen.path.read_bytes()).hexdigest() and gen.licence and gen.trained_on
    assert {"attack:fgsm", "attack:ifgsm", "attack:pgd"} <= set(entries)
    assert not entries["attack:pgd"].loadable and "epsilon" in entries["attack:pgd"].card["defaults"]
    face = entries["identity:face-descriptor"]
    assert face.sha256 == face.card["sha256"] and "MIT" in face.licence


def test_load_unload_and_default_device(settings):
    assert mc.default_device(settings) in mc.available_devices()
    with pytest.raises(InputRefused):
        mc.set_default_device("tpu")
    mc.set_default_device("cpu")
    info = mc.load("detector:resnet18", settings=settings)
    expected = sum(t.numel() * t.element_size() for t in tvm.resnet18(weights=None, num_classes=1).state_dict()
                   .values())
    assert info.device == "cpu" and info.memory_bytes == expected and info.parameters == 11_177_025
    assert [m.key for m in mc.loaded()] == ["detector:resnet18"]
    assert "resnet18" in monitoring.loaded_models()  # metrics see it
    assert mc.load("detector:resnet18", "cpu", settings) == info  # already held: the same
    face = mc.load("identity:face-descriptor", "cpu", settings)
    assert face.memory_bytes > 5_000_000
    assert {m.key for m in mc.loaded()} == {"detector:resnet18", "identity:face-descriptor"}
    assert mc.unload("detector:resnet18") and not mc.unload("detector:resnet18")
    assert [m.key for m in mc.loaded()] == ["identity:face-descriptor"]
    with pytest.raises(InputRefused, match="nothing to load"):
        mc.load("attack:pgd", "cpu", settings)


# --------------------------------------------------------------------------------------------- import
@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
def test_a_resnet18_state_dict_is_recognised_imported_and_loads_everywhere(settings, resnet18_state, fmt):
    data = _pth(resnet18_state) if fmt == "pth" else st_save(resnet18_state)
    inspection = mc.inspect_checkpoint(data, f"my-detector.{fmt}")
    assert inspection.match is not None and inspection.match.id == "detector:resnet18"
    assert inspection.tensors == len(resnet18_state) and inspection.candidates[0].exact
    card = {"name": f"r18-{fmt}", "trained_on": "FF++ c23 (train split)", "metrics": '{"roc_auc": 0.91}',
            "licence": "MIT", "source": "https://example.org/r18"}
    imported = mc.import_checkpoint(data, f"my-detector.{fmt}", None, card, settings)
    assert imported.path == settings.models_path / "detectors" / f"r18-{fmt}.safetensors"
    stored = json.loads(imported.card_path.read_text())
    assert stored["architecture"] == "resnet18" and stored["licence"] == "MIT"
    assert stored["metrics"] == {"roc_auc": 0.91} and stored["trained_on"] == "FF++ c23 (train split)"
    assert stored["weights_sha256"] == hashlib.sha256(imported.path.read_bytes()).hexdigest()
    assert stored["imported_sha256"] == hashlib.sha256(data).hexdigest()
    # Detect's picker and the CLI (a name relative to APATE_MODELS_DIR, or the path) find and load it
    assert imported.path in available_checkpoints(settings)
    for name in (imported.name, str(imported.path)):
        detector = load_detector(name, settings)
        assert detector.architecture == "resnet18" and detector.name == f"r18-{fmt}"
        for key, value in resnet18_state.items():
            assert torch.equal(detector.module.state_dict()[key], value)
    entry = {e.key: e for e in mc.list_models(settings)}[imported.key]
    assert entry.origin == "imported" and entry.editable and entry.sha256 == stored["weights_sha256"]
    assert mc.load(imported.key, "cpu", settings).device == "cpu"
    # the card can be edited; the architecture and the hash stay, so the file still loads with it
    mc.save_card(imported.name, {"licence": "Apache-2.0", "notes": "checked on our set"}, settings)
    edited = load_detector(imported.name, settings)
    assert edited.card["licence"] == "Apache-2.0" and edited.card["notes"] == "checked on our set"
    with pytest.raises(InputRefused, match="already exists"):
        mc.import_checkpoint(data, f"my-detector.{fmt}", None, card, settings)


def test_a_cnndetection_style_wrapper_and_a_generator_import(settings):
    torch.manual_seed(1)
    wrapped = {"model": tvm.resnet50(weights=None, num_classes=1).state_dict(), "epoch": 3}
    inspection = mc.inspect_checkpoint(_pth(wrapped), "blur_jpg_prob0.5.pth")
    assert inspection.match.id == "detector:resnet50"
    from safetensors.torch import load_file

    stargan = load_file(str(ROOT / "assets" / "models" / "protect" / "stargan.safetensors"))
    data = _pth({"G": stargan})
    assert mc.inspect_checkpoint(data, "200000-G.ckpt").match.id == "generator:stargan"
    imported = mc.import_checkpoint(data, "200000-G.ckpt", "generator:stargan", {"name": "stargan-ours"}, settings)
    assert imported.path == settings.models_path / "stargan" / "stargan-ours.safetensors"
    choices = [c for c in available_generators(settings, "stargan") if c.source == "checkpoint"]
    assert [c.path for c in choices] == [imported.path]  # Protect's model sources list it
    assert imported.path not in available_checkpoints(settings)  # Detect's, Live's and the API's pickers skip it
    keys = {e.key for e in mc.list_models(settings)}
    assert "generator:stargan/stargan-ours.safetensors" in keys
    assert not any(k.startswith("detector:stargan/") for k in keys)  # not offered as a detector
    card = mc.save_card(imported.key, {"trained_on": "CelebA"}, settings)
    assert card["trained_on"] == "CelebA" and card["family"] == "stargan"
    with pytest.raises(InputRefused, match="release"):
        mc.save_card("generator:stargan/shipped", {"licence": "x"}, settings)


def test_a_mismatching_state_dict_gets_a_key_by_key_report(settings):
    imagenet = tvm.resnet18(weights=None).state_dict()  # 1000 classes: the head does not fit a detector
    imagenet.pop("layer4.1.bn2.running_var")
    imagenet["extra.weight"] = torch.zeros(3)
    inspection = mc.inspect_checkpoint(_pth(imagenet), "resnet18-imagenet.pth")
    assert inspection.match is None
    closest = inspection.candidates[0]
    assert closest.id == "detector:resnet18"
    assert closest.missing == ("layer4.1.bn2.running_var",) and closest.unexpected == ("extra.weight",)
    assert {m.key: (m.checkpoint, m.model) for m in closest.misshaped} == {
        "fc.weight": ((1000, 512), (1, 512)), "fc.bias": ((1000,), (1,))}
    rows = closest.rows()
    assert {"key": "fc.weight", "problem": "shape differs", "checkpoint": "[1000, 512]", "model": "[1, 512]"} in rows
    assert "mis-shaped" in closest.summary() and "missing" in closest.summary()
    far = inspection.report("generator:cyclegan")
    assert far.n_unexpected > mc.SHOW_KEYS and len(far.unexpected) == mc.SHOW_KEYS  # the first 20 listed
    with pytest.raises(CheckpointError, match="fits no architecture") as refused:
        mc.import_checkpoint(_pth(imagenet), "resnet18-imagenet.pth", None, None, settings)
    assert "fc.weight" in str(refused.value)
    with pytest.raises(CheckpointError, match="does not fit detector:resnet18"):
        mc.import_checkpoint(_pth(imagenet), "resnet18-imagenet.pth", "resnet18", None, settings)
    assert not settings.models_path.exists() or not any(settings.models_path.rglob("*.safetensors"))


class _Payload:
    """Unpickling this would run a shell command that creates a file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _OpenPayload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("payload", [_Payload, _OpenPayload])
def test_a_malicious_pickle_never_runs_and_the_refusal_gives_no_unsafe_advice(settings, tmp_path, payload):
    marker = tmp_path / "pwned"
    data = _pth({"fc.weight": torch.zeros(1, 512), "fc.bias": payload(marker)})
    assert not marker.exists()
    for call in (lambda: mc.inspect_checkpoint(data, "resnet18.pth"),
                 lambda: mc.import_checkpoint(data, "resnet18.pth", "detector:resnet18", None, settings)):
        with pytest.raises(CheckpointError) as refused:
            call()
        message = str(refused.value)
        assert not marker.exists(), "the pickle ran"
        assert "never loaded" in message or "refused" in message
        assert "weights_only=True" in message  # what is accepted
        for advice in UNSAFE_ADVICE:
            assert advice not in message, message
    path = tmp_path / "evil.pth"
    path.write_bytes(data)
    with pytest.raises(CheckpointError):
        mc.inspect_checkpoint(path)
    assert not marker.exists()
    assert not (settings.models_path / "detectors").exists()


def test_scrub_removes_pytorchs_unsafe_advice():
    message = ("Weights only load failed. This file can still be loaded, to do so you have two options, do those "
               "steps only if you trust the source of the checkpoint. (1) In PyTorch 2.6, we changed the default "
               "value of the `weights_only` argument in `torch.load` from `False` to `True`. Re-running "
               "`torch.load` with `weights_only` set to `False` will likely succeed, but it can result in arbitrary "
               "code execution. (2) Alternatively, load with weights_only=False.\n\nTrying to load unsupported "
               "GLOBAL posix.system whose module posix is blocked.")
    scrubbed = _scrub(message)
    assert "GLOBAL posix.system" in scrubbed
    for advice in (*UNSAFE_ADVICE, "two options", "False"):
        assert advice not in scrubbed, scrubbed


def test_files_that_are_not_checkpoints_are_refused(settings):
    with pytest.raises(CheckpointError, match="not a checkpoint file"):
        mc.inspect_checkpoint(b"hello", "notes.txt")
    with pytest.raises(CheckpointError, match="safetensors"):
        mc.inspect_checkpoint(b"not really safetensors", "weights.safetensors")
    with pytest.raises(CheckpointError) as refused:
        mc.inspect_checkpoint(_pth([1, 2, 3]), "list.pth")
    assert "weights_only=False" not in str(refused.value)
    with pytest.raises(InputRefused, match="cannot name"):
        mc.import_checkpoint(st_save(tvm.resnet18(weights=None, num_classes=1).state_dict()), "r.safetensors",
                             None, {"name": "../escape"}, settings)
