"""Detect-only UI pieces: the background analysis job the page polls, cached detectors and the result panels.

Jobs: the analysis goes on the server's one job queue (apate_core.jobs), which runs it in a worker thread
with a CancelToken; the Job lives in st.session_state, a fragment polls it every half second (its place in
the queue while it waits, then its progress) and shows a Cancel button. A waiting job is dropped from the
queue; a running one stops at the engine's next check, between frames and batches. The worker never calls
Streamlit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import streamlit as st

from apate_core import jobs
from apate_core.detect import pipeline
from apate_core.detect.models import Detector
from apate_core.detect.pipeline import BatchResult, DetectParams, DetectResult
from apate_core.detect.face_evidence import describe as describe_face_evidence
from apate_core.detect.verdict import SEVERITY, describe_segment, display_label, explain
from apate_core.errors import ApateError
from app import ui

LABEL_STYLE = {"fake": ("red", ":material/warning:"), "real": ("green", ":material/verified:"),
               "uncertain": ("orange", ":material/help:"), "segments": ("red", ":material/timeline:"),
               "declared": ("violet", ":material/smart_toy:")}
BATCH_COLUMNS = SEVERITY[::-1]  # the summary's label counts, most alarming first
GALLERY_COLUMNS = 4


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


def model_options() -> list[str]:
    """Registered detectors (the default first) and checkpoints found under APATE_MODELS_DIR."""
    from apate_core.detect import list_detectors

    default = pipeline.default_detector_name()
    names = [default] + [n for n in list_detectors() if n != default]
    return names + [str(p) for p in pipeline.available_checkpoints(ui.get_settings())]


@st.cache_resource(show_spinner="Loading the model…", max_entries=3)
def get_detector(name: str) -> Detector:
    detector = pipeline.load_detector(name, ui.get_settings())
    _ = detector.weights_sha256  # hash once, here, rather than on the first analysis
    return detector


# --------------------------------------------------------------------------------------------
# Background job
# --------------------------------------------------------------------------------------------


@dataclass
class Job:
    """The page's analysis: the queued engine job plus what the page needs to match it to its inputs."""

    signature: str
    run: jobs.Job
    detector: Optional[Detector] = None  # the model the result came from (frames picked later use it too)

    @property
    def done(self) -> bool:
        return self.run.done

    @property
    def cancelled(self) -> bool:
        return self.run.state is jobs.JobState.CANCELLED

    @property
    def error(self) -> Optional[BaseException]:
        return self.run.error

    @property
    def output(self) -> Any:  # DetectResult or BatchResult
        return self.run.result

    def cancel(self) -> None:
        ui.cancel_job(self.run)

    def wait(self, timeout: Optional[float] = None) -> bool:
        return self.run.wait(timeout)


def start_job(signature: str, work: jobs.Work, detector: Optional[Detector] = None) -> Job:
    """Queue the analysis (raises jobs.QueueLimit when this session already has its share waiting)."""
    return Job(signature, ui.submit_job("detect", work), detector)


def analysis(sources: list[tuple[Path, str]], url: str, detector: Detector, params: DetectParams) -> Callable:
    """The worker's work: fetch a URL if given, then one input (DetectResult) or several (BatchResult)."""
    settings, store = ui.get_settings(), ui.get_store()

    def work(progress, cancel):
        items = list(sources)
        if url:
            from apate_core.inspection import fetch_source

            downloads = settings.cache_path / "downloads"
            downloads.mkdir(parents=True, exist_ok=True, mode=0o700)
            items = [fetch_source(url, settings, downloads, progress=progress, cancel=cancel)]
        if len(items) == 1:
            path, name = items[0]
            return pipeline.analyse_path(path, settings, detector, params, store=store, progress=progress,
                                         cancel=cancel, name=name, source=url or name)
        return pipeline.analyse_many([p for p, _ in items], settings, detector, params, store=store,
                                     progress=progress, cancel=cancel, names=[n for _, n in items])

    return work


def signature(sources: list[tuple[Path, str]], url: str, model: str, params: DetectParams) -> str:
    return json.dumps({"sources": [str(p) for p, _ in sources], "url": url, "model": model,
                       "params": params.key_dict()}, sort_keys=True)


