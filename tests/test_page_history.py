"""AppTest for the History page: results made by the engine (as the CLI makes them) listed, reopened from the
store, annotated, pinned, exported and deleted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

from apate_core import history
from apate_core.detect.pipeline import DetectParams, analyse_path, load_detector
from apate_core.settings import load_settings
from apate_core.store import open_store

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def analysed(tmp_path, monkeypatch):
    """Two Detect results in a private store, made outside the dashboard."""
    monkeypatch.setenv("APATE_CACHE_DIR", str(tmp_path / "cache"))
    st.cache_resource.clear()
    settings = load_settings()
    detector = load_detector("resnet18", settings)
    keys = []
    with open_store(settings) as store:
        for n, name in enumerate(["harbour.png", "portrait.png"]):
            path = tmp_path / name
            Image.fromarray(np.random.default_rng(n).integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(path)
            keys.append(analyse_path(path, settings, detector, DetectParams(cam=None), store=store).key)
    yield keys
    st.cache_resource.clear()


def _page() -> AppTest:
    return AppTest.from_file(str(ROOT / "pages" / "history.py"), default_timeout=120).run()


def _markdown(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_lists_reopens_and_goes_back(analysed):
    at = _page()
    assert not at.exception
    text = _markdown(at)
    assert text.index("portrait.png") < text.index("harbour.png")  # newest first
    assert "Result store:" in at.get("progress")[0].proto.text
    at.button(key=f"history_open_{analysed[0]}").click().run()
    assert not at.exception
    assert at.session_state["history_open"] == analysed[0]
    assert any("harbour.png" in h.value for h in at.subheader)
    assert "Decided by" in _markdown(at)  # the Detect page's verdict card
    assert any("Re-opened from the result store" in c.value for c in at.caption)
    at.button(key="history_back").click().run()
    assert "history_open" not in at.session_state


def test_notes_tags_pin_filter_and_delete(analysed):
    at = _page()
    key = analysed[1]
    at.text_area(key=f"history_notes_{key}").input("From the Tuesday tip line")
    at.text_input(key=f"history_tags_{key}").input("tip, case-7")
    at.checkbox(key=f"history_pin_{key}").check()
    at.button(key=f"history_save_{key}").click().run()
    assert not at.exception
    with open_store(load_settings()) as store:
        entry = history.get(store, key)
        assert entry.notes == "From the Tuesday tip line" and entry.tags == ["case-7", "tip"] and entry.pinned
    at.text_input(key="history_text").input("tuesday").run()
    assert "portrait.png" in _markdown(at) and "harbour.png" not in _markdown(at)
    at.text_input(key="history_text").input("").run()
    at.button(key=f"history_delete_{analysed[0]}").click().run()
    assert "harbour.png" not in _markdown(at)
    with open_store(load_settings()) as store:
        assert analysed[0] not in store


def test_export_of_selected_entries(analysed):
    at = _page()
    at.checkbox(key=f"history_pick_{analysed[0]}").check().run()
    assert not at.exception
    assert "Export 1 selected as zip" in at.get("download_button")[0].proto.label


def test_entry_of_a_model_that_no_longer_exists_still_opens(analysed):
    with open_store(load_settings()) as store:
        entry = history.get(store, analysed[0])
        entry.model = "retired-detector"
        history._write(store, entry)
    at = _page()
    at.button(key=f"history_open_{analysed[0]}").click().run()
    assert not at.exception
    assert any("no longer available" in w.value for w in at.warning)


def test_an_inspect_report_opens_from_the_store(analysed, tmp_path):
    from apate_core.inspection import inspect_path

    path = tmp_path / "evidence.png"
    Image.fromarray(np.full((40, 50, 3), 120, np.uint8)).save(path)
    with open_store(load_settings()) as store:
        inspect_path(path, load_settings(), store=store)
        key = history.entries(store, kind="inspect")[0].key
    at = _page()
    at.selectbox(key="history_kind").set_value("inspect").run()
    assert "evidence.png" in _markdown(at) and "harbour.png" not in _markdown(at)
    at.button(key=f"history_open_{key}").click().run()
    assert not at.exception
    assert at.get("json") and any("evidence.png" in h.value for h in at.subheader)


def test_a_folder_scan_is_one_entry_whose_rows_open_individually(analysed, tmp_path):
    from apate_core.detect.pipeline import DetectParams as Params
    from apate_core.scan import ScanParams, plan_scan, run_scan

    folder = tmp_path / "inbox"
    folder.mkdir()
    for n in range(2):
        Image.fromarray(np.random.default_rng(10 + n).integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(
            folder / f"tip-{n}.png")
    (folder / "notes.txt").write_text("not media")
    settings = load_settings()
    plan = plan_scan(ScanParams(sources=(str(folder),), out_dir=tmp_path / "scan-out", model="resnet18",
                                detect=Params(cam=None)), settings)
    run_scan(plan, settings)
    with open_store(settings) as store:
        (scan,) = history.entries(store, kind="scan")
        assert scan.name == "scan-out" and "3 files" in scan.summary and "1 unreadable" in scan.summary
    at = _page()
    at.button(key=f"history_open_{scan.key}").click().run()
    assert not at.exception
    table = at.dataframe[0].value
    assert sorted(table["file"]) == ["notes.txt", "tip-0.png", "tip-1.png"]
    at.selectbox(key="history_scan_pick").set_value(1).run()
    picked = at.selectbox(key="history_scan_pick").format_func(1).split(" ")[0]
    at.button(key="history_scan_open").click().run()
    assert not at.exception
    assert any(picked in h.value for h in at.subheader) and "Decided by" in _markdown(at)
