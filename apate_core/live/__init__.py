"""Live analysis of a camera or screen stream: a frame processor that never blocks the video.

No Streamlit and no streamlit-webrtc here; the page glue (app/live_ui.py) converts WebRTC frames
to RGB arrays and calls :meth:`LiveProcessor.process`.
"""

from .processor import (
    PROCESSING_SIZES,
    FrameResult,
    LiveOptions,
    LiveProcessor,
    LiveStats,
    Snapshot,
    analyse_frame,
    default_detector_name,
    ema_alpha,
    fit_within,
    gallery_zip,
)
from .overlay import annotate, score_colour

__all__ = [
    "PROCESSING_SIZES", "FrameResult", "LiveOptions", "LiveProcessor", "LiveStats", "Snapshot",
    "analyse_frame", "annotate", "default_detector_name", "ema_alpha", "fit_within", "gallery_zip", "score_colour",
]