def watch(job: Job) -> None:
    """Progress and Cancel, redrawn every half second until the job ends, then a full rerun shows the result."""

    @st.fragment(run_every=0.5)
    def _poll() -> None:
        if job.done:
            st.rerun()
        ui.job_progress(job.run, "Analysing")
        st.button("Cancel", key="detect_cancel", icon=":material/cancel:", on_click=job.cancel,
                  disabled=job.run.token.cancelled)

    _poll()


# --------------------------------------------------------------------------------------------
# Result panels
# --------------------------------------------------------------------------------------------


def batch_table(batch: BatchResult) -> None:
    summary = batch.summary
    cols = st.columns(1 + len(BATCH_COLUMNS))
    cols[0].metric("Inputs", summary["inputs"])
    for col, label in zip(cols[1:], BATCH_COLUMNS):
        col.metric(display_label(label).capitalize(), summary["labels"][label])
    rows = [{"input": r.data["input"]["name"], "P(fake)": r.score, "label": display_label(r.label)}
            for r in batch.results]
    rows += [{"input": e["name"], "P(fake)": None, "label": f"refused: {e['error']}"} for e in batch.errors]
    st.dataframe(rows, hide_index=True, column_config={"P(fake)": st.column_config.ProgressColumn(
        "P(fake)", min_value=0.0, max_value=1.0, format="%.3f")})


def verdict_card(result: DetectResult) -> None:
    data, agg, model = result.data, result.data["aggregates"], result.data["model"]
    colour, icon = LABEL_STYLE[result.label]
    with st.container(border=True):
        head, prov = st.columns([3, 2])
        score = "–" if result.score is None else f"{result.score:.3f}"
        head.markdown(f"### {icon} :{colour}[{display_label(result.label).upper()}] · P(fake) {score}")
        segments = [f"- Generated segment {describe_segment(s)}" for s in data["verdict"]["segments"]]
        head.markdown("\n\n".join([explain(data["verdict"]), "\n".join(segments)]).strip())
        faces = describe_face_evidence(data.get("face_evidence"))
        if faces:
            head.caption(faces)
        band = data["band"]
        head.caption(f"Mean of {agg['count']} frame score(s). Real ≤ {band['low']:g} < uncertain < "
                     f"{band['high']:g} ≤ fake." + (" Re-opened from the result store." if result.from_store else ""))
        cols = head.columns(3)
        cols[0].metric("Mean", score)
        cols[1].metric("Max", "–" if agg["max"] is None else f"{agg['max']:.3f}")
        cols[2].metric(f"Top-{agg['top_k']} mean", "–" if agg["top_k_mean"] is None else f"{agg['top_k_mean']:.3f}")
        lines = (data.get("provenance") or {}).get("summary") or ["Provenance unknown."]
        c2pa = (data.get("provenance") or {}).get("c2pa") or {}
        badge = st.success if c2pa.get("validation_state") in ("Valid", "Trusted") else st.info
        with prov:
            badge(lines[0], icon=":material/verified_user:")
            st.markdown(f"**Model** `{model['name']}` ({model['architecture']})  \n"
                        f"**Trained on:** {model.get('trained_on_summary') or '–'}  \n"
                        f"**Metrics:** {model.get('metrics_summary') or 'none reported'}")
            if model.get("limits"):
                st.caption(f"**Limits:** {model['limits']}")
            if model.get("heldout_families"):
                with st.expander("Held-out figures per generator family"):
                    st.dataframe(model["heldout_families"], hide_index=True)
        if model["untrained"]:
            st.warning("This model is **untrained** (random initialisation): its scores carry no meaning. "
                       "Choose a trained detector or bring a checkpoint.", icon=":material/warning:")
        for note in data["notes"]:
            if "untrained" not in note:
                st.caption(note)


