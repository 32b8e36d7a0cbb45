"""Apate dashboard entry: ``streamlit run app/main.py``."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

PAGES = Path(__file__).resolve().parent.parent / "pages"

st.set_page_config(page_title="Apate", page_icon=":material/shield:", layout="wide")

from app import ui  # noqa: E402 - after set_page_config

ui.job_queue()  # created at start-up, so /metrics answers before the first job

navigation = st.navigation(
    [
        st.Page(str(PAGES / "home.py"), title="Home", icon=":material/home:", default=True),
        st.Page(str(PAGES / "inspect.py"), title="Inspect", icon=":material/search:", url_path="inspect"),
        st.Page(str(PAGES / "detect.py"), title="Detect", icon=":material/troubleshoot:", url_path="detect"),
        st.Page(str(PAGES / "protect.py"), title="Protect", icon=":material/shield_lock:", url_path="protect"),
        st.Page(str(PAGES / "live.py"), title="Live", icon=":material/videocam:", url_path="live"),
        st.Page(str(PAGES / "history.py"), title="History", icon=":material/history:", url_path="history"),
        st.Page(str(PAGES / "models.py"), title="Models", icon=":material/deployed_code:", url_path="models"),
    ]
)
navigation.run()
