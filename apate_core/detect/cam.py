"""Heatmaps of the evidence for "fake" via pytorch-grad-cam.

Detectors have ONE output, the fake logit, so the CAM target is that logit itself (not a class
index into a softmax): positive gradients mean "this region makes the image look more fake".
Maps come back at each frame's own resolution, float32 in [0, 1].

A frame scored in tiles (models.tile_boxes) gets one map stitched from its tiles' unscaled maps
(overlaps averaged) and scaled to [0, 1] once for the whole frame, so a hot tile stays hotter than a
cold one; a one-tile frame gets exactly pytorch-grad-cam's per-image min-max scaling.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Optional, Sequence

import cv2
import numpy as np
import torch
from pytorch_grad_cam import EigenCAM, EigenGradCAM, GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, XGradCAM
from pytorch_grad_cam.base_cam import BaseCAM
from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection

from ..errors import InputRefused
from ..progress import CancelToken, ProgressCallback, check_cancelled, no_progress
from .models import Detector, DetectorConfig, as_rgb_uint8, center_crop_scale, crop_offsets, group_by_shape


class FakeLogitTarget:
    """CAM target for a one-output detector: the fake logit of one sample."""

    def __call__(self, model_output: torch.Tensor) -> torch.Tensor:
        return model_output.reshape(-1)[0]


def _orient_to_fake(projection: np.ndarray, activations: np.ndarray, grads: np.ndarray) -> np.ndarray:
    # An SVD component's sign is arbitrary; flip it to agree with the fake logit's
    # gradient-weighted activations (the Grad-CAM direction), so the map shows evidence FOR fake.
    signed = (grads.mean(axis=(2, 3))[:, :, None, None] * activations).sum(axis=1)
    agree = (projection * signed).reshape(len(projection), -1).sum(axis=1)
    return np.where(agree[:, None, None] < 0, -projection, projection).astype(np.float32)


class OrientedEigenCAM(EigenCAM):
    """EigenCAM (first principal component of the activations) with its sign tied to the fake logit."""

    def __init__(self, model, target_layers, reshape_transform=None):
        BaseCAM.__init__(self, model, target_layers, reshape_transform, uses_gradients=True)

    def get_cam_image(self, input_tensor, target_layer, targets, activations, grads, eigen_smooth):
        return _orient_to_fake(get_2d_projection(activations), activations, grads)


class OrientedEigenGradCAM(EigenGradCAM):
    """EigenGradCAM (principal component of gradient x activation), sign tied to the fake logit."""

    def get_cam_image(self, input_tensor, target_layer, targets, activations, grads, eigen_smooth):
        return _orient_to_fake(get_2d_projection(grads * activations), activations, grads)


@dataclass(frozen=True)
class CamMethod:
    name: str
    cam_class: type
    description: str


_CAM_METHODS: dict[str, CamMethod] = {}


def register_cam_method(name: str, cam_class: type, description: str) -> None:
    """Add a pytorch-grad-cam compatible class (model, target_layers, reshape_transform) by name."""
    _CAM_METHODS[name] = CamMethod(name, cam_class, description)


def list_cam_methods() -> list[str]:
    return list(_CAM_METHODS)


def get_cam_method(name: str) -> CamMethod:
    try:
        return _CAM_METHODS[name]
    except KeyError:
        raise InputRefused(f"Unknown heatmap method {name!r}", accepted=", ".join(_CAM_METHODS)) from None


register_cam_method("gradcam", GradCAM, "Grad-CAM: activations weighted by the mean gradient per channel")
register_cam_method("gradcam++", GradCAMPlusPlus, "Grad-CAM++: higher-order gradient weights, sharper for several regions")
register_cam_method("hirescam", HiResCAM, "HiResCAM: element-wise gradient x activation, faithful to the model")
register_cam_method("xgradcam", XGradCAM, "XGrad-CAM: activation-normalised gradient weights")
register_cam_method("layercam", LayerCAM, "LayerCAM: positive gradients x activations per location")
register_cam_method("eigencam", OrientedEigenCAM, "EigenCAM: dominant activation pattern, oriented toward 'fake'")
register_cam_method("eigengradcam", OrientedEigenGradCAM, "EigenGradCAM: principal component of gradient x activation")


def _set_unscaled(cam: BaseCAM, on: bool) -> bool:
    """Make ``cam(...)`` return maps WITHOUT pytorch-grad-cam's per-image min-max scaling (ReLU'd, resized
    to the input, averaged over target layers), so the tiles of one frame can share one scale; ``on=False``
    restores the library's own maps. Only for classes that keep BaseCAM's per-layer computation; returns
    whether the maps are now unscaled."""
    for name in ("compute_cam_per_layer", "aggregate_multi_layers"):
        cam.__dict__.pop(name, None)
    if not on or type(cam).compute_cam_per_layer is not BaseCAM.compute_cam_per_layer or \
            type(cam).aggregate_multi_layers is not BaseCAM.aggregate_multi_layers:
        return False

    def per_layer(input_tensor, targets, eigen_smooth):
        activations = [a.cpu().data.numpy() for a in cam.activations_and_grads.activations]
        grads = [g.cpu().data.numpy() for g in cam.activations_and_grads.gradients]
        width, height = cam.get_target_width_height(input_tensor)
        out = []
        for i, layer in enumerate(cam.target_layers):
            raw = cam.get_cam_image(input_tensor, layer, targets, activations[i] if i < len(activations) else None,
                                    grads[i] if i < len(grads) else None, eigen_smooth)
            raw = np.maximum(raw, 0)
            out.append(np.float32([cv2.resize(np.float32(m), (width, height)) for m in raw])[:, None])
        return out

    cam.compute_cam_per_layer = per_layer
    cam.aggregate_multi_layers = lambda layers: np.maximum(np.concatenate(layers, axis=1), 0).mean(axis=1)
    return True


@contextmanager
def cam_session(detector: Detector, method: str = "gradcam") -> Iterator[BaseCAM]:
    """A CAM object whose hooks on the detector are always removed on exit.

    Holds detector.lock throughout: hooks must not see another thread's forward passes.
    """
    cam_class = get_cam_method(method).cam_class
    with detector.lock:
        cam = cam_class(model=detector.module, target_layers=detector.target_layers,
                        reshape_transform=detector.reshape_transform)
        try:
            yield cam
        finally:
            cam.activations_and_grads.release()
            _set_unscaled(cam, False)  # no cycle through the overrides: the CAM is freed at once
            _drop_graph(cam)
            detector.module.zero_grad(set_to_none=True)  # drop parameter grads the backward pass left


def _drop_graph(cam: BaseCAM) -> None:
    """Let go of the last batch: pytorch-grad-cam keeps its outputs (whose graph the retained backward pass
    kept, saved activations included) and the hooked activations and gradients until the next call."""
    cam.outputs = None
    cam.activations_and_grads.activations = []
    cam.activations_and_grads.gradients = []


@contextmanager
def grad_only_from(detector: Detector) -> Iterator[bool]:
    """Autograd from the CAM target layers on only: every CAM method needs d(logit)/d(target activations),
    so the layers before them need neither saved activations nor a backward pass (less memory and time;
    the maps are the same). Yields whether the input must require grad instead (targets without parameters).
    Call with detector.lock held (cam_session holds it): parameters are restored on exit."""
    params = list(detector.module.parameters())
    previous = [p.requires_grad for p in params]
    target_ids = {id(p) for layer in detector.target_layers for p in layer.parameters()}
    if not target_ids:
        yield True
        return
    try:
        for p in params:
            p.requires_grad_(id(p) in target_ids)
        yield False
    finally:
        for p, flag in zip(params, previous):
            p.requires_grad_(flag)


def cam_to_frame(cam: np.ndarray, frame_hw: tuple[int, int], config: DetectorConfig) -> np.ndarray:
    """Map a CAM at network-input size back onto the original frame (zeros outside a centre crop)."""
    height, width = frame_hw
    if config.resize == "center_crop":
        new_h, new_w = center_crop_scale(height, width, config)
        top, left = crop_offsets(new_h, new_w, config.input_size)
        canvas = np.zeros((new_h, new_w), dtype=np.float32)
        canvas[top:top + cam.shape[0], left:left + cam.shape[1]] = cam
        cam = canvas
    if cam.shape != (height, width):
        cam = cv2.resize(cam.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(cam, 0.0, 1.0).astype(np.float32)


def _stitch(frame_hw: tuple[int, int], boxes: Sequence[tuple[int, int, int, int]], maps: Sequence[np.ndarray],
            scaled: bool) -> np.ndarray:
    """One frame's [0, 1] map from its tiles' maps (overlaps averaged), scaled once for the whole frame.
    In place: a 4K frame's map is 33 MB of float32, and two of them are all this holds at a time."""
    total = np.zeros(frame_hw, dtype=np.float32)
    count = np.zeros(frame_hw, dtype=np.float32)
    for (top, left, h, w), cam in zip(boxes, maps):
        total[top:top + h, left:left + w] += cam
        count[top:top + h, left:left + w] += 1.0
    total /= np.maximum(count, 1.0, out=count)
    del count
    if not scaled:  # pytorch-grad-cam's per-map min-max scaling, done in place
        total -= total.min()
        total /= 1e-7 + total.max()
    return np.clip(total, 0.0, 1.0, out=total)


