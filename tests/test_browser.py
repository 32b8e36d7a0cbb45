"""Real-browser tests: Playwright drives Debian's Chromium against a live dashboard."""

import pytest

pytestmark = pytest.mark.browser


def _open(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("[data-testid='stApp']")


def test_inspect_upload_of_a_real_camera_video(dashboard, browser_page, testdata, artifacts):
    page = browser_page
    _open(page, dashboard + "/inspect")
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(testdata / "real" / "cockatoo.mp4"))
    # metadata panel
    page.get_by_text("video · mp4").wait_for(timeout=120_000)
    page.get_by_text("1280×720").wait_for()
    # the playable copy really plays in the browser
    video = page.locator("video").first
    video.wait_for(timeout=180_000)
    page.wait_for_function(
        "() => { const v = document.querySelector('video'); return v && v.readyState >= 2 && v.videoWidth > 0; }",
        timeout=120_000,
    )
    page.evaluate("() => { const v = document.querySelector('video'); v.muted = true; return v.play(); }")
    page.wait_for_function("() => document.querySelector('video').currentTime > 0.3", timeout=60_000)
    assert page.evaluate("() => document.querySelector('video').videoHeight") == 720
    # the frame strip: one frame per second of the 14 s clip
    page.get_by_text("t = 13.00 s").wait_for(timeout=180_000)
    assert page.get_by_text("t = 0.00 s").count() == 1
    page.screenshot(path=str(artifacts / "inspect-cockatoo.png"), full_page=True)


def test_home_lists_samples_and_opens_one_in_inspect(dashboard, browser_page, artifacts):
    page = browser_page
    _open(page, dashboard)
    page.get_by_text("coffee_pan.mp4").wait_for()
    page.screenshot(path=str(artifacts / "home.png"), full_page=True)
    page.get_by_role("button", name="Inspect").first.click()
    page.get_by_text("Sampled frames").wait_for(timeout=120_000)
    page.wait_for_url("**/inspect", timeout=30_000)
    page.screenshot(path=str(artifacts / "inspect-sample.png"), full_page=True)
