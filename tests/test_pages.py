"""AppTest per page: each page runs headless with real engine calls on small media."""

from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 180


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("APATE_CACHE_DIR", str(tmp_path / "cache"))
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


def _page(name: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / name), default_timeout=TIMEOUT)
    return at.run()


def _markdown(at: AppTest) -> str:
    return "\n".join(str(m.value) for m in at.markdown)


def test_home_shows_device_store_and_samples():
    at = _page("home.py")
    assert not at.exception
    labels = {m.label: m.value for m in at.metric}
    assert labels["Compute device"] in ("CPU",) or labels["Compute device"].startswith("GPU")
    assert labels["Result store"].endswith("MB")
    samples = [b for b in at.button if b.key and b.key.startswith("sample-")]
    assert {b.key for b in samples} >= {"sample-coffee_pan.mp4", "sample-astronaut.jpg"}


def test_inspect_upload_of_a_video_shows_metadata_video_and_frames(tmp_path):
    data = (ROOT / "assets" / "samples" / "coffee_pan.mp4").read_bytes()
    at = _page("inspect.py")
    assert not at.exception and not at.error
    at.file_uploader(key="inspect_upload").upload("clip.mov", data, "video/quicktime").run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Type"] == "video · mp4"  # judged by content, not the .mov name
    assert metrics["Resolution"] == "640×360"
    assert metrics["Duration"].startswith("6.0 s · 24 fps")
    videos = at.get("video")
    assert len(videos) == 1
    images = at.get("image")
    captions = [img.proto.imgs[0].caption for img in images]
    assert captions[:3] == ["t = 0.00 s", "t = 1.00 s", "t = 2.00 s"] and len(captions) == 6


def test_inspect_image_upload_and_fps_change_keep_the_report(tmp_path):
    buffer = tmp_path / "p.png"
    Image.fromarray(np.full((30, 40, 3), 200, np.uint8)).save(buffer)
    at = _page("inspect.py")
    at.file_uploader(key="inspect_upload").upload("p.png", buffer.read_bytes(), "image/png").run()
    assert not at.exception and not at.error
    assert {m.label: m.value for m in at.metric}["Resolution"] == "40×30"
    at.number_input(key="inspect_fps").set_value(2.0).run()
    assert not at.exception and len(at.get("image")) == 1


def test_inspect_refused_upload_shows_an_error_card_not_a_traceback():
    at = _page("inspect.py")
    at.file_uploader(key="inspect_upload").upload("notes.mp4", b"just some text, not a video", "video/mp4").run()
    assert not at.exception
    assert len(at.error) == 1
    message = at.error[0].value
    assert "not a recognised image or video" in message and "Accepted:" in message


def test_inspect_refused_url_shows_an_error_card():
    at = _page("inspect.py")
    at.text_input(key="inspect_url").set_value("http://169.254.169.254/latest/meta-data")
    at.button[0].click().run()
    assert not at.exception
    assert len(at.error) == 1 and "169.254.169.254" in at.error[0].value


def test_inspect_unexpected_failure_is_a_card_and_the_next_upload_works(monkeypatch, tmp_path):
    import apate_core.inspection as inspection

    real = inspection.inspect_path

    def broken(*args, **kwargs):
        raise RuntimeError("decoder exploded")

    monkeypatch.setattr(inspection, "inspect_path", broken)
    at = _page("inspect.py")
    image = tmp_path / "p.png"
    Image.fromarray(np.full((30, 40, 3), 90, np.uint8)).save(image)
    at.file_uploader(key="inspect_upload").upload("p.png", image.read_bytes(), "image/png").run()
    assert not at.exception and len(at.error) == 1 and "RuntimeError" in at.error[0].value
    monkeypatch.setattr(inspection, "inspect_path", real)
    at.file_uploader(key="inspect_upload").clear().upload("p.png", image.read_bytes(), "image/png").run()
    assert not at.exception and not at.error
    assert {m.label: m.value for m in at.metric}["Resolution"] == "40×30"
