"""The analysis history: entries written beside real results, listing, filters, notes, pins and deletion."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from apate_core import history
from apate_core.detect.pipeline import DetectParams, analyse_path, load_detector
from apate_core.settings import load_settings
from apate_core.store import ResultStore


@pytest.fixture
def settings(tmp_path):
    return load_settings({"APATE_CACHE_DIR": str(tmp_path / "cache")})


def _image(path, value: int, size=(64, 80)):
    rng = np.random.default_rng(value)
    Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(path)
    return path


def test_detect_results_are_listed_newest_first_with_thumbnail_and_model(tmp_path, settings):
    detector = load_detector("resnet18", settings)
    params = DetectParams(cam=None)
    with ResultStore(tmp_path / "store", 50 * 2**20) as store:
        first = analyse_path(_image(tmp_path / "first.png", 1), settings, detector, params, store=store)
        second = analyse_path(_image(tmp_path / "second.png", 2), settings, detector, params, store=store)
        listed = history.entries(store)
        assert [e.name for e in listed] == ["second.png", "first.png"]
        entry = listed[1]
        assert entry.key == first.key and entry.kind == "detect" and entry.label == first.label
        assert entry.model == "resnet18" and entry.weights_sha256 == detector.weights_sha256
        assert f"{first.score:.3f}" in entry.summary and entry.params["fps"] == params.fps
        assert entry.thumbnail.dtype == np.uint8 and max(entry.thumbnail.shape[:2]) == 80  # small: kept as is
        assert second.key != first.key
        # opening a result again from the store adds no entry and keeps the first time
        again = analyse_path(tmp_path / "first.png", settings, detector, params, store=store)
        assert again.from_store and [e.created for e in history.entries(store)] == [e.created for e in listed]


def test_filters_notes_tags_pin_and_delete(tmp_path):
    with ResultStore(tmp_path / "store", 50 * 2**20) as store:
        for n, (kind, label) in enumerate([("detect", "fake"), ("detect", "real"), ("protect", "identity")]):
            store.put(f"r{n}", {"n": n})
            history.record(store, history.HistoryEntry(f"r{n}", kind, f"file{n}.jpg", 100.0 + n, f"s{n}", label),
                           np.full((300, 200, 3), n, np.uint8))
        assert [e.key for e in history.entries(store, kind="detect")] == ["r1", "r0"]
        assert [e.key for e in history.entries(store, label="fake")] == ["r0"]
        history.annotate(store, "r1", notes="Sent by the desk in Lyon", tags=["case-12", " lyon ", ""])
        assert [e.key for e in history.entries(store, text="lyon case-12")] == ["r1"]
        entry = history.get(store, "r1")
        assert entry.tags == ["case-12", "lyon"] and entry.thumbnail.shape == (96, 64, 3)
        # a refreshed entry (the same result written again) keeps what the analyst added
        history.record(store, history.HistoryEntry("r1", "detect", "file1.jpg", 500.0, "again", "real"))
        kept = history.get(store, "r1")
        assert kept.notes == "Sent by the desk in Lyon" and kept.thumbnail is not None and kept.summary == "again"
        history.delete(store, "r0")
        assert "r0" not in store and [e.key for e in history.entries(store)] == ["r1", "r2"]
        store.delete("r2")  # a result evicted or deleted elsewhere: its entry no longer lists
        assert [e.key for e in history.entries(store)] == ["r1"]


def test_a_pinned_entry_survives_the_size_limit(tmp_path):
    blob = np.random.default_rng(0).integers(0, 255, (200, 1000), dtype=np.uint8)  # 200 kB, incompressible
    with ResultStore(tmp_path / "store", 900_000) as store:
        store.put("keep", {"n": 0}, {"a": blob})
        history.record(store, history.HistoryEntry("keep", "detect", "keep.jpg", 1.0, "s", "fake"))
        store.put("drop", {"n": 1}, {"a": blob})
        history.record(store, history.HistoryEntry("drop", "detect", "drop.jpg", 2.0, "s", "fake"))
        history.annotate(store, "keep", pinned=True)
        assert store.pinned_bytes() > 200_000
        for n in range(6):  # more than the limit holds: least recently used entries go, except the pinned one
            store.put(f"filler{n}", {"n": n}, {"a": blob})
        assert "keep" in store and history.get(store, "keep").pinned
        assert "drop" not in store
        history.annotate(store, "keep", pinned=False)
        for n in range(6, 12):
            store.put(f"filler{n}", {"n": n}, {"a": blob})
        assert "keep" not in store


def test_export_zip_holds_each_result_folder(tmp_path, settings):
    import io
    import json
    import zipfile

    detector = load_detector("resnet18", settings)
    with ResultStore(tmp_path / "store", 50 * 2**20) as store:
        result = analyse_path(_image(tmp_path / "a b.png", 3), settings, detector, DetectParams(cam=None),
                              store=store)
        store.put("p1", {"metrics": {"quality": {"ssim": 0.97}}}, {"protected": np.zeros((8, 8, 3), np.uint8)})
        history.record(store, history.HistoryEntry("p1", "protect", "face.jpg", 9.0, "identity", "identity"))
        history.annotate(store, result.key, notes="checked twice")
        names = zipfile.ZipFile(io.BytesIO(history.export_zip(store, [result.key, "p1", "gone"]))).namelist()
        archive = zipfile.ZipFile(io.BytesIO(history.export_zip(store, [result.key, "p1"])))
        assert {"detect-a_b/result.json", "detect-a_b/report.html", "detect-a_b/entry.json",
                "protect-face/result.json", "protect-face/protected.png", "protect-face/entry.json"} <= set(names)
        assert json.loads(archive.read("detect-a_b/result.json"))["score"] == pytest.approx(result.score)
        assert json.loads(archive.read("detect-a_b/entry.json"))["notes"] == "checked twice"
        reopened = history.open_detect(store, result.key)
        assert reopened.from_store and reopened.score == result.score and reopened.label == result.label


def test_inspect_reports_are_kept_and_listed(tmp_path, settings):
    from apate_core.inspection import inspect_path

    with ResultStore(tmp_path / "store", 50 * 2**20) as store:
        report = inspect_path(_image(tmp_path / "scan.png", 4), settings, store=store)
        (entry,) = history.entries(store, kind="inspect")
        assert entry.name == "scan.png" and "png" in entry.summary and entry.thumbnail.shape == (64, 80, 3)
        assert store.get(entry.key).meta["media"]["sha256"] == report.media.sha256
        assert inspect_path(tmp_path / "scan.png", settings).media.sha256 == report.media.sha256  # no store: fine
        assert len(history.entries(store)) == 1
