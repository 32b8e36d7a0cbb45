"""Real browser: upload a photo on Protect, protect it with the defaults, see the views and metrics, download."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, _free_port, _wait_healthy

pytestmark = pytest.mark.browser
PAGE_LINE = 'st.Page(str(PAGES / "protect.py"), title="Protect", icon=":material/shield_lock:", url_path="protect")'


def _entry_script(folder: Path) -> Path:
    """app/main.py once it lists the Protect page; until then a copy of it that adds the page."""
    main = ROOT / "app" / "main.py"
    text = main.read_text()
    if 'url_path="protect"' in text:
        return main
    anchor = 'url_path="inspect"),'
    assert anchor in text, "app/main.py changed shape; add the Protect page there"
    text = text.replace('Path(__file__).resolve().parent.parent / "pages"', f"Path({str(ROOT / 'pages')!r})")
    text = text.replace(anchor, f"{anchor}\n        {PAGE_LINE},")
    script = folder / "main.py"
    script.write_text(text)
    return script


@pytest.fixture(scope="module")
def protect_dashboard(tmp_path_factory, chromium):
    folder = tmp_path_factory.mktemp("protect-app")
    port = _free_port()
    env = dict(os.environ, APATE_CACHE_DIR=str(folder / "cache"), APATE_MODELS_DIR=str(folder / "models"),
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "streamlit", "run", str(_entry_script(folder)), "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_protect_a_photo_with_the_defaults_and_download_it(protect_dashboard, browser_page, artifacts, tmp_path):
    photo = tmp_path / "portrait.jpg"
    with Image.open(ROOT / "assets" / "samples" / "astronaut.jpg") as im:
        im.convert("RGB").crop((120, 20, 420, 220)).save(photo, quality=92)  # 300x200, not the model's size
    original = np.asarray(Image.open(photo).convert("RGB"))
    page = browser_page
    page.goto(protect_dashboard + "/protect")
    page.wait_for_selector("[data-testid='stApp']")
    page.get_by_text("Model source (checkpoint)").wait_for()
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(photo))
    # the defaults (model source, PGD, eps 6.375/255, targets, PNG), with 2 iterations to keep the test short
    iterations = page.get_by_label("Iterations")
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
    assert page.locator("[data-testid='stImage'] img").count() >= 4 + 2
    # metrics and tables
    page.get_by_text("L∞ (true max)").wait_for()
    page.get_by_text("SSIM").first.wait_for()
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
