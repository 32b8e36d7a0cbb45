"""Detect pipeline: aggregation and verdict band, store hits, top-k heatmaps, faces, cancellation, schema."""

import json
import zipfile
import io

import numpy as np
import pytest
from PIL import Image

from apate_core.detect import create_detector
from apate_core.detect.pipeline import (DetectParams, aggregate, analyse_many, analyse_path, default_detector_name,
                                        frame_view, label_for, suspicious_segments)
from apate_core.errors import Cancelled, InputRefused
from apate_core.progress import CancelToken
from apate_core.store import ResultStore
from tests.media_factory import make_animated_webp, make_video, read_frame_index


@pytest.fixture(scope="module")
def detector(one_thread):
    import torch

    torch.manual_seed(0)
    return create_detector("resnet18", input_size=64)


@pytest.fixture
def store(tmp_path):
    with ResultStore(tmp_path / "store", 512 * 1024 * 1024) as s:
        yield s


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("clip") / "clip.mp4", "mp4", seconds=6, fps=10, size=(160, 120))


@pytest.fixture
def astronaut(tmp_path):
    import skimage.data

    path = tmp_path / "astronaut.png"
    Image.fromarray(skimage.data.astronaut()).save(path)
    return path


@pytest.fixture
def flat(tmp_path):
    path = tmp_path / "flat.png"
    Image.fromarray(np.full((96, 128, 3), 120, np.uint8)).save(path)
    return path


def count_forwards(detector):
    calls = {"n": 0}

    def hook(module, inputs, output):
        calls["n"] += 1

    handle = detector.module.register_forward_hook(hook)
    return calls, handle


# -- aggregation and verdict -------------------------------------------------------------------------------------


def test_aggregate_mean_max_and_top_k_mean():
    agg = aggregate([0.1, 0.9, 0.5, 0.7], top_k=2)
    assert agg["mean"] == pytest.approx(0.55)
    assert agg["max"] == pytest.approx(0.9)
    assert agg["top_k_mean"] == pytest.approx(0.8)
    assert agg["count"] == 4
    assert aggregate([0.3], top_k=8)["top_k_mean"] == pytest.approx(0.3)  # fewer frames than k
    assert aggregate([None, 0.2, None], top_k=8)["mean"] == pytest.approx(0.2)  # frames without a face skipped
    assert aggregate([], top_k=3)["mean"] is None


@pytest.mark.parametrize("score,label", [(0.0, "real"), (0.4, "real"), (0.4000001, "uncertain"), (0.5, "uncertain"),
                                         (0.5999999, "uncertain"), (0.6, "fake"), (1.0, "fake"), (None, "uncertain")])
def test_label_band_edges(score, label):
    assert label_for(score) == label


def test_band_is_a_parameter_recorded_in_params():
    assert label_for(0.55, (0.2, 0.5)) == "fake" and label_for(0.2, (0.2, 0.5)) == "real"
    assert DetectParams(band=(0.3, 0.7)).to_dict()["band"] == [0.3, 0.7]
    with pytest.raises(InputRefused):
        DetectParams(band=(0.7, 0.3))
    with pytest.raises(InputRefused):
        DetectParams(cam="no-such-cam")


def test_suspicious_segments_join_consecutive_frames():
    frames = [{"time": t, "score": s} for t, s in enumerate([0.1, 0.7, 0.8, 0.2, 0.9, None])]
    assert suspicious_segments(frames, 0.6, 1.0) == [{"start": 0.5, "end": 2.5, "peak": 0.8, "frames": 2},
                                                     {"start": 3.5, "end": 4.5, "peak": 0.9, "frames": 1}]


def test_default_detector_is_the_shipped_one_when_registered():
    from apate_core.detect import list_detectors

    from apate_core.detect.pipeline import SHIPPED_DETECTORS

    installed = [name for name in SHIPPED_DETECTORS if name in list_detectors()]
    assert default_detector_name() == (installed[0] if installed else "resnet18")
    if "apate-universal" in list_detectors():
        assert default_detector_name() == "apate-universal"


# -- the pipeline -----------------------------------------------------------------------------------------------


