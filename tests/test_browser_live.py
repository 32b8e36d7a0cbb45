"""Live page in a real Chromium with a fake camera and a fake screen: stream, see processed frames arrive, snapshot,
stop, restart; screen sharing refused or missing.

Uses the shared dashboard (no ICE servers: loopback host candidates only) and its own browser with Chromium's
fake media device flags.
"""

from __future__ import annotations

import re
import time

import pytest

from conftest import BROWSER_ARGS

pytestmark = pytest.mark.browser

FAKE_CAMERA_ARGS = [*BROWSER_ARGS, "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


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


# While a rerun is under way Streamlit keeps the previous run's elements on the page, marked stale, beside the
# new ones; read only the current ones.
CURRENT = "[data-testid='stElementContainer']:not([data-stale='true'])"


def _status(page) -> tuple[int, int, float]:
    """(timeline points, processed frames, processed fps) as the page shows them."""
    caption = page.locator(CURRENT).filter(has_text=re.compile(r"points in the last minute")).last.inner_text()
    points, processed = (int(v) for v in re.findall(r"(\d+) (?:points|processed)", caption))
    fps_metric = page.locator(CURRENT).filter(has_text="Processed fps").last
    fps = float(fps_metric.get_by_test_id("stMetricValue").inner_text())
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


def test_live_stream_processes_frames_and_takes_a_snapshot(dashboard, camera_page, artifacts):
    page = camera_page
    page.goto(dashboard + "/live")
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
    page.get_by_text("Snapshots", exact=True).wait_for()
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


# ---- a shared screen instead of the camera ---------------------------------------------------------------------
# The same flags serve getDisplayMedia: with --use-fake-device-for-media-stream and --use-fake-ui-for-media-stream
# Chromium skips the picker and shares a synthetic screen ("screen:-3:0", displaySurface "monitor", 1280x720).


BORDER_DRAWN = """v => {
  const c = document.createElement("canvas");
  [c.width, c.height] = [v.videoWidth, v.videoHeight];
  const g = c.getContext("2d");
  g.drawImage(v, 0, 0);
  const at = (x, y) => Array.from(g.getImageData(x, y, 1, 1).data.slice(0, 3));
  const [w, h] = [c.width, c.height];
  const edges = [at(2, h >> 1), at(w - 3, h >> 1), at(w >> 1, 2), at(w >> 1, h - 3)];
  // one colour at the middle of all four edges, with red in it (every score colour has; the fake screen has none)
  return edges.every(p => p.every((value, i) => Math.abs(value - edges[0][i]) < 40)) && edges[0][0] > 35;
}"""


def _screen_share(page):
    page.get_by_role("radio", name="Screen or tab", exact=True).click()
    return page.frame_locator("iframe[title*='screen_share']")


def test_live_screen_share_streams_the_shared_screen_and_stops(dashboard, camera_page, artifacts):
    page = camera_page
    page.goto(dashboard + "/live")
    page.get_by_text("Processed fps").wait_for(timeout=90_000)
    share = _screen_share(page)
    share.get_by_role("button", name="Share screen or tab").click()
    share.get_by_text(re.compile(r"Sharing your screen \(\d+×\d+\)")).wait_for(timeout=45_000)

    # processed frames come back: fps above zero, the timeline gains points, the returned video plays
    _wait_for(page, lambda p, n, f: p >= 2 and f > 0, seconds=45)
    page.locator("[data-testid='stPlotlyChart'] .scatterlayer .point").first.wait_for(state="attached")
    video = share.locator("video").element_handle()
    video.owner_frame().wait_for_function("v => v.videoWidth > 0 && v.readyState >= 2", arg=video, timeout=20_000)
    # ... with the overlay drawn on it: the score's coloured border all round the (green) fake screen
    video.owner_frame().wait_for_function(BORDER_DRAWN, arg=video, timeout=30_000)
    # while sharing the source cannot be switched (the camera would fight the screen for the processor)
    assert page.get_by_role("radio", name="Camera", exact=True).is_disabled()
    page.screenshot(path=str(artifacts / "live-screen.png"), full_page=True)

    # stopping releases the stream: processing stops; sharing again works
    share.get_by_role("button", name="Stop sharing").click()
    share.get_by_role("button", name="Share screen or tab").wait_for()
    page.wait_for_timeout(2500)
    _, stopped_at, _ = _status(page)
    page.wait_for_timeout(2500)
    assert _status(page)[1] == stopped_at, "frames were still processed after Stop sharing"
    assert page.get_by_role("radio", name="Camera", exact=True).is_enabled()
    share.get_by_role("button", name="Share screen or tab").click()
    _wait_for(page, lambda p, n, f: n > stopped_at, seconds=45)
    share.get_by_role("button", name="Stop sharing").click()
    share.get_by_role("button", name="Share screen or tab").wait_for()


DENY = ("navigator.mediaDevices.getDisplayMedia = () => "
        "Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));")
MISSING = "delete MediaDevices.prototype.getDisplayMedia;"


def test_live_screen_share_explains_a_refusal_and_a_browser_without_it(dashboard, camera_page):
    denied = camera_page
    denied.add_init_script(DENY)
    denied.goto(dashboard + "/live")
    denied.get_by_text("Processed fps").wait_for(timeout=90_000)
    share = _screen_share(denied)
    share.get_by_role("button", name="Share screen or tab").click()
    share.get_by_text("Screen sharing was not allowed").wait_for()
    assert share.get_by_role("button", name="Share screen or tab").is_visible()  # one can try again

    missing = denied.context.new_page()
    missing.add_init_script(MISSING)
    missing.goto(dashboard + "/live")
    missing.get_by_text("Processed fps").wait_for(timeout=90_000)
    share = _screen_share(missing)
    share.get_by_text("This browser does not offer screen or tab sharing").wait_for()
    assert share.get_by_role("button", name="Share screen or tab").count() == 0
