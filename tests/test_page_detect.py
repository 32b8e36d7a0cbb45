"""AppTest for the Detect page: upload, background analysis, verdict, timeline, frame + heatmap, cancel."""

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
    monkeypatch.setenv("APATE_MODELS_DIR", str(tmp_path / "models"))
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


def _page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / "detect.py"), default_timeout=TIMEOUT)
    return at.run()


def _settle(at: AppTest, seconds: float = TIMEOUT) -> AppTest:
    """Wait for the background job, then rerun so the page shows its outcome."""
    job = at.session_state["detect_job"]
    job.wait(seconds)
    assert job.done, "analysis did not finish in time"
    return at.run()


def _errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def test_upload_video_shows_verdict_timeline_and_heatmap():
    at = _page()
    assert not at.exception and not at.error
    at.selectbox(key="detect_model").set_value("resnet18")
    at.number_input(key="detect_fps").set_value(1.0)
    data = (ROOT / "assets" / "samples" / "coffee_pan.mp4").read_bytes()
    at.file_uploader(key="detect_upload").upload("coffee_pan.mp4", data, "video/mp4").run()
    assert not at.exception, at.exception
    at = _settle(at)
    assert not at.exception, at.exception
    assert not _errors(at), _errors(at)
    verdict = "\n".join(str(m.value) for m in at.markdown)
    assert "P(fake)" in verdict and any(w in verdict for w in ("FAKE", "REAL", "UNCERTAIN", "GENERATED SEGMENTS"))
    assert "Decided by " in verdict
    labels = {m.label for m in at.metric}
    assert {"Mean", "Max", "Top-8 mean"} <= labels
    assert any("untrained" in w.value for w in at.warning)  # resnet18 here is randomly initialised
    assert len(at.get("plotly_chart")) == 1
    captions = [img.proto.imgs[0].caption for img in at.get("image")]
    assert any(c.startswith("Frame at") for c in captions)
    assert any(c.startswith("Heatmap") for c in captions)
    assert sum(c.startswith("t = ") for c in captions) == 6  # gallery: all 6 frames are within the top 8
    # pick another frame with the slider: it is shown with its heatmap
    at.select_slider(key="detect_frame").set_value(5).run()
    assert not at.exception
    assert any(c.startswith("Frame at 5.00 s") for c in [i.proto.imgs[0].caption for i in at.get("image")])
    at.slider(key="detect_opacity").set_value(0.8).run()
    assert not at.exception
    # the same input and settings re-open from the store
    at.number_input(key="detect_fps").set_value(2.0).run()
    at = _settle(at)
    at.number_input(key="detect_fps").set_value(1.0).run()
    at = _settle(at)
    assert at.session_state["detect_job"].output.from_store


def test_several_images_give_a_table_and_details(tmp_path):
    import skimage.data

    at = _page()
    at.selectbox(key="detect_model").set_value("resnet18")
    files = []
    for name, arr in [("astronaut.png", skimage.data.astronaut()), ("flat.png", np.full((64, 80, 3), 90, np.uint8))]:
        path = tmp_path / name
        Image.fromarray(arr).save(path)
        files.append((name, path.read_bytes(), "image/png"))
    at.file_uploader(key="detect_upload").set_value(files).run()
    at = _settle(at)
    assert not at.exception and not at.error, (at.exception, _errors(at))
    assert {m.label: m.value for m in at.metric}["Inputs"] == "2"
    assert len(at.dataframe) == 1
    at.selectbox(key="detect_pick").set_value(1).run()
    assert not at.exception
    assert any(s.value == "flat.png" for s in at.subheader)


def test_cancel_stops_the_analysis(tmp_path):
    from tests.media_factory import make_video

    clip = make_video(tmp_path / "long.mp4", "mp4", seconds=40, fps=25, size=(320, 240))
    at = _page()
    at.selectbox(key="detect_model").set_value("resnet18")
    at.number_input(key="detect_fps").set_value(10.0)
    at.file_uploader(key="detect_upload").upload("long.mp4", clip.read_bytes(), "video/mp4").run()
    assert not at.exception
    job = at.session_state["detect_job"]
    assert not job.done, "the job should still be running"
    assert len(at.button(key="detect_cancel").proto.label) > 0
    at.button(key="detect_cancel").click().run()
    job.wait(60)
    assert job.done and job.cancelled and job.run.token.cancelled
    at = at.run()
    assert not at.exception
    assert any("cancelled" in w.value.lower() for w in at.warning)
    assert not at.get("plotly_chart")


def test_refused_upload_shows_an_error_card():
    at = _page()
    at.file_uploader(key="detect_upload").upload("notes.mp4", b"not a video at all", "video/mp4").run()
    at = _settle(at)
    assert not at.exception
    assert len(at.error) == 1 and "not a recognised image or video" in at.error[0].value


def test_refused_url_shows_an_error_card():
    at = _page()
    at.text_input(key="detect_url_input").input("ftp://example.org/clip.mp4")
    at.button(key="detect_fetch").click().run()
    at = _settle(at)
    assert not at.exception
    assert len(at.error) == 1 and "ftp" in at.error[0].value


def test_a_job_waits_its_turn_in_the_shared_queue_and_can_be_cancelled_there(tmp_path):
    """Another session's job holds the server's only slot: this page shows its place in the queue, and Cancel
    drops it from the queue before it ever runs."""
    import threading

    from apate_core.jobs import JobState, shared_queue
    from apate_core.settings import load_settings

    queue = shared_queue(load_settings())
    release = threading.Event()
    others = [queue.submit("detect", lambda progress, cancel: release.wait(60), session="someone-else")
              for _ in range(queue.slots(load_settings().resolved_device()))]
    try:
        at = _page()
        at.selectbox(key="detect_model").set_value("resnet18")
        path = tmp_path / "flat.png"
        Image.fromarray(np.full((64, 80, 3), 90, np.uint8)).save(path)
        at.file_uploader(key="detect_upload").upload("flat.png", path.read_bytes(), "image/png").run()
        assert not at.exception
        job = at.session_state["detect_job"]
        assert job.run.state is JobState.QUEUED
        assert any("Waiting in the queue: position 1" in (p.proto.text or "") for p in at.get("progress"))
        at.button(key="detect_cancel").click().run()
        assert job.run.state is JobState.CANCELLED and job.run.started is None  # never ran
    finally:
        release.set()
        for other in others:
            other.wait(10)


def test_a_face_photo_shows_the_face_swap_check_and_whether_it_decided():
    at = _page()
    assert at.toggle(key="detect_face_evidence").value  # on by default
    at.selectbox(key="detect_model").set_value("resnet18")
    at.selectbox(key="detect_cam").set_value("none")
    data = (ROOT / "assets" / "faces" / "obama.jpg").read_bytes()
    at.file_uploader(key="detect_upload").upload("obama.jpg", data, "image/jpeg").run()
    at = _settle(at)
    assert not at.exception and not _errors(at), _errors(at)
    captions = [str(c.value) for c in at.caption]
    line = next(c for c in captions if c.startswith("Face evidence (apate-faceswap): 1 face(s) in 1 frame(s)"))
    assert "Shown, not used in the verdict" in line  # the shipped model is gated out (its card's verdict_use)
    at.toggle(key="detect_face_evidence").set_value(False).run()
    at = _settle(at)
    assert not any(str(c.value).startswith("Face evidence") for c in at.caption)