@contextmanager
def _maps_only(detector: Detector, on: bool) -> Iterator[None]:
    """Tell a model whose CPU score comes from a second, faster encoder (the CLIP probe's int8 one) that
    this gradient pass's logits go unread, so it need not run that encoder too: the maps are the same."""
    module = detector.module
    previous = getattr(module, "match_fast_scores", None)
    if on and previous is not None:
        module.match_fast_scores = False
    try:
        yield
    finally:
        if previous is not None:
            module.match_fast_scores = previous


def score_and_cam(detector: Detector, images: Sequence[np.ndarray], method: str = "gradcam", *,
                  batch_size: int = 8, aug_smooth: bool = False, progress: ProgressCallback = no_progress,
                  cancel: Optional[CancelToken] = None, scores: bool = True,
                  ) -> tuple[Optional[np.ndarray], list[np.ndarray]]:
    """(P(fake) per image, float32 [0, 1] map per image at its own resolution) from ONE forward+backward
    pass per batch of tiles (the CAM's own forward gives the logits); large frames of native-resolution
    detectors go in tiles, like predict_proba (mean tile logit), with their maps stitched. Gradients flow
    from the target layers on only. With aug_smooth the maps average augmented passes and the scores
    come from the last of them (use predict_proba for scores). With ``scores=False`` (maps only) the
    first item is None and a model may skip work that only the scores need."""
    frames = [as_rgb_uint8(img, i) for i, img in enumerate(images)]
    units, owners, boxes = detector.split_tiles(frames)
    tiled = np.bincount(owners, minlength=len(frames))[owners] > 1  # per unit: one of several tiles
    tile_logits = np.empty(len(units), dtype=np.float32)
    tile_maps: list[Optional[np.ndarray]] = [None] * len(units)
    scaled = np.ones(len(units), dtype=bool)
    batches = group_by_shape([(*detector.input_shape(u), bool(t)) for u, t in zip(units, tiled)],
                             detector.batch_limit(units, batch_size))
    with cam_session(detector, method) as cam, torch.enable_grad(), grad_only_from(detector) as full_graph, \
            _maps_only(detector, not scores):
        for done, idx in enumerate(batches):
            check_cancelled(cancel)
            scaled[idx] = not _set_unscaled(cam, bool(tiled[idx[0]]))  # one-tile frames: the library's maps
            batch = detector.preprocess([units[i] for i in idx]).to(detector.device).requires_grad_(full_graph)
            raw = cam(input_tensor=batch, targets=[FakeLogitTarget() for _ in idx], aug_smooth=aug_smooth)
            tile_logits[idx] = cam.outputs.detach().reshape(len(idx), -1)[:, 0].float().cpu().numpy()
            _drop_graph(cam)  # before the next batch's forward pass, not after it
            for j, i in enumerate(idx):
                tile_maps[i] = np.nan_to_num(raw[j])
            progress((done + 1) / len(batches), f"Heatmaps {sum(len(b) for b in batches[:done + 1])}/{len(units)}")
    probs = detector.probabilities(detector.frame_logits(tile_logits, owners, len(frames))) if scores else None
    maps = []
    for n, frame in enumerate(frames):
        mine = np.flatnonzero(owners == n)
        if len(mine) == 1:  # one tile is the whole frame (as the network saw it)
            maps.append(cam_to_frame(tile_maps[mine[0]], frame.shape[:2], detector.config))
        else:
            maps.append(_stitch(frame.shape[:2], [boxes[i] for i in mine], [tile_maps[i] for i in mine],
                                bool(scaled[mine].all())))
        for i in mine:
            tile_maps[i] = None  # stitched: let the tiles' maps go
    return probs, maps


