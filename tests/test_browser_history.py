"""Real browser: an analysis made on Detect is listed on History and reopens from the store."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.browser


def test_detect_result_reopens_from_history(dashboard, browser_page, tmp_path, artifacts):
    rng = np.random.default_rng(7)
    photo = tmp_path / "harbour-at-dusk.png"
    Image.fromarray(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)).save(photo)
    page = browser_page
    page.goto(dashboard + "/detect")
    page.get_by_text("Drop a video, or several images").wait_for()
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(photo))
    page.get_by_text("Top-8 mean").wait_for(timeout=240_000)

    page.goto(dashboard + "/history")
    page.get_by_text("harbour-at-dusk.png").first.wait_for(timeout=60_000)
    # the entry's row (its columns) holds its name and its Open button (keyed by the entry, hence the class)
    row = page.locator("[data-testid='stHorizontalBlock']", has_text="harbour-at-dusk.png").first
    opened = page.get_by_role("heading", name="harbour-at-dusk.png")
    for _ in range(3):  # a click that lands while a rerun is still drawing the list can be dropped
        page.wait_for_timeout(1000)
        row.locator("[class*='st-key-history_open_'] button").click()
        try:
            opened.first.wait_for(timeout=20_000)
            break
        except Exception:  # noqa: BLE001 - click again
            continue
    opened.first.wait_for(timeout=5_000)
    page.get_by_text("Re-opened from the result store").wait_for(timeout=60_000)
    page.get_by_text("Top-8 mean").wait_for()
    page.screenshot(path=str(artifacts / "history-reopened.png"), full_page=True)
    page.get_by_role("button", name="Back to the list").click()
    page.get_by_text("harbour-at-dusk.png").first.wait_for()
