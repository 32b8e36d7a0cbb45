"""History: every Detect, Protect and Inspect result in the store, newest first; reopen, annotate, pin, export, delete."""

from __future__ import annotations

import datetime

import streamlit as st

from apate_core import history
from apate_core.detect.verdict import LABELS, display_label
from app import history_ui, ui

store = ui.get_store()
st.title(":material/history: History")
st.caption("Every result in the result store, from the dashboard and from the CLI when they share APATE_CACHE_DIR. "
           "Opening an entry reads it from the store: nothing is recomputed.")

usage = store.usage()
used, pinned = usage.bytes_used / 2**20, store.pinned_bytes() / 2**20
st.progress(min(1.0, usage.bytes_used / max(1, usage.bytes_limit)),
            text=f"Result store: {used:.1f} MB of {usage.bytes_limit / 2**20:.0f} MB ({pinned:.1f} MB pinned, never "
                 "evicted)")

opened = st.session_state.get("history_open")
if opened:
    history_ui.show_entry(store, opened)
    st.stop()

kind_col, label_col, text_col = st.columns([1, 1, 2])
kind = kind_col.selectbox("Kind", ["", *history.KINDS], key="history_kind",
                          format_func=lambda k: k.capitalize() if k else "All")
label = label_col.selectbox("Verdict", ["", *LABELS], key="history_label",
                            format_func=lambda v: display_label(v).capitalize() if v else "Any")
text = text_col.text_input("Search names, summaries, models, notes and tags", key="history_text")
entries = history.entries(store, kind=kind, text=text, label=label)
if not entries:
    st.info("No results yet: inspect or analyse a file, or protect a photo, and it shows here.")
    st.stop()

st.caption(f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}")
chosen = [e.key for e in entries if st.session_state.get(f"history_pick_{e.key}")]
if chosen:
    st.download_button(f"Export {len(chosen)} selected as zip", history.export_zip(store, chosen),
                       file_name=f"apate-history-{datetime.date.today()}.zip", mime="application/zip",
                       key="history_export", icon=":material/folder_zip:")
for entry in entries:
    history_ui.entry_row(store, entry)
