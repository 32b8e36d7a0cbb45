"""Many analysts, one server: ten browser sessions analyse ten different files at once, against the same jobs run
one after another, with the server's peak memory.

    python benchmarks/bench_sessions.py [--sessions 10] [--chromium PATH]

Starts ``streamlit run app/main.py`` on a free loopback port with a fresh store, opens one Chromium context per
session (Playwright, Debian's chromium), and on the Detect page uploads a different 640x480 photo in each. Figures:

* at once: from the first upload to the last verdict, all sessions uploading together (the job queue runs
  APATE_JOB_SLOTS of them at a time, the rest wait their turn and show their place);
* one after another: the same number of new photos (fresh content, so the store cannot help), one per session,
  each upload waiting for the previous verdict;
* peak RSS of the server process (VmHWM), read after each phase.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


def photos(folder: Path, n: int, seed: int) -> list[Path]:
    out = []
    for i in range(n):
        rng = np.random.default_rng(seed + i)
        base = np.linspace(0, 255, 640, dtype=np.float32)[None, :, None] * rng.uniform(0.3, 1.0, (1, 1, 3))
        path = folder / f"photo-{seed + i}.png"
        Image.fromarray(np.clip(base + rng.normal(0, 20, (480, 640, 3)), 0, 255).astype(np.uint8)).save(path)
        out.append(path)
    return out


def start_server(folder: Path, *streamlit_options: str) -> tuple[subprocess.Popen, str]:
    """The dashboard on a free loopback port with its store in folder; streamlit_options override
    .streamlit/config.toml (e.g. "--runner.postScriptGC", "true")."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = dict(os.environ, APATE_CACHE_DIR=str(folder / "cache"), APATE_MODELS_DIR=str(folder / "models"))
    log = open(folder / "server.log", "w")  # noqa: SIM115 - the server's lifetime
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app/main.py", "--server.port", str(port),
                             "--server.address", "127.0.0.1", "--server.headless", "true", *streamlit_options],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(180):
        try:
            if urllib.request.urlopen(url + "/_stcore/health", timeout=2).status == 200:
                return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"the dashboard did not start; see {folder / 'server.log'}")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def open_detect(browser, url: str):
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.set_default_timeout(600_000)
    page.goto(url + "/detect")
    page.get_by_text("Drop a video, or several images").wait_for()
    return page


def upload(page, path: Path) -> None:
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(path))


def verdict(page, path: Path) -> None:
    page.locator("h3", has_text=path.name).wait_for()
    page.get_by_text("Top-8 mean").wait_for()


def parse_browser_args(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """The benchmark's arguments plus --chromium (Debian's by default), which must exist."""
    parser.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"))
    args = parser.parse_args()
    if not args.chromium:
        raise SystemExit("needs Debian's chromium (apt-get install chromium)")
    return args


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=10)
    args = parse_browser_args(parser)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        together, apart = photos(folder, args.sessions, 1000), photos(folder, args.sessions, 2000)
        proc, url = start_server(folder)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=args.chromium, headless=True, args=ARGS)
                warm = open_detect(browser, url)  # load the model once, outside both timings
                upload(warm, photos(folder, 1, 1)[0])
                warm.get_by_text("Top-8 mean").wait_for()
                pages = [open_detect(browser, url) for _ in range(args.sessions)]
                started = time.perf_counter()
                for page, path in zip(pages, together):
                    upload(page, path)
                for page, path in zip(pages, together):
                    verdict(page, path)
                at_once = time.perf_counter() - started
                rss_together = peak_rss_mb(proc.pid)
                fresh = [open_detect(browser, url) for _ in range(args.sessions)]  # one upload per session
                started = time.perf_counter()
                for page, path in zip(fresh, apart):
                    upload(page, path)
                    verdict(page, path)
                one_by_one = time.perf_counter() - started
                browser.close()
            rss = peak_rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    print(f"{args.sessions} sessions, 640x480 photos, default detector, {os.cpu_count()} CPU cores")
    print(f"at once:            {at_once:6.1f} s  ({args.sessions / at_once:.2f} jobs/s)")
    print(f"one after another:  {one_by_one:6.1f} s  ({args.sessions / one_by_one:.2f} jobs/s)")
    print(f"at once / one after another: {at_once / one_by_one:.2f}")
    print(f"server peak RSS: {rss_together:.0f} MB after the sessions at once, {rss:.0f} MB at the end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
