"""Home: what Apate does, the compute device, result-store usage and the sample media."""

from __future__ import annotations

import numpy as np
import streamlit as st

from app import ui

st.title(":material/shield: Apate")
st.markdown(
    "Apate helps trust-and-safety analysts, verification desks and people protecting their own photos. "
    "**Inspect** tells you exactly what a file is: its container, codecs, metadata and C2PA Content "
    "Credentials, with a browser-playable copy and sampled frames. **Detect** scores each sampled frame for "
    "signs of generation, with heatmaps and a timeline. **Protect** adds an imperceptible perturbation to a "
    "photo so that image-translation deepfake generators break on it, and shows the proof. **Live** scores "
    "your camera as it streams. Start from one of the samples below: two of them are partly re-synthesised "
    "by a generator."
)

settings = ui.get_settings()
usage = ui.get_store().usage()
device_col, store_col, limit_col = st.columns(3)
device_col.metric("Compute device", ui.device_label())
store_col.metric(
    "Result store", f"{usage.bytes_used / 1048576:.1f} MB", f"{usage.entries} entries", delta_color="off", delta_arrow="off"
)
limit_col.metric(
    "Upload limits", f"{settings.max_video_mb:g} MB video", f"{settings.max_image_mb:g} MB image",
    delta_color="off", delta_arrow="off",
)
st.caption(f"Store: `{usage.directory}` (limit {usage.bytes_limit / 1048576:.0f} MB, private to this user).")


@st.cache_data(show_spinner=False)
def thumbnail(path: str) -> np.ndarray:
    """First frame of a sample, small (samples ship with the app, so this is cheap and safe to cache)."""
    from apate_core.media.video import iter_frames

    if path.endswith(".mp4"):
        return next(iter_frames(path, 1.0, max_side=240)).image
    from PIL import Image

    image = Image.open(path).convert("RGB")
    image.thumbnail((240, 240))
    return np.asarray(image)


st.subheader("Sample media")
samples = list(ui.sample_files())
if not samples:
    st.info("No sample media found in `assets/samples` (run `python scripts/make_samples.py`).")
for column, sample in zip(st.columns(max(len(samples), 1)), samples):
    with column:
        st.image(thumbnail(str(sample)), caption=f"{sample.name} · {sample.stat().st_size / 1024:.0f} KB")
        inspect_col, detect_col = st.columns(2)
        if inspect_col.button("Inspect", key=f"sample-{sample.name}", width="stretch"):
            st.session_state["inspect_source"] = str(sample)
            st.switch_page(str(ui.ROOT / "pages" / "inspect.py"))
        if detect_col.button("Detect", key=f"detect-{sample.name}", width="stretch", type="primary"):
            st.session_state["detect_source"] = str(sample)
            st.switch_page(str(ui.ROOT / "pages" / "detect.py"))
