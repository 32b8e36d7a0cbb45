"""Real browser: on the Models page, drop a checkpoint file, see its architecture recognised, name it, save it and
find it listed with its card; a mismatching file gets the key-by-key table and no Save."""

import hashlib
import io
import re

import pytest
import torch
import torchvision.models as tvm

pytestmark = pytest.mark.browser


def _open_import(page, url: str) -> None:
    page.goto(url + "/models")
    page.wait_for_selector("[data-testid='stApp']")
    page.get_by_role("tab", name="Import a checkpoint").click()
    page.get_by_text("Drop a checkpoint (.safetensors").wait_for()


def _visible(locator):
    return locator.locator("visible=true")


def test_import_a_checkpoint_in_the_browser(dashboard, browser_page, artifacts, tmp_path):
    torch.manual_seed(0)
    weights = tmp_path / "newsroom-detector.pth"
    buf = io.BytesIO()
    torch.save({"model": tvm.resnet18(weights=None, num_classes=1).state_dict()}, buf)
    weights.write_bytes(buf.getvalue())

    page = browser_page
    _open_import(page, dashboard)
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(weights))
    page.get_by_text("Recognised architecture:").wait_for(timeout=120_000)
    page.get_by_text("resnet18 (detector)").first.wait_for()
    name = _visible(page.get_by_label("Name", exact=True))
    name.fill("browser-r18")
    name.press("Tab")
    licence = _visible(page.get_by_label("Licence", exact=True))
    licence.fill("CC-BY-4.0")
    licence.press("Tab")
    page.wait_for_timeout(1000)
    page.screenshot(path=str(artifacts / "models-import-ready.png"), full_page=True)
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:12]
    page.locator(f".st-key-models_import_save_{digest} button").click()
    page.get_by_text("as detectors/browser-r18.safetensors").first.wait_for(timeout=120_000)  # the flash and the note
    # listed with the detectors, its card carrying what was typed
    page.get_by_role("tab", name="Detectors").click()
    page.get_by_text("detector:detectors/browser-r18.safetensors").wait_for(timeout=60_000)
    page.get_by_text("imported", exact=True).first.wait_for()
    card = page.locator(".st-key-" + re.sub(r"[^a-zA-Z0-9_-]", "-",
                                            "models_entry_detector:detectors/browser-r18.safetensors"))
    card.get_by_text("Model card").first.click()
    card.get_by_text("CC-BY-4.0").first.wait_for()
    page.set_viewport_size({"width": 1400, "height": 3000})
    page.wait_for_timeout(1000)
    page.screenshot(path=str(artifacts / "models-imported.png"), full_page=True)


def test_a_mismatching_checkpoint_is_explained_key_by_key(dashboard, browser_page, tmp_path):
    weights = tmp_path / "imagenet-resnet18.pth"
    buf = io.BytesIO()
    torch.save(tvm.resnet18(weights=None).state_dict(), buf)  # a 1000-class head
    weights.write_bytes(buf.getvalue())
    page = browser_page
    _open_import(page, dashboard)
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(weights))
    page.get_by_text("No architecture fits every key and shape").wait_for(timeout=120_000)
    page.get_by_text("resnet18 (detector) does not fit:").wait_for()
    page.locator("[data-testid='stDataFrame']").last.wait_for()
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:12]
    assert page.locator(f".st-key-models_import_save_{digest} button").is_disabled()
