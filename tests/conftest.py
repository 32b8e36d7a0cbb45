"""Shared fixtures: isolated settings, the shared test media, a live dashboard server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# Keep the two cores for the test at hand rather than oversubscribing them.
os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(autouse=True)
def _restore_main_module():
    """AppTest runs a page as ``__main__`` and leaves it in sys.modules; a process spawned afterwards (the scan's
    workers) would then re-run that page on start-up. Put the real main module back after every test."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest.fixture
def settings(tmp_path):
    from apate_core.settings import load_settings

    return load_settings({}, cache_dir=str(tmp_path / "cache"), models_dir=str(tmp_path / "models"))


@pytest.fixture(scope="module")
def one_thread():
    """Tiny convolutions run faster on one thread than on two cores shared with other work."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def testdata() -> Path:
    """The shared real media (../shared/testdata), pointed at by APATE_TESTDATA."""
    folder = os.environ.get("APATE_TESTDATA", "")
    if not folder:
        pytest.skip("APATE_TESTDATA not set: the shared real test media are not available in this clone")
    path = Path(folder)
    if not path.is_dir():
        pytest.fail(f"APATE_TESTDATA={folder} is not a folder")
    return path


@pytest.fixture(scope="session")
def chromium() -> str:
    if CHROMIUM:
        return CHROMIUM
    if os.environ.get("APATE_REQUIRE_BROWSER") == "1":
        pytest.fail("APATE_REQUIRE_BROWSER=1 but no chromium is installed (apt-get install chromium)")
    pytest.skip("no chromium on this machine; real-browser tests skipped (set APATE_REQUIRE_BROWSER=1 to require)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path, seconds: float = 90) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dashboard exited early:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"dashboard did not become healthy in time:\n{log.read_text()}")


@pytest.fixture(scope="session")
def dashboard(tmp_path_factory, chromium) -> str:
    """A real ``streamlit run app/main.py`` on a free loopback port, with a private cache and models folder.

    No ICE servers (the default): the Live page's WebRTC uses host candidates on loopback only.
    """
    folder = tmp_path_factory.mktemp("dashboard")
    port = _free_port()
    env = dict(os.environ, APATE_CACHE_DIR=str(folder / "cache"), APATE_MODELS_DIR=str(folder / "models"),
               APATE_ICE_SERVERS="")
    cmd = [sys.executable, "-m", "streamlit", "run", "app/main.py", "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true"]
    log = folder / "server.log"
    with open(log, "w") as out:  # a file, not a pipe: an unread pipe would fill up and stall the server
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"]


@pytest.fixture
def browser_page(chromium, tmp_path):
    """A Playwright page in Debian's chromium (no browser download: executable_path)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=BROWSER_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(60_000)
        try:
            yield page
        finally:
            context.close()
            browser.close()


ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
