"""Live page in a real Chromium with a fake camera: stream, see processed frames arrive, snapshot, stop, restart.

Runs its own server on an entry script that registers the Live page (so it does not depend on
app/main.py's navigation) and its own browser with Chromium's fake media device flags.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

from conftest import ROOT, _free_port, _wait_healthy

pytestmark = pytest.mark.browser

ENTRY = '''
from pathlib import Path
import streamlit as st
PAGES = Path({pages!r})
st.set_page_config(page_title="Apate", page_icon=":material/shield:", layout="wide")
st.navigation([
    st.Page(str(PAGES / "home.py"), title="Home", icon=":material/home:", default=True),
    st.Page(str(PAGES / "live.py"), title="Live", icon=":material/videocam:", url_path="live"),
]).run()
'''

FAKE_CAMERA_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required",
                    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


@pytest.fixture(scope="module")
def live_server(tmp_path_factory, chromium):
    folder = tmp_path_factory.mktemp("live")
    entry = folder / "entry.py"
    entry.write_text(ENTRY.format(pages=str(ROOT / "pages")))
    port = _free_port()
    # No ICE servers (the default): host candidates on loopback only, nothing outside is contacted.
    env = dict(os.environ, APATE_CACHE_DIR=str(folder / "cache"), APATE_ICE_SERVERS="", PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "streamlit", "run", str(entry), "--server.port", str(port),
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


@pytest.fixture
def camera_page(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=FAKE_CAMERA_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1400}, accept_downloads=True,
                                      permissions=["camera"])
        page = context.new_page()
        page.set_default_timeout(60_000)
        try:
            yield page
        finally:
            context.close()
            browser.close()


def _status(page) -> tuple[int, int, float]:
    """(timeline points, processed frames, processed fps) as the page shows them."""
    caption = page.get_by_text(re.compile(r"points in the last minute")).inner_text()
    points, processed = (int(v) for v in re.findall(r"(\d+) (?:points|processed)", caption))
    fps = float(page.get_by_test_id("stMetricValue").nth(1).inner_text())
    return points, processed, fps


def _wait_for(page, predicate, seconds: float) -> tuple[int, int, float]:
    deadline = time.monotonic() + seconds
    status = _status(page)
    while time.monotonic() < deadline:
        status = _status(page)
        if predicate(*status):
            return status
        page.wait_for_timeout(500)
    raise AssertionError(f"page status {status} did not reach the expected state in {seconds} s")


def test_live_stream_processes_frames_and_takes_a_snapshot(live_server, camera_page, artifacts):
    page = camera_page
    page.goto(live_server + "/live")
    page.get_by_text("Processed fps").wait_for(timeout=90_000)
    assert _status(page) == (0, 0, 0.0)
    streamer = page.frame_locator("iframe[title*='webrtc_streamer']")
    streamer.get_by_role("button", name="START").click()

    # processed frames come back: fps above zero, the timeline gains points
    points, processed, fps = _wait_for(page, lambda p, n, f: p >= 2 and f > 0, seconds=45)
    page.locator("[data-testid='stPlotlyChart'] .scatterlayer .point").first.wait_for(state="attached")
    # the returned video plays (a frame with the overlay drawn on it)
    streamer.locator("video").first.wait_for()
    assert streamer.locator("video").first.evaluate("v => v.videoWidth > 0 && v.readyState >= 2")

    page.get_by_role("button", name="Snapshot").click()
    page.get_by_text("Snapshots").wait_for()
    page.get_by_text(re.compile(r"#1 · P\(fake\) \d\.\d\d")).wait_for()
    page.wait_for_timeout(1000)  # let the snapshot image load before the screenshot
    page.screenshot(path=str(artifacts / "live.png"), full_page=True)
    with page.expect_download() as download:
        page.get_by_role("button", name=re.compile("Download snapshots")).click()
    assert download.value.suggested_filename == "apate-live-snapshots.zip"

    # stopping releases the stream; starting again works
    streamer.get_by_role("button", name="STOP").click()
    streamer.get_by_role("button", name="START").wait_for()
    page.wait_for_timeout(1500)
    _, stopped_at, _ = _status(page)
    streamer.get_by_role("button", name="START").click()
    _wait_for(page, lambda p, n, f: n > stopped_at, seconds=45)
    streamer.get_by_role("button", name="STOP").click()