def timeline(result: DetectResult) -> None:
    """The per-frame chart; selecting a point moves the frame picker (key detect_frame) to it."""
    from apate_core.detect.report import timeline_figure

    fig = timeline_figure(result, selected=st.session_state.get("detect_frame"))
    event = st.plotly_chart(fig, on_select="rerun", selection_mode="points", key="detect_timeline",
                            config={"displaylogo": False})
    points = list(getattr(getattr(event, "selection", None), "points", None) or [])
    picked = _frame_at(result, points[0]) if points else None
    if picked is not None and picked != st.session_state.get("detect_timeline_last"):
        st.session_state["detect_timeline_last"] = picked
        st.session_state["detect_frame"] = picked


def _frame_at(result: DetectResult, point: dict) -> Optional[int]:
    if point.get("customdata") is not None:
        value = point["customdata"]
        return int(value[0] if isinstance(value, (list, tuple)) else value)
    if point.get("x") is None:
        return None
    return min(result.frames, key=lambda f: abs(f["time"] - float(point["x"])))["index"]


def frame_panel(result: DetectResult, detector: Detector) -> None:
    """A frame and its heatmap side by side, with an opacity slider; any frame can be picked."""
    from apate_core.detect import overlay_heatmap

    frames = result.frames
    indices = [f["index"] for f in frames]
    if st.session_state.get("detect_frame") not in indices:
        st.session_state["detect_frame"] = (result.top_frames() or indices)[0]
    by_index = {f["index"]: f for f in frames}
    if len(indices) > 1:
        st.select_slider("Frame", options=indices, key="detect_frame",
                         format_func=lambda i: f"{by_index[i]['time']:.2f} s")
    index = st.session_state["detect_frame"]
    record = by_index[index]
    opacity = st.slider("Heatmap opacity", 0.0, 1.0, 0.5, 0.05, key="detect_opacity")
    try:
        image, heat = pipeline.frame_view(result, index, detector, store=ui.get_store())
    except ApateError as exc:
        ui.error_card(exc, title="This frame could not be shown")
        return
    score = "no face" if record["score"] is None else f"P(fake) {record['score']:.3f}"
    left, right = st.columns(2)
    left.image(image, caption=f"Frame at {record['time']:.2f} s · {score}", width="stretch")
    if heat is None:
        right.info("No heatmap method chosen.")
    else:
        right.image(overlay_heatmap(image, heat, opacity=opacity), caption="Heatmap: evidence for 'fake'",
                    width="stretch")
    if record.get("faces"):
        st.caption("Faces: " + ", ".join(f"P(fake) {f['score']:.3f} at ({f['box']['x']}, {f['box']['y']}) "
                                          f"{f['box']['w']}×{f['box']['h']}" for f in record["faces"]))


def gallery(result: DetectResult) -> None:
    from apate_core.detect.report import overlay

    by_index = {f["index"]: f for f in result.frames}
    top = [i for i in result.top_frames() if result.frame(i) is not None]
    for start in range(0, len(top), GALLERY_COLUMNS):
        for col, index in zip(st.columns(GALLERY_COLUMNS), top[start:start + GALLERY_COLUMNS]):
            shown = overlay(result, index)
            col.image(shown if shown is not None else result.frame(index), width="stretch",
                      caption=f"t = {by_index[index]['time']:.2f} s · P(fake) {by_index[index]['score']:.3f}")


def downloads(result: DetectResult) -> None:
    from apate_core.detect import report

    stem = Path(result.data["input"]["name"]).stem or "result"
    cols = st.columns(3)
    cols[0].download_button("result.json", report.result_json(result), f"{stem}.result.json", "application/json",
                            icon=":material/data_object:", key="detect_dl_json")
    cols[1].download_button("Heatmaps (zip)", lambda: report.heatmaps_zip(result), f"{stem}.heatmaps.zip",
                            "application/zip", icon=":material/folder_zip:", key="detect_dl_zip")
    cols[2].download_button("HTML report", lambda: report.report_html(result), f"{stem}.report.html", "text/html",
                            icon=":material/description:", key="detect_dl_html")


def show_result(result: DetectResult, detector: Detector) -> None:
    verdict_card(result)
    if result.data["kind"] == "video":
        st.markdown("#### Timeline")
        timeline(result)
    st.markdown("#### Frame and heatmap")
    frame_panel(result, detector)
    if result.data["kind"] == "video":
        st.markdown("#### Most suspicious frames")
        gallery(result)
    downloads(result)

