"""Detect engine, model layer: detector registry, checkpoints users bring, heatmaps and faces.

Every detector outputs one logit per image; P(fake) = sigmoid(logit / T), T from its card. Nothing is downloaded:
architectures are built with weights=None and weights come only from local checkpoints.
Heatmap and face helpers are imported on first use: pytorch-grad-cam pulls in matplotlib and
scikit-learn, which scoring alone does not need.
"""

from __future__ import annotations

import importlib
from typing import Any

from .checkpoints import infer_architecture, is_cnndetection, load_detector, read_state_dict, save_detector
from .models import IMAGENET_MEAN, IMAGENET_STD, CnnGru, Detector, DetectorConfig
from .registry import DetectorSpec, create_detector, get_spec, list_detectors, register_detector

_LAZY = {
    "cam": ("CamMethod", "FakeLogitTarget", "cam_session", "compute_cam", "compute_cam_list",
            "list_cam_methods", "overlay_heatmap", "register_cam_method"),
    "faces": ("FaceBox", "FaceScore", "crop_with_margin", "detect_faces", "face_backend", "score_faces"),
}
_LAZY_NAMES = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str) -> Any:
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY_NAMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CnnGru", "Detector", "DetectorConfig", "DetectorSpec", "IMAGENET_MEAN", "IMAGENET_STD",
    "create_detector", "get_spec", "infer_architecture", "is_cnndetection", "list_detectors",
    "load_detector", "read_state_dict", "register_detector", "save_detector", *_LAZY_NAMES,
]
