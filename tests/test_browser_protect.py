"""Real browser: upload a photo on Protect, protect it with the defaults, see the views and metrics, download.
A portrait gets identity cloaking by default; a photo without a face the generators."""


import numpy as np
import pytest
from PIL import Image

from conftest import ROOT

pytestmark = pytest.mark.browser


def test_a_portrait_is_cloaked_by_default_and_the_download_keeps_the_bound(dashboard, browser_page, artifacts,
                                                                           tmp_path):
    photo = tmp_path / "portrait.jpg"
    with Image.open(ROOT / "assets" / "samples" / "astronaut.jpg") as im:
        im.convert("RGB").crop((100, 0, 400, 260)).save(photo, quality=92)
    original = np.asarray(Image.open(photo).convert("RGB"))
    page = browser_page
    page.goto(dashboard + "/protect")
    page.wait_for_selector("[data-testid='stApp']")
    page.get_by_text("Smallest budget that works").wait_for()  # identity is the default target
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(photo))
    page.get_by_text("1 face(s) found in 1 of 1 photo(s)").wait_for(timeout=60_000)
    # a fixed budget (the slider's default, 4/255), 12 steps and 1 sample keep the test short
    page.get_by_text("Smallest budget that works").click()
    page.wait_for_timeout(500)
    for label, value in (("Iterations", "12"), ("Random re-alignments per step", "1")):
        box = page.get_by_label(label, exact=True)
        box.fill(value)
        box.press("Enter")
        page.wait_for_timeout(500)
    page.get_by_role("button", name="Protect 1 image(s)").click()
    page.get_by_text("Faces no longer matched").wait_for(timeout=480_000)
    page.get_by_text("Original · 1 face(s) found").wait_for()
    page.get_by_text("Protected · portrait.protected.png").wait_for()
    page.get_by_text("Per face: descriptor distance").wait_for()
    page.get_by_text("Robustness: faces re-detected").wait_for()
    page.locator("[data-testid='stDataFrame']").nth(1).wait_for()
    page.set_viewport_size({"width": 1400, "height": 3600})
    page.wait_for_timeout(1500)
    page.screenshot(path=str(artifacts / "protect-identity-result.png"), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 1000})
    with page.expect_download() as info:
        page.get_by_role("button", name="Download portrait.protected.png").click()
    saved = tmp_path / "downloaded.png"
    info.value.save_as(saved)
    with Image.open(saved) as im:
        protected = np.asarray(im.convert("RGB"))
    assert protected.shape == original.shape
    assert 1 <= np.abs(protected.astype(int) - original.astype(int)).max() <= 4


def test_protect_a_photo_with_the_defaults_and_download_it(dashboard, browser_page, artifacts, tmp_path):
    photo = tmp_path / "portrait.jpg"
    with Image.open(ROOT / "assets" / "samples" / "astronaut.jpg") as im:
        im.convert("RGB").crop((120, 20, 420, 220)).save(photo, quality=92)  # 300x200, not the model's size
    original = np.asarray(Image.open(photo).convert("RGB"))
    page = browser_page
    page.goto(dashboard + "/protect")
    page.wait_for_selector("[data-testid='stApp']")
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(photo))
    page.get_by_text("face(s) found in").wait_for(timeout=60_000)
    page.get_by_text("Image-translation generators").click()  # a face is there: choose the generators
    page.get_by_text("Model source (checkpoint)").wait_for()
    # the defaults (model source, PGD, eps 6.375/255, targets, PNG), with 2 iterations to keep the test short
    iterations = page.get_by_label("Iterations", exact=True)
    iterations.fill("2")
    iterations.press("Enter")
    page.wait_for_timeout(1000)
    button = page.get_by_role("button", name="Protect 1 image(s)")
    button.wait_for()
    page.screenshot(path=str(artifacts / "protect-ready.png"), full_page=True)
    button.click()
    page.get_by_text("Perturbation (amplified").wait_for(timeout=480_000)  # minutes on a loaded 2-core box
    # side by side, and the before/after split
    page.get_by_text("Original · 300×200").wait_for()
    page.get_by_text("Protected · portrait.protected.png").wait_for()
    page.get_by_text("Original left of the seam").wait_for()
    page.locator("[data-testid='stImage'] img").nth(4 + 2 - 1).wait_for()  # 3 views, the split, 2 outputs
    # metrics and tables
    page.get_by_text("L∞ (true max)").wait_for()
    page.get_by_text("SSIM").first.wait_for()
    page.locator("[data-testid='stDataFrame']").nth(1).wait_for()  # the tables mount a moment after the text
    assert page.locator("[data-testid='stDataFrame']").count() == 2
    assert page.get_by_text("· on protected").count() >= 1  # the default targets of whatever weights are there
    page.set_viewport_size({"width": 1400, "height": 4200})  # the app scrolls inside: a tall window shows it all
    page.wait_for_timeout(1500)
    page.screenshot(path=str(artifacts / "protect-result.png"), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 1000})
    with page.expect_download() as info:
        page.get_by_role("button", name="Download portrait.protected.png").click()
    download = info.value
    saved = tmp_path / "downloaded.png"
    download.save_as(saved)
    assert download.suggested_filename == "portrait.protected.png"
    with Image.open(saved) as im:
        assert im.format == "PNG" and im.size == (300, 200)
        protected = np.asarray(im.convert("RGB"))
    assert 1 <= np.abs(protected.astype(int) - original.astype(int)).max() <= 6  # floor(0.05 * 127.5)
