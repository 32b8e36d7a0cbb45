"""Identity: a face descriptor network (face-api.js's dlib ResNet, ported to PyTorch) and its distance.

    net = load_face_descriptor()                      # frozen, eval mode, shipped weights
    d = net(crops)                                    # (B, 3, 150, 150) RGB 0..255 -> (B, 128)
    same = descriptor_distance(d[0], d[1]) < MATCH_THRESHOLD

Sample face photos for evaluation are fetched at install time by ``python -m
apate_core.protect.identity.samples`` (not imported here: it is a command).
"""

from __future__ import annotations

from .descriptor import (DEFAULT_WEIGHTS, DESCRIPTOR_DIM, INPUT_SIZE, MATCH_THRESHOLD, MEAN_RGB, FaceDescriptorNet,
                         descriptor_distance, load_face_descriptor)

__all__ = [
    "DEFAULT_WEIGHTS", "DESCRIPTOR_DIM", "INPUT_SIZE", "MATCH_THRESHOLD", "MEAN_RGB", "FaceDescriptorNet",
    "descriptor_distance", "load_face_descriptor",
]
