"""AppTest for the Protect page: upload, protect in a worker thread, results, downloads, cancel, refusals."""

import io
import json
import time
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 120
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def private_env(tmp_path, monkeypatch):
    monkeypatch.setenv("APATE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("APATE_MODELS_DIR", str(tmp_path / "models"))
    from apate_core.protect import job
    from app import protect_ui

    original = job.available_generators

    def tiny(settings, family=None, shipped_dir=None):  # a 32x32 model input keeps the demo quick
        return [job.GeneratorChoice(c.family, c.label, c.path, {**c.config, "repeat_num": 1}
                                    if c.family != "cyclegan" else {"ngf": 8, "n_blocks": 1}, c.source, (32, 32))
                for c in original(settings, family, tmp_path / "no-shipped")]

    monkeypatch.setattr(protect_ui, "available_generators", tiny)
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


def png(h=48, w=64, seed=0) -> bytes:
    rgb = np.random.default_rng(seed).integers(20, 230, (h, w, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def wait_for_job(at: AppTest, seconds: float = 90) -> AppTest:
    deadline = time.time() + seconds
    while time.time() < deadline:
        job = at.session_state["protect_job"] if "protect_job" in at.session_state else None
        if job is None or job.done:
            return at.run()
        time.sleep(0.1)
    raise AssertionError("the protect job did not finish in time")


def page() -> AppTest:
    return AppTest.from_file(str(ROOT / "pages" / "protect.py"), default_timeout=TIMEOUT).run()


def test_empty_page_shows_controls_and_a_hint():
    at = page()
    assert not at.exception and not at.error
    assert "Drop one or more photos" in at.info[-1].value
    assert at.button(key="protect_run").disabled
    assert at.radio(key="protect_target_True").value == "identity"  # the default before any photo
    assert at.checkbox(key="identity_auto").value and at.slider(key="identity_eps").disabled
    at.radio(key="protect_target_True").set_value("generators").run()
    assert any("random weights" in w.value for w in at.warning)  # no weights: the demo is clearly labelled
    assert at.slider(key="protect_eps").value == 6.375
    assert any("0.0500" in c.value for c in at.caption)


def test_protect_two_images_shows_views_metrics_tables_and_downloads():
    at = page()
    at.file_uploader(key="protect_upload").set_value([("a.png", png(), "image/png"),
                                                      ("b.png", png(40, 30, 1), "image/png")]).run()
    at.number_input(key="protect_iters").set_value(2)
    at.multiselect(key="protect_targets_stargan_0").set_value(["Male", "Young"]).run()
    assert not at.exception and not at.error
    at.button(key="protect_run").click().run()
    at = wait_for_job(at)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    captions = [img.proto.imgs[0].caption for img in at.get("image")]
    assert captions[0] == "Original · 64×48" and captions[1] == "Protected · a.protected.png"
    assert captions[2].startswith("Perturbation") and any("Original left of the seam" in c for c in captions)
    assert sum("· on original" in c for c in captions) == 2 and sum("· on protected" in c for c in captions) == 2
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["L∞ (true max)"].split("/")[0]) <= 6 and metrics["Disrupted targets"].endswith("/2")
    tables = at.dataframe
    assert len(tables) == 3  # batch summary, output distortion, robustness
    assert list(tables[2].value["transform"]) == ["jpeg95", "jpeg75", "jpeg50", "resize0.5", "blur1.5"]
    # second image in the view selector, and the downloads
    at.selectbox(key="protect_view").set_value(1).run()
    assert [img.proto.imgs[0].caption for img in at.get("image")][0] == "Original · 30×40"
    keys = {b.proto.id for b in at.get("download_button")}
    assert len(keys) == 3
    assert "protect_result" in at.session_state
    result = at.session_state["protect_result"]
    saved = Image.open(io.BytesIO(result.images[1].encoded))
    assert saved.format == "PNG" and saved.size == (30, 40)
    assert json.loads(result.metrics_json())["images"][1]["width"] == 30


def test_jpeg_output_warns_and_adds_the_saved_file_row():
    at = page()
    at.file_uploader(key="protect_upload").upload("a.png", png(), "image/png").run()  # no face: generators
    at.selectbox(key="protect_family").set_value("cyclegan").run()
    at.radio(key="protect_format").set_value("jpeg")
    at.selectbox(key="protect_attack").set_value("fgsm").run()
    assert any("re-compresses" in w.value for w in at.warning)
    at.button(key="protect_run").click().run()
    at = wait_for_job(at)
    assert not at.exception and not at.error
    assert list(at.dataframe[1].value["transform"])[-1] == "saved as jpeg q95"
    assert any("Saved as JPEG" in w.value for w in at.warning)


def test_cancel_stops_the_job():
    at = page()
    at.file_uploader(key="protect_upload").upload("a.png", png(), "image/png").run()
    at.number_input(key="protect_iters").set_value(200).run()
    at.button(key="protect_run").click().run()
    assert not at.exception
    at.button(key="protect_cancel").click().run()
    at = wait_for_job(at)
    assert not at.exception and not at.error
    assert any("cancelled" in i.value for i in at.info)
    assert "protect_result" not in at.session_state


def test_video_upload_is_refused_with_a_clear_message():
    at = page()
    data = (ROOT / "assets" / "samples" / "coffee_pan.mp4").read_bytes()
    at.file_uploader(key="protect_upload").upload("clip.mp4", data, "video/mp4").run()
    assert not at.exception
    assert len(at.error) == 1 and "Protect works on still images" in at.error[0].value
    assert at.button(key="protect_run").disabled


def test_shipped_default_says_what_it_was_trained_on(monkeypatch):
    from apate_core.protect import job
    from app import protect_ui

    monkeypatch.setattr(protect_ui, "available_generators", job.available_generators)  # the real shipped weights
    at = page()
    at.radio(key="protect_target_True").set_value("generators").run()
    assert not at.exception and not at.error
    card = json.loads((ROOT / "assets" / "models" / "protect" / f"{at.selectbox(key='protect_family').value}.json")
                      .read_text())
    (about,) = [i.value for i in at.info if "in-house weights" in i.value]
    assert card["task"] in about and card["training"]["kind"] in about  # says it is not the released GAN
    assert f"{card['efficacy']['disrupted']:.0%} of {card['efficacy']['pairs']} (photo, target) pairs" in about
    assert not any("random weights" in w.value for w in at.warning)


def test_a_portrait_defaults_to_identity_cloaking_and_shows_faces_distances_and_robustness():
    from skimage import data

    buffer = io.BytesIO()
    Image.fromarray(data.astronaut()[:260, 100:400]).save(buffer, format="PNG")
    at = page()
    at.file_uploader(key="protect_upload").set_value([("portrait.png", buffer.getvalue(), "image/png")]).run()
    assert not at.exception and not at.error
    assert at.radio(key="protect_target_True").value == "identity"
    assert any("1 face(s) found in 1 of 1" in c.value for c in at.caption)
    at.number_input(key="identity_iters").set_value(12)
    at.number_input(key="identity_samples").set_value(1).run()
    at.button(key="protect_run").click().run()
    at = wait_for_job(at, 240)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    captions = [img.proto.imgs[0].caption for img in at.get("image")]
    assert captions[0] == "Original · 1 face(s) found" and captions[1] == "Protected · portrait.protected.png"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Faces no longer matched"] == "100%" and int(metrics["L∞ (true max)"].split("/")[0]) <= 8
    per_face, robustness = at.dataframe[0].value, at.dataframe[1].value
    assert list(per_face["condition"]) == ["as saved"] and float(per_face["protected"][0]) > 0.6
    assert list(robustness["condition"]) == ["as saved", "JPEG 95", "JPEG 75", "JPEG 50", "resized to half"]
    result = at.session_state["protect_result"]
    assert result.images[0].metrics["unmatched"]["JPEG 75"] == 1.0