def test_video_result_schema_top_k_heatmaps_and_store_hit(settings, store, detector, clip):
    params = DetectParams(fps=2, top_k=3, cam="gradcam")
    calls, handle = count_forwards(detector)
    seen = []
    try:
        result = analyse_path(clip, settings, detector, params, store=store, progress=lambda f, m: seen.append(f))
        first_calls = calls["n"]
        again = analyse_path(clip, settings, detector, params, store=store)
        assert calls["n"] == first_calls  # the model did not run again
    finally:
        handle.remove()
    assert first_calls > 0 and not result.from_store and again.from_store
    assert again.data["frames"] == result.data["frames"] and again.score == result.score
    assert seen and seen[-1] == 1.0 and all(0.0 <= f <= 1.0 for f in seen)
    data = json.loads(json.dumps(result.data))  # JSON-able
    assert data["kind"] == "video" and data["label"] in ("real", "fake", "uncertain", "segments")
    assert data["verdict"]["label"] == data["label"] and data["verdict"]["decided_by"] in ("model", "segments")
    assert data["score"] == pytest.approx(np.mean([f["score"] for f in data["frames"]]))
    assert data["model"]["name"] == "resnet18" and len(data["model"]["weights_sha256"]) == 64
    assert data["params"]["fps"] == 2 and data["params"]["band"] == [0.4, 0.6]
    assert data["video_path"] == str(clip.resolve()) and data["input"]["sha256"]
    assert "summary" in data["provenance"]
    assert [f["index"] for f in data["frames"]] == list(range(12))
    assert [f["time"] for f in data["frames"]] == pytest.approx([k / 2 for k in range(12)])
    for f in data["frames"]:
        assert set(f) >= {"index", "time", "score", "heatmap", "faces"}
    # heatmaps exist only for the 3 most suspicious frames
    ranked = sorted(data["frames"], key=lambda f: (-f["score"], f["index"]))[:3]
    assert data["top_frames"] == [f["index"] for f in ranked]
    assert sorted(result.heatmap_indices()) == sorted(data["top_frames"])
    assert {f["index"] for f in data["frames"] if f["heatmap"]} == set(data["top_frames"])
    heat = again.heatmap(data["top_frames"][0])
    assert heat.dtype == np.float32 and heat.shape == (120, 160) and 0 <= heat.min() <= heat.max() <= 1
    assert again.arrays[f"heatmap_{data['top_frames'][0]:06d}"].dtype == np.uint8
    assert sum(k.startswith("frame_") for k in result.arrays) == 3  # only top-k frames are kept
    # any other frame is decoded again on request and its heatmap computed once
    other = next(f["index"] for f in data["frames"] if not f["heatmap"])
    image, heat = frame_view(result, other, detector, store=store)
    assert image.shape == (120, 160, 3) and heat.shape == (120, 160)


def test_all_heatmaps_mode(settings, detector, clip):
    result = analyse_path(clip, settings, detector, DetectParams(fps=1, heatmaps="all", top_k=2))
    assert sorted(result.heatmap_indices()) == list(range(6))
    assert all(f["heatmap"] == f"heatmaps/{f['index']:06d}.png" for f in result.frames)
    # the CAM's own forward pass gives the same scores as plain inference
    plain = analyse_path(clip, settings, detector, DetectParams(fps=1, cam=None))
    assert [f["score"] for f in result.frames] == pytest.approx([f["score"] for f in plain.frames], abs=1e-5)
    assert plain.heatmap_indices() == [] and all(f["heatmap"] is None for f in plain.frames)


def test_face_mode_on_astronaut_scores_one_face(settings, detector, astronaut):
    result = analyse_path(astronaut, settings, detector, DetectParams(faces=True))
    frame = result.frames[0]
    assert len(frame["faces"]) == 1 and frame["no_face"] is False
    box = frame["faces"][0]["box"]
    assert 150 < box["x"] < 220 and 40 < box["y"] < 110 and box["w"] > 60
    assert frame["score"] == pytest.approx(frame["faces"][0]["score"])
    assert result.score == pytest.approx(frame["score"]) and not result.data["face_fallback"]
    heat = result.heatmap(0)
    assert heat is not None and heat.shape == (224, 224)
    # the heatmap lies on the face crop only
    assert heat[:10, :].max() == 0 and heat[-10:, :].max() == 0


