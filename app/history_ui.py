"""History page pieces: one row per entry (thumbnail, summary, notes, tags, pin, open, delete) and the reopened view."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import streamlit as st
from PIL import Image

from apate_core import history
from apate_core.errors import ApateError
from apate_core.store import ResultStore
from app import detect_ui


def _when(entry: history.HistoryEntry) -> str:
    return datetime.datetime.fromtimestamp(entry.created).strftime("%Y-%m-%d %H:%M")


def _open(key: str) -> None:
    st.session_state["history_open"] = key


def _close() -> None:
    st.session_state.pop("history_open", None)


def entry_row(store: ResultStore, entry: history.HistoryEntry) -> None:
    k = entry.key
    with st.container(border=True):
        pick, thumb, body, actions = st.columns([0.4, 1, 5, 1.6])
        pick.checkbox("Select", key=f"history_pick_{k}", label_visibility="collapsed")
        if entry.thumbnail is not None:
            thumb.image(entry.thumbnail)
        pin = " · :material/push_pin: pinned" if entry.pinned else ""
        body.markdown(f"**{entry.name}** · {entry.kind} · {_when(entry)}{pin}  \n{entry.summary}")
        body.caption(f"Model {entry.model or '—'} · weights {entry.weights_sha256[:12] or '—'} · "
                     f"tags: {', '.join(entry.tags) or 'none'}")
        actions.button("Open", key=f"history_open_{k}", on_click=_open, args=(k,), icon=":material/open_in_new:")
        if actions.button("Delete", key=f"history_delete_{k}", icon=":material/delete:"):
            history.delete(store, k)
            st.rerun()
        with body.expander("Notes, tags and pin"):
            notes = st.text_area("Notes", entry.notes, key=f"history_notes_{k}")
            tags = st.text_input("Tags (comma-separated)", ", ".join(entry.tags), key=f"history_tags_{k}")
            pinned = st.checkbox("Pin: never evicted by the store's size limit", entry.pinned, key=f"history_pin_{k}")
            with st.popover("Parameters"):
                st.json(entry.params)
            if st.button("Save", key=f"history_save_{k}", icon=":material/save:"):
                history.annotate(store, k, notes=notes, tags=tags.split(","), pinned=pinned)
                st.rerun()


def show_entry(store: ResultStore, key: str) -> None:
    """An entry reopened from the store: a Detect result as the Detect page shows it, a protected image with
    its metrics."""
    st.button("Back to the list", on_click=_close, icon=":material/arrow_back:", key="history_back")
    entry = history.get(store, key)
    if entry is None or key not in store:
        st.warning("This result is no longer in the store (deleted or evicted by the size limit).")
        return
    st.subheader(f"{entry.name} · {entry.kind} · {_when(entry)}")
    if entry.notes:
        st.info(entry.notes, icon=":material/sticky_note_2:")
    if entry.kind == "detect":
        _show_detect(store, entry)
    elif entry.kind == "inspect":
        _show_inspect(store, entry)
    elif entry.kind == "scan":
        _show_scan(store, entry)
    else:
        _show_protect(store, entry)


def _show_detect(store: ResultStore, entry: history.HistoryEntry) -> None:
    result = history.open_detect(store, entry.key)
    try:
        detector = detect_ui.get_detector(entry.model)
    except ApateError:
        detector = None
    if detector is None or detector.weights_sha256 != entry.weights_sha256:
        st.warning(f"The model of this result ({entry.model}, weights {entry.weights_sha256[:12]}) is no longer "
                   "available here: the stored verdict, timeline, kept heatmaps and report are shown; frames "
                   "without a kept heatmap cannot be re-scored.", icon=":material/info:")
        detect_ui.verdict_card(result)
        if result.data["kind"] == "video":
            detect_ui.timeline(result)
            detect_ui.gallery(result)
        detect_ui.downloads(result)
        return
    detect_ui.show_result(result, detector)


def _show_scan(store: ResultStore, entry: history.HistoryEntry) -> None:
    """A folder scan: its summary and every file, most suspicious first; a row opens its own Detect result."""
    data = store.get(entry.key).meta
    st.markdown(f"{entry.summary}  \nOutput folder `{entry.params.get('out_dir', '')}` · model {entry.model}")
    rows = data.get("rows", [])
    st.dataframe([{"file": r["name"], "status": r["status"], "label": r["label"], "P(fake)": r["score"],
                   "why not analysed": r["error"]} for r in rows], hide_index=True)
    openable = [r for r in rows if r.get("result_key") and r["result_key"] in store]
    if openable:
        pick = st.selectbox("Open the result of", range(len(openable)), key="history_scan_pick",
                            format_func=lambda i: f"{openable[i]['name']} ({openable[i]['label']})")
        st.button("Open this file's result", key="history_scan_open", on_click=_open,
                  args=(openable[pick]["result_key"],), icon=":material/open_in_new:")


def _show_inspect(store: ResultStore, entry: history.HistoryEntry) -> None:
    report = store.get(entry.key).meta
    if entry.thumbnail is not None:
        st.image(entry.thumbnail)
    for line in report.get("summary", []):
        st.markdown(f"- {line}")
    st.download_button("Download the report (JSON)", json.dumps(report, indent=2), key="history_inspect_json",
                       file_name=f"{Path(entry.name).stem}.inspect.json", mime="application/json")
    with st.expander("Media, metadata and provenance", expanded=True):
        st.json(report)


def _show_protect(store: ResultStore, entry: history.HistoryEntry) -> None:
    stored = store.get(entry.key)
    st.markdown(entry.summary)
    protected = stored.arrays.get("protected")
    if protected is not None:
        st.image(protected, caption="The protected image as stored (PNG, 8-bit)")
        buffer = _png(protected)
        st.download_button("Download the protected PNG", buffer, file_name=f"{Path(entry.name).stem}.protected.png",
                           mime="image/png", key="history_protected_png", type="primary")
    st.download_button("Download metrics (JSON)", json.dumps(stored.meta, indent=2, default=str),
                       file_name=f"{Path(entry.name).stem}.protect.json", mime="application/json",
                       key="history_protect_json")
    with st.expander("Metrics", expanded=False):
        st.json(stored.meta.get("metrics", stored.meta))


def _png(rgb) -> bytes:
    import io

    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="PNG")
    return out.getvalue()
