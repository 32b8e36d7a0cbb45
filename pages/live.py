"""Live: stream the camera, or a shared screen or tab, to the server and watch each frame's P(fake) come back."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st
from streamlit_webrtc import WebRtcMode, webrtc_streamer

from apate_core.errors import ApateError
from apate_core.live import PROCESSING_SIZES, LiveOptions
from app import live_ui, screen_share, ui

settings = ui.get_settings()

st.title(":material/videocam: Live")
st.caption(
    "Your camera, or a screen or tab you share, streams to this server over WebRTC; every processed frame comes "
    "back with its score drawn on it (green: looks real, red: looks generated). Frames are analysed in a "
    "background thread and skipped, never queued, when the model is slower than the stream."
)

c_model, c_size, c_rate = st.columns([3, 1.2, 2], vertical_alignment="bottom")
model = c_model.selectbox("Model", live_ui.model_choices(), key="live_model")
c_faces, c_heat, _ = st.columns([1, 1, 3])
face_mode = c_faces.toggle("Face mode", key="live_faces", help="Score each detected face instead of the whole frame")
heatmap = c_heat.toggle("Heatmap", key="live_heatmap", help="Grad-CAM overlay: where the evidence for 'fake' lies")
size = c_size.selectbox("Processing size", list(PROCESSING_SIZES), key="live_size")
rate = c_rate.slider("Target rate (frames/s)", 1, 30, 15, key="live_rate")

try:
    detector = live_ui.shared_detector(model)
    rtc_configuration = live_ui.rtc_configuration(settings)
except ApateError as exc:
    ui.error_card(exc, title="Live analysis cannot start")
    st.stop()

processor = live_ui.session_processor()
processor.configure(detector, LiveOptions(face_mode=face_mode, heatmap=heatmap, size=PROCESSING_SIZES[size],
                                          target_fps=float(rate)))

video_col, side_col = st.columns([3, 2])
with video_col:
    busy = live_ui.camera_streaming() or screen_share.session_share().active
    source = st.segmented_control("Source", live_ui.SOURCES, default=live_ui.SOURCES[0], required=True,
                                  key="live_source", disabled=busy,
                                  help="Stop the stream to switch source" if busy else None)
    if source == live_ui.SCREEN:
        streaming = screen_share.screen_share(processor, rtc_configuration).active
    else:
        ctx = webrtc_streamer(
            key=live_ui.CAMERA_KEY,
            mode=WebRtcMode.SENDRECV,
            rtc_configuration=rtc_configuration,
            media_stream_constraints={"video": {"width": {"ideal": 640}, "height": {"ideal": 480}}, "audio": False},
            video_frame_callback=live_ui.video_callback(processor),
            on_video_ended=live_ui.ended_callback(processor),
            async_processing=True,
        )
        streaming = ctx.state.playing
    st.caption(f"Model **{detector.name}** ({ui.device_label()}). Smoothed score: {processor.smoothing_text}.")
if not streaming and processor.running:
    processor.stop(timeout=0)  # signal only: never hold the page for an inference in flight


def timeline_figure(points: list[dict]) -> go.Figure:
    fig = go.Figure()
    fig.add_hrect(y0=0.6, y1=1.0, fillcolor="rgba(214,39,40,0.08)", line_width=0)
    fig.add_hrect(y0=0.0, y1=0.4, fillcolor="rgba(46,160,67,0.08)", line_width=0)
    xs = [p["t"] for p in points]
    fig.add_scatter(x=xs, y=[p["score"] for p in points], mode="markers", name="P(fake)",
                    marker={"size": 4, "color": "rgba(90,90,90,0.6)"})
    fig.add_scatter(x=xs, y=[p["smoothed"] for p in points], mode="lines", name="smoothed",
                    line={"width": 2.5, "color": "#d62728"})
    fig.update_layout(height=260, margin={"l": 10, "r": 10, "t": 10, "b": 10}, showlegend=True,
                      legend={"orientation": "h", "y": 1.12}, xaxis={"range": [-60, 0], "title": "seconds ago"},
                      yaxis={"range": [0, 1], "title": "P(fake)"})
    return fig


@st.fragment(run_every=1.0)
def live_panel() -> None:
    proc = live_ui.session_processor()
    stats = proc.stats()
    incoming = "screen" if st.session_state.get("live_source") == live_ui.SCREEN else "camera"
    waiting = proc.admission_job
    if waiting is not None and not waiting.started:  # the server's slots are busy with other jobs
        ui.job_progress(waiting, "Analysing")
    points = proc.timeline()
    m1, m2, m3 = st.columns(3)
    m1.metric("Smoothed P(fake)", "–" if stats.smoothed is None else f"{stats.smoothed:.2f}")
    m2.metric("Processed fps", f"{stats.fps_processed:.1f}", help=f"{incoming}: {stats.fps_camera:.1f} fps")
    latency = stats.latency_ms
    m3.metric("Latency", "–" if latency is None else f"{latency:.0f} ms" if latency < 1000 else f"{latency / 1000:.1f} s",
              help="frame capture to its result, median over 5 s")
    st.plotly_chart(timeline_figure(points), config={"displayModeBar": False}, key="live_timeline")
    st.caption(f"{len(points)} points in the last minute · {stats.processed} processed · {stats.dropped} skipped "
               f"· {incoming} {stats.fps_camera:.1f} fps")
    if stats.last_error:
        st.warning(f"Last analysis error: {stats.last_error}", icon=":material/warning:")


def take_snapshot() -> None:
    # A callback runs as soon as the click arrives, even when a fragment rerun is under way.
    st.session_state["live_snapshot_missing"] = processor.snapshot() is None


with side_col:
    live_panel()
    st.button("Snapshot", icon=":material/photo_camera:", key="live_snapshot", on_click=take_snapshot)
    if st.session_state.pop("live_snapshot_missing", False):
        st.info("No analysed frame yet: start the camera or share a screen first.")

gallery = processor.gallery()
if gallery:
    st.markdown("#### Snapshots")
    cols = st.columns(4)
    for n, snap in enumerate(gallery):
        r = snap.result
        score = "no face" if r.score is None else f"P(fake) {r.score:.2f}"
        cols[n % 4].image(snap.image, caption=f"#{n + 1} · {score} · {r.to_dict()['time_utc'][11:19]} UTC",
                          width="stretch")
    dl_col, clear_col = st.columns([3, 1])
    dl_col.download_button("Download snapshots (PNG + JSON)", data=processor.gallery_zip(),
                           file_name="apate-live-snapshots.zip", mime="application/zip", key="live_download")
    if clear_col.button("Clear gallery", key="live_clear"):
        processor.clear_gallery()
        st.rerun()
