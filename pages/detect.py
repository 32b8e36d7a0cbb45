"""Detect: drop a video or several images (or paste a URL) and see how likely each is AI-generated, and where."""

from __future__ import annotations

import streamlit as st

from apate_core.detect import list_cam_methods
from apate_core.detect.pipeline import BatchResult, DetectParams
from apate_core.errors import ApateError
from app import detect_ui, ui

settings = ui.get_settings()

st.title(":material/troubleshoot: Detect")
st.caption(
    "P(fake) per sampled frame from a detector, heatmaps of the evidence, and a verdict with an explicit "
    "uncertain band that also weighs sustained runs of suspicious frames (generated segments) and C2PA "
    "declarations of generated media. A score is evidence, not proof: read it with the provenance and the heatmaps."
)

uploads = st.file_uploader("Drop a video, or several images", accept_multiple_files=True, key="detect_upload")
url_col, fetch_col = st.columns([5, 1], vertical_alignment="bottom")
url = url_col.text_input("…or paste an http(s) URL", key="detect_url_input", placeholder="https://example.org/clip.mp4")
if fetch_col.button("Fetch", width="stretch", key="detect_fetch") and url.strip():
    st.session_state["detect_source"] = url.strip()

with st.expander("Model and analysis settings", expanded=True, icon=":material/tune:"):
    c1, c2, c3, c4 = st.columns(4)
    model = c1.selectbox("Model", detect_ui.model_options(), key="detect_model",
                         help="Registered detectors and checkpoints under APATE_MODELS_DIR")
    fps = c2.number_input("Frames per second", 0.1, 30.0, float(settings.sample_fps), 0.5, key="detect_fps")
    cam = c3.selectbox("Heatmap method", [*list_cam_methods(), "none"], key="detect_cam")
    heat_mode = c4.radio("Heatmaps for", ["top_k", "all"], key="detect_heatmaps", horizontal=True,
                         format_func={"top_k": "top-k frames", "all": "every frame"}.get)
    c5, c6, c7, c8 = st.columns([1, 1, 1, 2])
    top_k = c5.number_input("Top-k frames", 1, 64, 8, key="detect_top_k")
    faces = c6.toggle("Face mode", key="detect_faces", help="Score each detected face crop instead of whole frames")
    face_evidence = c7.toggle("Face-swap check", value=True, key="detect_face_evidence",
                              help="Search every sampled frame for faces and score each with the face-swap model; "
                                   "its evidence joins the verdict")
    band = c8.slider("Uncertain band (real ≤ low, fake ≥ high)", 0.0, 1.0, (0.4, 0.6), 0.05, key="detect_band")

if uploads:
    sources, url_source = [(ui.save_upload(f), f.name) for f in uploads], ""
elif st.session_state.get("detect_source"):
    sources, url_source = [], st.session_state["detect_source"]
else:
    st.info("Drop a video or images above, or paste a URL.")
    st.stop()

try:
    params = DetectParams(fps=float(fps), cam=None if cam == "none" else cam, heatmaps=heat_mode, top_k=int(top_k),
                          faces=bool(faces), face_evidence=bool(face_evidence), band=band)
    detector = detect_ui.get_detector(model)
except ApateError as exc:
    ui.error_card(exc, title="These settings were refused")
    st.stop()

signature = detect_ui.signature(sources, url_source, model, params)
job = st.session_state.get("detect_job")
rerun = False
if job is not None and job.done and job.cancelled and job.signature == signature:
    st.warning("Analysis cancelled.", icon=":material/cancel:")
    rerun = st.button("Analyse again", key="detect_again", icon=":material/replay:")
    if not rerun:
        st.stop()
if job is None or job.signature != signature or rerun:
    if job is not None and not job.done:
        job.cancel()  # the inputs or settings changed: stop the old analysis
    try:
        job = detect_ui.start_job(signature, detect_ui.analysis(sources, url_source, detector, params), detector)
    except ApateError as exc:  # this session already has its share of the queue
        st.session_state.pop("detect_job", None)
        ui.error_card(exc, title="Not queued")
        st.stop()
    st.session_state["detect_job"] = job
    st.session_state.pop("detect_frame", None)

if not job.done:
    detect_ui.watch(job)
    st.stop()
if job.error is not None:
    if isinstance(job.error, ApateError):
        ui.error_card(job.error, title="This input could not be analysed")
    else:
        st.exception(job.error)
    st.stop()

result = job.output
if isinstance(result, BatchResult):
    st.subheader(f"{result.summary['analysed']} inputs")
    detect_ui.batch_table(result)
    if not result.results:
        st.stop()
    names = [r.data["input"]["name"] for r in result.results]
    pick = st.selectbox("Details for", range(len(names)), format_func=names.__getitem__, key="detect_pick")
    result = result.results[pick]
st.subheader(result.data["input"]["name"])
detect_ui.show_result(result, job.detector)
