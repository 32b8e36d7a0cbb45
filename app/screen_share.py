"""Screen or tab sharing for the Live page.

The browser half is a custom component without a build step (components/screen_share: index.html and main.js,
getDisplayMedia and an RTCPeerConnection). It sends its offer, with every ICE candidate in it, as its value; the
offer is answered here by streamlit-webrtc's own WebRtcWorker (aiortc), made with the same frame and ended
callbacks as the camera, so the shared screen's frames go through the session's LiveProcessor. The answer goes
back to the browser as a component argument. The frame callback touches no Streamlit API.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import streamlit as st
import streamlit.components.v1 as components
from streamlit_webrtc import WebRtcMode
from streamlit_webrtc.config import compile_rtc_configuration
from streamlit_webrtc.webrtc import WebRtcWorker

from apate_core.live import LiveProcessor
from app import live_ui

COMPONENT_DIR = Path(__file__).resolve().parent / "components" / "screen_share"
STATE_KEY = "live_screen_share"
COMPONENT_KEY = "live_screen"
OFFER_TIMEOUT_S = 10.0  # as streamlit-webrtc: aioice itself waits up to 5 s
# At most 720p and 15 frames/s: the detector sees 320x240 to 640x480, and aiortc decodes and re-encodes every frame.
DISPLAY_CONSTRAINTS = {"video": {"width": {"max": 1280}, "height": {"max": 720}, "frameRate": {"max": 15}},
                       "audio": False}

_component = components.declare_component("screen_share", path=str(COMPONENT_DIR))


def create_worker(processor: LiveProcessor, rtc_configuration: dict[str, Any], *,
                  loop: Optional[asyncio.AbstractEventLoop] = None, relay=None) -> WebRtcWorker:
    """A SENDRECV worker whose returned video is each shared frame with the processor's result drawn on it."""
    return WebRtcWorker(
        mode=WebRtcMode.SENDRECV,
        rtc_configuration=compile_rtc_configuration(rtc_configuration),  # [] stays []: no public STUN added
        source_video_track=None, source_audio_track=None, sink_video_track=None, sink_audio_track=None,
        player_factory=None, in_recorder_factory=None, out_recorder_factory=None,
        video_frame_callback=live_ui.video_callback(processor), audio_frame_callback=None,
        queued_video_frames_callback=None, queued_audio_frames_callback=None,
        on_video_ended=live_ui.ended_callback(processor), on_audio_ended=None,
        video_processor_factory=None, audio_processor_factory=None,
        async_processing=True, video_receiver_size=4, audio_receiver_size=4,
        sendback_video=True, sendback_audio=False,
        loop=loop, relay=relay,
    )


@dataclass
class ScreenShare:
    """One session's screen share: the browser's current offer id, its worker and the answer (or error) for it."""

    offer_id: Optional[str] = None
    worker: Optional[WebRtcWorker] = None
    answer: Optional[dict[str, str]] = None
    error: Optional[dict[str, str]] = None

    @property
    def active(self) -> bool:
        return self.worker is not None and self.worker.pc.connectionState not in ("closed", "failed")

    def stop(self) -> None:
        worker, self.worker, self.answer = self.worker, None, None
        if worker is not None:
            worker.stop()

    def handle(self, value: Any, processor: LiveProcessor, rtc_configuration: dict[str, Any], **worker_kw) -> None:
        """The component's new value: {id, offer} starts a worker and keeps its answer; {id, stopped} ends it."""
        if not isinstance(value, dict) or not value.get("id"):
            return
        offer_id = str(value["id"])
        if value.get("stopped"):
            if offer_id == self.offer_id:
                self.stop()
            return
        offer = value.get("offer")
        if not isinstance(offer, dict) or offer_id == self.offer_id:
            return
        self.stop()  # a new offer replaces whatever ran before
        self.offer_id, self.error = offer_id, None
        worker = create_worker(processor, rtc_configuration, **worker_kw)
        try:
            answer = worker.process_offer(offer.get("sdp", ""), offer.get("type", "offer"), timeout=OFFER_TIMEOUT_S)
        except Exception as exc:  # the worker stopped itself; the browser shows why
            self.error = {"id": offer_id, "message": f"The server could not answer the screen share: {exc}"}
            return
        self.worker = worker
        self.answer = {"id": offer_id, "sdp": answer.sdp, "type": answer.type}


def session_share() -> ScreenShare:
    if STATE_KEY not in st.session_state:
        st.session_state[STATE_KEY] = ScreenShare()
    return st.session_state[STATE_KEY]


def screen_share(processor: LiveProcessor, rtc_configuration: dict[str, Any]) -> ScreenShare:
    """Show the share buttons and the returned video; the offer is answered before the rerun it causes."""
    share = session_share()
    if share.worker is not None and not share.active:  # ICE failed, or the session left the page
        share.stop()

    def on_change() -> None:
        share.handle(st.session_state.get(COMPONENT_KEY), processor, rtc_configuration)

    _component(key=COMPONENT_KEY, ice_servers=rtc_configuration["iceServers"], constraints=DISPLAY_CONSTRAINTS,
               answer=share.answer, error=share.error, default=None, on_change=on_change)
    return share
