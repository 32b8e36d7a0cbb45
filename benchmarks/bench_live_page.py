"""Live as an analyst sees it: processed frames per second on the dashboard's Live page, camera streamed from a
real Chromium (its fake camera, 640x480), with the shipped Streamlit configuration and with Streamlit's default of a
full garbage collection after every script and fragment run.

    python benchmarks/bench_live_page.py [--seconds 20] [--chromium PATH]

For each configuration: a fresh dashboard, the Live page with the defaults (320x240 processing, no heatmaps),
START, 10 s to settle, then the page's own "Processed fps" read once a second; prints the median and range.
`bench_live.py` measures the processor alone, without the page or the browser.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sessions import ARGS, parse_browser_args, start_server  # noqa: E402

CAMERA_ARGS = [*ARGS, "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
CURRENT = "[data-testid='stElementContainer']:not([data-stale='true'])"  # not a previous run's element
CONFIGURATIONS = {"shipped (runner.postScriptGC = false)": ("--runner.postScriptGC", "false"),
                  "Streamlit's default (postScriptGC = true)": ("--runner.postScriptGC", "true")}


def processed_fps(page) -> float:
    metric = page.locator(CURRENT).filter(has_text="Processed fps").last
    return float(metric.get_by_test_id("stMetricValue").inner_text())


def measure(pw, chromium: str, options: tuple[str, ...], seconds: int) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_server(Path(tmp), *options)
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CAMERA_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 1000}, permissions=["camera"]).new_page()
            page.set_default_timeout(120_000)
            page.goto(url + "/live")
            page.get_by_text("Processed fps").wait_for()
            page.frame_locator("iframe[title*='webrtc_streamer']").get_by_role("button", name="START").click()
            deadline = time.monotonic() + 90
            while processed_fps(page) == 0 and time.monotonic() < deadline:
                page.wait_for_timeout(500)
            page.wait_for_timeout(10_000)
            samples = []
            for _ in range(seconds):
                samples.append(processed_fps(page))
                page.wait_for_timeout(1000)
            return samples
        finally:
            browser.close()
            proc.terminate()
            proc.wait(timeout=20)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=20)
    args = parse_browser_args(parser)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        for label, options in CONFIGURATIONS.items():
            fps = measure(pw, args.chromium, options, args.seconds)
            print(f"{label}: median {statistics.median(fps):.1f} processed fps "
                  f"(min {min(fps):.1f}, max {max(fps):.1f}, {len(fps)} readings)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