def test_face_mode_without_a_face_says_so(settings, detector, flat):
    result = analyse_path(flat, settings, detector, DetectParams(faces=True))
    frame = result.frames[0]
    assert frame["faces"] == [] and frame["no_face"] is True
    assert result.data["face_fallback"] is True and result.score is not None
    assert any("No face" in note for note in result.data["notes"])


def test_cancel_stops_and_stores_nothing(settings, store, detector, clip):
    token = CancelToken()

    def progress(fraction, message):
        if fraction > 0.1:
            token.cancel()

    with pytest.raises(Cancelled):
        analyse_path(clip, settings, detector, DetectParams(fps=4), store=store, progress=progress, cancel=token)
    assert store.usage().entries == 0


def test_several_images_one_result_each_and_a_summary(settings, store, detector, astronaut, flat, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    batch = analyse_many([astronaut, flat, bad], settings, detector, DetectParams(cam=None), store=store)
    assert [r.data["input"]["name"] for r in batch.results] == ["astronaut.png", "flat.png"]
    assert batch.errors[0]["name"] == "bad.png"
    summary = batch.summary
    assert summary["inputs"] == 3 and summary["analysed"] == 2 and summary["refused"] == 1
    assert sum(summary["labels"].values()) == 2
    assert summary["max_score"] == pytest.approx(max(r.score for r in batch.results))
    json.dumps(batch.to_dict())


def test_report_files_zip_and_self_contained_html(settings, detector, clip, tmp_path):
    from apate_core.detect.report import heatmaps_zip, report_html, write_result_dir

    result = analyse_path(clip, settings, detector, DetectParams(fps=1, top_k=2))
    path = write_result_dir(result, tmp_path / "out")
    data = json.loads(path.read_text())
    for f in data["frames"]:
        if f["heatmap"]:
            assert Image.open(tmp_path / "out" / f["heatmap"]).size == (160, 120)  # never upscaled
    with zipfile.ZipFile(io.BytesIO(heatmaps_zip(result))) as archive:
        names = set(archive.namelist())
    assert "result.json" in names and {f["heatmap"] for f in data["frames"] if f["heatmap"]} <= names
    page = report_html(result)
    assert "data:image/jpeg;base64," in page and "Plotly.newPlot" in page
    assert 'src="http' not in page and "<script src=" not in page


@pytest.mark.parametrize("method", ["gradcam", "layercam"])
def test_pipeline_heatmaps_equal_full_graph_cam(detector, method):
    """The pipeline back-propagates from the target layer only; the maps must not change."""
    from apate_core.detect import compute_cam_list
    from apate_core.detect.frame_scoring import FrameScorer

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (72, 96, 3), dtype=np.uint8) for _ in range(3)]
    probs, maps = FrameScorer(detector, DetectParams(cam=method), None)._cam(images)
    expected = compute_cam_list(detector, images, method)
    for got, want in zip(maps, expected):
        np.testing.assert_allclose(got, want, atol=1e-4)
    np.testing.assert_allclose(probs, detector.predict_proba(images), atol=1e-5)
    assert all(p.requires_grad for p in detector.module.parameters())  # restored


def test_shipped_model_card_summary_is_its_own_sentence():
    from apate_core.detect import create_detector
    from apate_core.detect.pipeline import model_summary

    summary = model_summary(create_detector("apate"))
    assert summary["trained_on_summary"].startswith("Crops of 18 photos") and not summary["untrained"]
    assert "H.264" in summary["trained_on_summary"] and not summary["trained_on_summary"].endswith("…")


def test_animated_webp_is_analysed_frame_by_frame(settings, detector, tmp_path):
    path = make_animated_webp(tmp_path / "anim.webp", [500] * 5)
    result = analyse_path(path, settings, detector, DetectParams(fps=2, cam=None, top_k=2))
    assert result.data["kind"] == "video" and result.data["input"]["format"] == "webp"
    assert result.data["input"]["duration"] == pytest.approx(2.5)
    assert [f["time"] for f in result.frames] == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0])
    # the animation's own frames, not its first one five times: kept (top 2) or decoded again on request
    assert [read_frame_index(frame_view(result, k, detector)[0]) for k in range(5)] == [0, 1, 2, 3, 4]
