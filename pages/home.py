"""Home: what Apate does, the compute device, result-store usage and the sample media."""

from __future__ import annotations

import streamlit as st

from app import ui

st.title(":material/shield: Apate")
st.markdown(
    "Apate helps trust-and-safety analysts, verification desks and people protecting their own photos. "
    "**Inspect** tells you exactly what a file is: its container, codecs, metadata and C2PA Content "
    "Credentials, with a browser-playable copy and sampled frames. Detection of AI-generated media and "
    "adversarial photo protection build on this and appear in the sidebar as they ship."
)

settings = ui.get_settings()
usage = ui.get_store().usage()
device_col, store_col, limit_col = st.columns(3)
device_col.metric("Compute device", ui.device_label())
store_col.metric("Result store", f"{usage.bytes_used / 1048576:.1f} MB", f"{usage.entries} entries", delta_color="off")
limit_col.metric("Upload limits", f"{settings.max_video_mb:g} MB video", f"{settings.max_image_mb:g} MB image", delta_color="off")
st.caption(f"Store: `{usage.directory}` (limit {usage.bytes_limit / 1048576:.0f} MB, private to this user).")

st.subheader("Sample media")
samples = list(ui.sample_files())
if not samples:
    st.info("No sample media found in `assets/samples` (run `python scripts/make_samples.py`).")
for sample in samples:
    name_col, button_col = st.columns([4, 1])
    name_col.markdown(f"**{sample.name}** · {sample.stat().st_size / 1024:.0f} KB")
    if button_col.button("Inspect", key=f"sample-{sample.name}"):
        st.session_state["inspect_source"] = str(sample)
        st.switch_page(str(ui.ROOT / "pages" / "inspect.py"))
