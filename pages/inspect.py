"""Inspect: drop a video or image (or paste a URL) and see exactly what it is."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import streamlit as st

from apate_core.inspection import frame_strip, inspect_path, inspect_source, playable_video
from app import ui

MAX_STRIP = 120  # frames shown in the strip
STRIP_COLUMNS = 6

settings = ui.get_settings()
store = ui.get_store()

st.title(":material/search: Inspect")
st.caption(
    "Apate decides what a file is from its content, not its name. "
    f"Videos: {', '.join(settings.video_containers)} (≤ {settings.max_video_mb:g} MB); "
    f"images: {', '.join(settings.image_formats)} (≤ {settings.max_image_mb:g} MB); "
    "animated GIFs and WebPs are analysed as video."
)

uploaded = st.file_uploader("Drop a video or image", key="inspect_upload")
url_col, fetch_col = st.columns([5, 1], vertical_alignment="bottom")
url = url_col.text_input("…or paste an http(s) URL", key="inspect_url", placeholder="https://example.org/clip.mp4")
if fetch_col.button("Fetch", width="stretch") and url.strip():
    st.session_state["inspect_source"] = url.strip()


def load_report():
    """Run intake for the current source; the report stays in the session until the source changes."""
    if uploaded is not None:
        source, path = f"upload:{uploaded.file_id}", ui.save_upload(uploaded)
    elif st.session_state.get("inspect_source"):
        source, path = st.session_state["inspect_source"], None
    else:
        return None
    cached = st.session_state.get("inspect_report")
    if cached is not None and cached[0] == source:
        return cached[1]
    with ui.progress_bar("Reading") as progress:
        if path is not None:
            report = inspect_path(path, settings, name=uploaded.name, source=uploaded.name, store=ui.get_store())
        else:
            downloads = settings.cache_path / "downloads"
            downloads.mkdir(parents=True, exist_ok=True, mode=0o700)
            report = inspect_source(source, settings, workdir=downloads, progress=progress, store=ui.get_store())
    st.session_state["inspect_report"] = (source, report)
    return report


try:
    report = load_report()
except Exception as exc:  # noqa: BLE001 - every failure becomes an error card, never a traceback
    ui.show_failure(exc)
    st.stop()
if report is None:
    st.info("Drop a file above, paste a URL, or open a sample from Home.")
    st.stop()

media = report.media
st.subheader(media.name)
info = media.video or media.image
cols = st.columns(4)
cols[0].metric("Type", f"{media.kind} · {media.format}")
cols[1].metric("Size", f"{media.size_bytes / 1048576:.2f} MB")
if media.video is not None:
    cols[2].metric("Resolution", f"{info.display_width}×{info.display_height}")
    cols[3].metric("Duration", f"{info.duration:.1f} s · {info.fps:.3g} fps")
else:
    cols[2].metric("Resolution", f"{info.width}×{info.height}")
    cols[3].metric("Colour", f"{info.mode} → RGB")

details_col, provenance_col = st.columns(2)
with details_col:
    st.markdown("#### Media")
    fields = {k: v for k, v in vars(info).items() if k != "tags" and v not in (None, "", {})}
    fields["sha256"] = media.sha256
    st.dataframe(pd.DataFrame({"field": list(fields), "value": [str(v) for v in fields.values()]}), hide_index=True)
with provenance_col:
    st.markdown("#### Provenance")
    badge = st.success if getattr(report.provenance, "validation_state", "") in ("Valid", "Trusted") else st.info
    if report.summary:
        badge(report.summary[0])
        st.markdown("\n".join(f"- {line}" for line in report.summary[1:]))
    if report.metadata:
        st.markdown("#### Metadata")
        rows = {"field": list(report.metadata), "value": [str(v) for v in report.metadata.values()]}
        st.dataframe(pd.DataFrame(rows), hide_index=True)

st.download_button(
    "Download metadata (JSON)",
    data=json.dumps(report.to_dict(), indent=2, default=str),
    file_name=f"{Path(media.name).stem}.inspect.json",
    mime="application/json",
)

try:
    if media.kind == "video":
        st.markdown("#### Playable copy (H.264, ≤ 720p)")
        with ui.progress_bar("Making a browser-playable copy") as progress:
            st.video(playable_video(media, store, progress=progress), format="video/mp4")
    st.markdown("#### Sampled frames")
    fps = st.number_input("Frames per second", 0.1, 30.0, float(settings.sample_fps), 0.5, key="inspect_fps")
    with ui.progress_bar("Sampling frames") as progress:
        strip = frame_strip(media, fps, store, progress=progress, limit=MAX_STRIP)
except Exception as exc:  # noqa: BLE001
    ui.show_failure(exc, title="This file could not be processed")
    st.stop()

if media.kind == "video" and len(strip.times) >= MAX_STRIP:
    st.caption(f"Showing the first {MAX_STRIP} sampled frames.")
for start in range(0, len(strip.times), STRIP_COLUMNS):
    row = st.columns(STRIP_COLUMNS)
    for col, frame, t in zip(row, strip.frames[start : start + STRIP_COLUMNS], strip.times[start : start + STRIP_COLUMNS]):
        col.image(frame, caption=f"t = {t:.2f} s", width="stretch")
