"""streamlit-webrtc glue for the Live page: the shared detector, the per-session processor, ICE servers.

The camera goes through webrtc_streamer; a shared screen or tab through app.screen_share, with the same callbacks.

The frame callback runs on streamlit-webrtc's media thread: it touches no Streamlit API, only the
session's LiveProcessor (thread-safe), which it captured when the page built it.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import streamlit as st

from apate_core.errors import ApateError
from apate_core.live import LiveProcessor, default_detector_name
from apate_core.settings import Settings
from app import ui

PROCESSOR_KEY = "live_processor"
CAMERA_KEY = "apate-live"  # webrtc_streamer's key: its context lives in st.session_state under it
SCREEN = "Screen or tab"
SOURCES = ("Camera", SCREEN)


def model_choices() -> list[str]:
    from apate_core.detect import list_detectors

    default = default_detector_name()
    names = [default] + [n for n in list_detectors() if n != default]
    try:
        from apate_core.detect.pipeline import available_checkpoints

        names += [str(p) for p in available_checkpoints(ui.get_settings())]
    except ImportError:
        pass
    return names


@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
def shared_detector(name: str):
    """One detector per model name per process, shared by every session (its lock serialises use)."""
    settings = ui.get_settings()
    try:
        from apate_core.detect.pipeline import load_detector
    except ImportError:
        from apate_core.detect import create_detector

        return create_detector(name, device=settings.resolved_device())
    return load_detector(name, settings)


def ice_servers(settings: Settings) -> list[dict[str, Any]]:
    """APATE_ICE_SERVERS as a list of RTCIceServer dicts; empty setting = no ICE server at all.

    Accepted JSON: a list of servers, one server object, or {"iceServers": [...]}.
    """
    raw = settings.ice_servers.strip()
    if not raw:
        return []
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ApateError(f"APATE_ICE_SERVERS is not valid JSON ({exc.msg}); "
                         'example: [{"urls": "turn:turn.example.org:3478", "username": "u", "credential": "p"}]') from None
    if isinstance(value, dict):
        value = value.get("iceServers", [value])
    if not isinstance(value, list) or not all(isinstance(s, dict) and s.get("urls") for s in value):
        raise ApateError('APATE_ICE_SERVERS must be a JSON list of objects with "urls" '
                         '(and "username"/"credential" for TURN).')
    return value


def rtc_configuration(settings: Settings) -> dict[str, Any]:
    # An explicit (possibly empty) list: streamlit-webrtc fills in public STUN/TURN servers only when
    # iceServers is None, and aiortc adds Google's STUN server only when it is None.
    return {"iceServers": ice_servers(settings)}


def session_processor() -> LiveProcessor:
    """This session's processor; its worker holds a slot of the server's job queue while it analyses."""
    if PROCESSOR_KEY not in st.session_state:
        queue, session = ui.job_queue(), ui.session_id()  # captured here: the media thread has no session
        device = ui.get_settings().resolved_device()

        def admission(stop, on_queued):
            return queue.hold("live", session=session, device=device, stop=stop, on_queued=on_queued)

        st.session_state[PROCESSOR_KEY] = LiveProcessor(admission=admission)
    return st.session_state[PROCESSOR_KEY]


def camera_streaming() -> bool:
    """Whether the camera streamer is connecting or playing (its state is updated before each rerun)."""
    state = getattr(st.session_state.get(CAMERA_KEY), "state", None)
    return bool(state is not None and (state.playing or state.signalling))


def video_callback(processor: LiveProcessor) -> Callable:
    """av.VideoFrame -> av.VideoFrame with the latest result drawn on it; returns without waiting."""
    import av

    def callback(frame: "av.VideoFrame") -> "av.VideoFrame":
        out = processor.process(frame.to_ndarray(format="rgb24"))
        return av.VideoFrame.from_ndarray(out, format="rgb24")

    return callback


def ended_callback(processor: LiveProcessor) -> Callable[[], None]:
    def on_ended() -> None:
        processor.stop(timeout=0)  # on the media thread: signal only, never wait for inference

    return on_ended