def compute_cam_list(detector: Detector, images: Sequence[np.ndarray], method: str = "gradcam", *,
                     batch_size: int = 8, aug_smooth: bool = False,
                     progress: ProgressCallback = no_progress,
                     cancel: Optional[CancelToken] = None) -> list[np.ndarray]:
    """One (H,W) float32 map in [0,1] per image, each at that image's own resolution."""
    return score_and_cam(detector, images, method, batch_size=batch_size, aug_smooth=aug_smooth,
                         progress=progress, cancel=cancel, scores=False)[1]


def compute_cam(detector: Detector, images: Sequence[np.ndarray], method: str = "gradcam", *,
                batch_size: int = 8, aug_smooth: bool = False, progress: ProgressCallback = no_progress,
                cancel: Optional[CancelToken] = None) -> np.ndarray:
    """(N,H,W) float32 maps in [0,1] for same-size images; mixed sizes: use compute_cam_list."""
    if len(images) == 0:
        raise InputRefused("No images given")
    maps = compute_cam_list(detector, images, method, batch_size=batch_size, aug_smooth=aug_smooth,
                            progress=progress, cancel=cancel)
    if len({m.shape for m in maps}) > 1:
        raise InputRefused("Images have different sizes", accepted="same-size images; compute_cam_list for mixed sizes")
    return np.stack(maps)


