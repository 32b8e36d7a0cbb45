"""Protect: an invisible perturbation so that face recognition no longer matches a face (identity cloaking), or
so that image-translation deepfake generators fail on the photo."""

from __future__ import annotations

import streamlit as st

from apate_core.errors import ApateError
from apate_core.jobs import JobState
from apate_core.protect.identity.job import IdentityJobResult, card
from app import identity_ui, protect_ui, ui

settings = ui.get_settings()
store = ui.get_store()

st.title(":material/shield_lock: Protect")
st.caption(
    "Adds a perturbation bounded by ε per pixel, optimised at the photo's own resolution and shaped to hide in "
    "texture. **Identity**: every face is pushed away from itself for a face recogniser, through the same "
    "detection and alignment a scraper would run. **Generators**: the output of an image-translation model on "
    "the protected photo is pushed away from its output on the original (\"Disrupting Deepfakes\", Ruiz et al. "
    "2020). The protected file keeps the original size. "
    f"Images: {', '.join(settings.image_formats)}, ≤ {settings.max_image_side} px per side, "
    f"up to {settings.max_batch} per job."
)

uploaded = st.file_uploader("Drop one or more images", accept_multiple_files=True, key="protect_upload")
images = protect_ui.load_uploads(uploaded or [], settings)
target = identity_ui.target_picker(identity_ui.face_counts(images))
if target == "identity":
    identity_params = identity_ui.controls(card())
else:
    chosen = protect_ui.controls(settings)

job = st.session_state.get("protect_job")
running = job is not None and not job.done
start = st.button(f"Protect {len(images)} image(s)" if images else "Protect", key="protect_run",
                  type="primary", disabled=running or not images, icon=":material/shield_lock:")
if start:
    try:
        params = identity_params.validate() if target == "identity" else chosen.params.validate()
    except ApateError as exc:
        ui.error_card(exc, title="These settings were refused")
    else:
        st.session_state.pop("protect_result", None)
        try:
            if target == "identity":
                job = identity_ui.start_job(images, params, settings, store)
            else:
                job = protect_ui.generator_job(images, chosen.choice, params, settings, store)
        except ApateError as exc:  # this session already has its share of the queue
            ui.error_card(exc, title="Not queued")
        else:
            st.session_state["protect_job"] = job
            running = True


@st.fragment(run_every=0.5)
def job_progress() -> None:
    current = st.session_state.get("protect_job")
    if current is None:
        return
    if current.done:
        st.rerun()  # the whole page shows the outcome
    ui.job_progress(current, "Protecting")
    if st.button("Cancel", key="protect_cancel", icon=":material/cancel:"):
        ui.cancel_job(current)
        st.toast("Cancelling at the next step…")


if running:
    job_progress()
elif job is not None:  # finished since the last run: keep the outcome, drop the job
    st.session_state.pop("protect_job", None)
    if job.state is JobState.CANCELLED:
        st.info("Protection cancelled; nothing was saved.", icon=":material/cancel:")
    elif isinstance(job.error, ApateError):
        ui.error_card(job.error, title="Protection failed")
    elif job.error is not None:
        st.error(f"**Internal error.** {type(job.error).__name__}: {job.error}", icon=":material/error:")
    else:
        st.session_state["protect_result"] = job.result

result = st.session_state.get("protect_result")
if isinstance(result, IdentityJobResult):
    identity_ui.show_result(result)
elif result is not None:
    protect_ui.show_result(result)
elif not images and not running:
    st.info("Drop one or more photos above, choose what to protect against and press **Protect**.")
