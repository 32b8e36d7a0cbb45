"""Models: every detector, Protect generator, attack and the identity descriptor, with its model card; load and
unload; the default device; import a checkpoint."""

from __future__ import annotations

import streamlit as st

from apate_core import model_catalog
from app import models_ui, ui

settings = ui.get_settings()

st.title(":material/deployed_code: Models")
st.caption("Every model Apate can use: shipped weights, untrained architectures, checkpoints under APATE_MODELS_DIR "
           "and what you import here, each with its model card and weights hash. Nothing is downloaded.")
models_ui.show_flash()

with st.container(border=True):
    models_ui.device_choice(settings)
    models_ui.loaded_table()

entries = model_catalog.list_models(settings)
kinds = model_catalog.KINDS
titles = [f"{model_catalog.KIND_TITLES[k]} ({sum(e.kind == k for e in entries)})" for k in kinds]
tabs = st.tabs([*titles, "Import a checkpoint"])
for kind, tab in zip(kinds, tabs):
    with tab:
        for entry in entries:
            if entry.kind == kind:
                models_ui.entry_card(entry, settings)
with tabs[-1]:
    models_ui.import_panel(settings)