COLORMAPS = {"jet": cv2.COLORMAP_JET, "turbo": cv2.COLORMAP_TURBO, "inferno": cv2.COLORMAP_INFERNO,
             "viridis": cv2.COLORMAP_VIRIDIS, "magma": cv2.COLORMAP_MAGMA}


def overlay_heatmap(image: np.ndarray, cam: np.ndarray, opacity: float = 0.5, colormap: str = "jet") -> np.ndarray:
    """Blend a [0,1] map (resized to the image if needed) over an RGB uint8 image; returns RGB uint8."""
    if not 0.0 <= opacity <= 1.0:
        raise ValueError("opacity must be within [0, 1]")
    if colormap not in COLORMAPS:
        raise ValueError(f"colormap must be one of {sorted(COLORMAPS)}")
    image = as_rgb_uint8(image)
    height, width = image.shape[:2]
    cam = np.clip(np.nan_to_num(np.asarray(cam, dtype=np.float32)), 0.0, 1.0)
    if cam.shape != (height, width):
        cam = cv2.resize(cam, (width, height), interpolation=cv2.INTER_LINEAR)
    heat = cv2.cvtColor(cv2.applyColorMap(np.uint8(np.round(cam * 255)), COLORMAPS[colormap]), cv2.COLOR_BGR2RGB)
    blended = (1.0 - opacity) * image.astype(np.float32) + opacity * heat.astype(np.float32)
    return np.clip(np.round(blended), 0, 255).astype(np.uint8)
