"""Real browser: six sessions analyse six different files at once through the server's one job queue."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.conftest import BROWSER_ARGS

pytestmark = pytest.mark.browser

SESSIONS = 6
# Records, in each page, whether the queue's waiting line was ever drawn (a fragment redraws it every 0.5 s).
WATCH_QUEUE = """
window.__sawQueue = false;
new MutationObserver(() => {
  if (document.body && document.body.innerText.includes('Waiting in the queue: position')) window.__sawQueue = true;
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


def _files(folder, n):
    """n photos of different content (and so different results), 640x480 so each job takes a moment."""
    paths = []
    for i in range(n):
        rng = np.random.default_rng(100 + i)
        base = np.linspace(0, 255, 640, dtype=np.float32)[None, :, None] * rng.uniform(0.3, 1.0, (1, 1, 3))
        rgb = np.clip(base + rng.normal(0, 20, (480, 640, 3)), 0, 255).astype(np.uint8)
        path = folder / f"session-{i}.png"
        Image.fromarray(rgb).save(path)
        paths.append(path)
    return paths


def test_six_sessions_each_get_their_own_result_and_the_queue_shows(dashboard, chromium, tmp_path):
    from playwright.sync_api import sync_playwright

    files = _files(tmp_path, SESSIONS)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=BROWSER_ARGS)
        try:
            pages = []
            for _ in range(SESSIONS):  # one context each: separate cookies, so separate Streamlit sessions
                page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
                page.set_default_timeout(120_000)
                page.add_init_script(WATCH_QUEUE)
                page.goto(dashboard + "/detect")
                page.get_by_text("Drop a video, or several images").wait_for()
                pages.append(page)
            for page, path in zip(pages, files):  # as close together as one driver can click
                page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(path))
            for page in pages:
                page.get_by_text("Top-8 mean").wait_for(timeout=300_000)
            for page, path in zip(pages, files):
                headings = page.locator("h3").all_inner_texts()
                assert any(path.name in h for h in headings), (path.name, headings)
                others = [f.name for f in files if f != path]
                text = page.locator("[data-testid='stMain']").inner_text()
                assert not any(name in text for name in others), f"{path.name}'s page shows another session's file"
            saw = [page.evaluate("window.__sawQueue") for page in pages]
            assert sum(saw) >= 1, "no session ever showed its place in the queue"
        finally:
            browser.close()
