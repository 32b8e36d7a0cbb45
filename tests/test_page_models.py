"""AppTest for the Models page: every kind listed with its card, Load/Unload, the default device, and the import
of a checkpoint (inferred architecture, card, Save; a mismatch explained key by key; a malicious pickle refused)."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import pytest
import streamlit as st
import torch
import torchvision.models as tvm
from streamlit.testing.v1 import AppTest

from apate_core import model_catalog
from apate_core.detect.pipeline import load_detector
from apate_core.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 120


@pytest.fixture(autouse=True)
def private_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("APATE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("APATE_MODELS_DIR", str(tmp_path / "models"))
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()
    model_catalog.set_default_device(None)
    for info in model_catalog.loaded():
        model_catalog.unload(info.key)


def _page() -> AppTest:
    return AppTest.from_file(str(ROOT / "pages" / "models.py"), default_timeout=TIMEOUT).run()


def _text(at: AppTest) -> str:
    return "\n".join(str(m.value) for m in [*at.markdown, *at.caption])


def _pth(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def test_lists_every_kind_with_cards_and_hashes():
    at = _page()
    assert not at.exception, at.exception
    labels = [t.label for t in at.tabs]
    assert labels[-1] == "Import a checkpoint"
    assert any(label.startswith("Detectors (") for label in labels)
    assert any(label.startswith("Protect generators (4)") for label in labels)
    assert "Attacks (3)" in labels and "Identity (1)" in labels
    text = _text(at)
    for key in ("detector:apate-universal", "detector:resnet18", "generator:stargan/shipped", "attack:pgd",
                "identity:face-descriptor"):
        assert f"`{key}`" in text, key
    universal = model_catalog.find_model("detector:apate-universal", load_settings())
    assert universal.sha256 in text  # the full hash in its card
    assert "MIT (code); CLIP weights MIT (OpenAI)" in text  # licence from the card
    assert at.radio(key="models_device").value == "cpu" or at.radio(key="models_device").value == "cuda"


def test_load_and_unload_toggle():
    at = _page()
    at.radio(key="models_device").set_value("cpu").run()
    at.button(key="models_load_detector:resnet18").click().run()
    assert not at.exception, at.exception
    assert [m.key for m in model_catalog.loaded()] == ["detector:resnet18"]
    assert any("Loaded detector:resnet18 on cpu" in s.value for s in at.success)
    table = at.dataframe[0].value  # the loaded-models table, at the top
    assert list(table["model"]) == ["detector:resnet18"] and list(table["device"]) == ["cpu"]
    assert "42.7 MB" in list(table["memory"])[0]
    assert "loaded" in _text(at) and "11,177,025 parameters" in _text(at)
    at.button(key="models_unload_detector:resnet18").click().run()
    assert not at.exception
    assert model_catalog.loaded() == []
    assert "No model loaded from this page yet." in _text(at)
    assert at.button(key="models_load_detector:resnet18")  # the Load button is back


def test_import_a_good_checkpoint_shows_the_architecture_and_saves_it():
    torch.manual_seed(0)
    state = tvm.resnet18(weights=None, num_classes=1).state_dict()
    data = _pth(state)
    digest = hashlib.sha256(data).hexdigest()[:12]
    at = _page()
    at.file_uploader(key="models_import_upload").upload("ours.pth", data).run()
    assert not at.exception, at.exception
    assert any("Recognised architecture: **resnet18 (detector)**" in s.value for s in at.success)
    assert at.selectbox(key=f"models_import_arch_{digest}").value == "detector:resnet18"
    assert at.text_input(key=f"models_import_name_{digest}").value == "ours"
    at.text_input(key=f"models_import_name_{digest}").input("ours-r18")
    at.text_input(key=f"models_import_licence_{digest}").input("CC-BY-4.0")
    at.text_area(key=f"models_import_trained_{digest}").input("our newsroom set, 2026")
    at.text_area(key=f"models_import_metrics_{digest}").input('{"roc_auc": 0.88}')
    at.button(key=f"models_import_save_{digest}").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert any("Saved ours.pth as `detectors/ours-r18.safetensors`" in s.value for s in at.success)
    settings = load_settings()
    saved = settings.models_path / "detectors" / "ours-r18.safetensors"
    card = json.loads(saved.with_suffix(".json").read_text())
    assert card["licence"] == "CC-BY-4.0" and card["metrics"] == {"roc_auc": 0.88}
    assert card["trained_on"] == "our newsroom set, 2026" and card["architecture"] == "resnet18"
    assert load_detector("detectors/ours-r18.safetensors", settings).name == "ours-r18"
    # listed on the page, with an editable card
    assert "`detector:detectors/ours-r18.safetensors`" in _text(at)
    key = "detector:detectors/ours-r18.safetensors"
    at.text_input(key=f"models_card_licence_{key}").input("MIT")
    at.button(key=f"models_card_save_{key}").click().run()
    assert not at.exception
    assert json.loads(saved.with_suffix(".json").read_text())["licence"] == "MIT"


def test_import_of_a_mismatch_explains_it_and_a_pickle_is_refused(tmp_path):
    imagenet = tvm.resnet18(weights=None).state_dict()  # a 1000-class head
    data = _pth(imagenet)
    digest = hashlib.sha256(data).hexdigest()[:12]
    at = _page()
    at.file_uploader(key="models_import_upload").upload("imagenet.pth", data).run()
    assert not at.exception, at.exception
    assert any("No architecture fits every key and shape" in w.value for w in at.warning)
    assert at.selectbox(key=f"models_import_arch_{digest}").value == "detector:resnet18"
    assert len(at.dataframe) == 1  # nothing loaded: the one table is the mismatch
    rows = at.dataframe[0].value
    assert set(rows["key"]) == {"fc.weight", "fc.bias"} and set(rows["problem"]) == {"shape differs"}
    assert at.button(key=f"models_import_save_{digest}").disabled

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = _pth({"fc.weight": torch.zeros(1, 512), "x": Payload()})
    at = _page()
    at.file_uploader(key="models_import_upload").upload("evil.pth", evil).run()
    assert not at.exception
    assert not marker.exists()
    errors = " ".join(e.value for e in at.error)
    assert "This checkpoint was refused" in errors and "weights_only=True" in errors
    assert "weights_only=False" not in errors and "set to `False`" not in errors
