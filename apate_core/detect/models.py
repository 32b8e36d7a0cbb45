"""Detector config, the Detector wrapper and the architectures torchvision does not ship.

Every detector outputs ONE logit per image; P(fake) = sigmoid(logit / T), T the temperature its card
was calibrated with (1 without one). Keeping a single output (no 2-way softmax) means "evidence for
fake" is simply the gradient of that logit, which the heatmaps rely on.

Native-resolution detectors (resize="none") see a frame larger than ``config.tile`` px on a side as
equal tiles of at most tile x tile px (see :func:`tile_boxes`); the frame's logit is the MEAN of its
tile logits and its heatmap is stitched from the tiles' maps. Memory then depends on the tile, not on
the frame: a 4K frame costs what a 1024 px one does. A frame that fits in one tile is scored exactly
as before (one forward pass of the whole frame). ``tile=0`` turns tiling off.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import CheckpointError, InputRefused
from ..progress import CancelToken, ProgressCallback, check_cancelled, no_progress

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

RESIZE_POLICIES = ("resize", "center_crop", "none")
INTERPOLATIONS = ("bilinear", "bicubic", "nearest")
CONFIG_FIELDS = ("input_size", "resize", "mean", "std", "interpolation", "tile", "native_side")
# Below this a ResNet's five stride-2 stages leave nothing to pool.
MIN_SIDE_NO_RESIZE = 32
DEFAULT_TILE = 1024  # longest tile side, px, for native-resolution detectors (0: whole frames)
# Most network-input pixels in one batch (16 frames at 224x224): bounds activation memory per forward pass.
BATCH_PIXELS = 16 * 224 * 224

TargetLayersFn = Callable[[nn.Module], list[nn.Module]]


@dataclass(frozen=True)
class DetectorConfig:
    """Preprocessing and architecture of a detector; serialised into the model card.

    resize: "resize" squashes to input_size x input_size, "center_crop" resizes the shorter side
    to input_size then crops the centre, "none" feeds the full image (CNNDetection's protocol).
    native_side: with center_crop, 0 scales the shorter side to input_size; N > 0 leaves pixels at their
    own scale while the shorter side is between input_size and N (larger frames shrink to N, smaller
    ones grow to input_size), so the crop sees a generator's pixel-level traces instead of resampling
    them away, and the scale a large photo is seen at stays bounded.
    tile: with resize="none", frames with a side over ``tile`` px are scored in tiles (mean of the
    tile logits; module docstring); 0 scores whole frames whatever their size. Ignored otherwise.
    options: builder arguments (e.g. ViT depth), kept so a checkpoint can be rebuilt exactly.
    """

    architecture: str
    input_size: int = 224
    resize: str = "resize"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: str = "bilinear"
    tile: int = DEFAULT_TILE
    native_side: int = 0
    options: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        # Normalise list-like input (e.g. from JSON) to tuples so the dataclass stays immutable.
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        options = self.options.items() if isinstance(self.options, Mapping) else self.options
        object.__setattr__(self, "options", tuple(sorted((str(k), v) for k, v in options)))
        self._validate()

    def _validate(self) -> None:
        if not self.architecture:
            raise ValueError("architecture must be named")
        if self.resize not in RESIZE_POLICIES:
            raise ValueError(f"resize must be one of {RESIZE_POLICIES}, got {self.resize!r}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {self.interpolation!r}")
        if not isinstance(self.input_size, int) or self.input_size < MIN_SIDE_NO_RESIZE:
            raise ValueError(f"input_size must be an int >= {MIN_SIDE_NO_RESIZE}, got {self.input_size!r}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError("mean and std need 3 values each, std > 0")
        if not isinstance(self.tile, int) or isinstance(self.tile, bool) or not (
                self.tile == 0 or self.tile >= 2 * MIN_SIDE_NO_RESIZE):
            raise ValueError(f"tile must be 0 (off) or an int >= {2 * MIN_SIDE_NO_RESIZE}, got {self.tile!r}")
        if not isinstance(self.native_side, int) or isinstance(self.native_side, bool) or not (
                self.native_side == 0 or self.native_side >= self.input_size):
            raise ValueError(f"native_side must be 0 (off) or an int >= input_size ({self.input_size}), "
                             f"got {self.native_side!r}")

    @property
    def option_dict(self) -> dict[str, Any]:
        return dict(self.options)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form for the model card."""
        return {
            "architecture": self.architecture,
            "input_size": self.input_size,
            "resize": self.resize,
            "mean": list(self.mean),
            "std": list(self.std),
            "interpolation": self.interpolation,
            "tile": self.tile,
            "native_side": self.native_side,
            "options": self.option_dict,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "DetectorConfig":
        """Inverse of to_dict; a bad card (user data) is a CheckpointError."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise CheckpointError(f"Model card config has unknown fields {unknown}", accepted=", ".join(sorted(known)))
        try:
            return cls(**dict(data))
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"Model card config is invalid: {exc}") from exc

    def replace(self, **changes: Any) -> "DetectorConfig":
        return dataclasses.replace(self, **changes)


# --------------------------------------------------------------------------------------------
# Architectures torchvision does not ship
# --------------------------------------------------------------------------------------------


class CnnGru(nn.Module):
    """Per-frame ResNet-18 features -> GRU -> clip logit; a per-frame head scores single frames.

    forward(images (N,3,H,W)) gives per-frame logits (N,1) so the model behaves like every other
    detector for images and heatmaps; forward_clip((B,T,3,H,W)) gives (clip (B,), frames (B,T)).
    """

    feature_dim = 512

    def __init__(self, hidden_size: int = 128) -> None:
        super().__init__()
        import torchvision.models as tvm

        self.backbone = tvm.resnet18(weights=None)
        self.backbone.fc = nn.Identity()
        self.frame_head = nn.Linear(self.feature_dim, 1)
        self.gru = nn.GRU(self.feature_dim, hidden_size, batch_first=True)
        self.clip_head = nn.Linear(hidden_size, 1)

    def frame_features(self, images: torch.Tensor) -> torch.Tensor:
        return self.backbone(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.frame_head(self.frame_features(images))

    def clip_from_features(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """features (B,T,512) -> (clip logits (B,), frame logits (B,T))."""
        _, last_hidden = self.gru(features)
        clip = self.clip_head(last_hidden[-1]).squeeze(-1)
        frames = self.frame_head(features).squeeze(-1)
        return clip, frames

    def forward_clip(self, clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, t = clips.shape[:2]
        features = self.frame_features(clips.flatten(0, 1)).view(b, t, -1)
        return self.clip_from_features(features)


def vit_tokens_to_grid(tokens: torch.Tensor) -> torch.Tensor:
    """ViT tokens (B, 1+n, C) -> (B, C, s, s): drop the class token, lay patches on their grid."""
    patches = tokens[:, 1:, :]
    side = math.isqrt(patches.shape[1])
    if side * side != patches.shape[1]:
        raise ValueError(f"{patches.shape[1]} patch tokens do not form a square grid")
    return patches.reshape(tokens.shape[0], side, side, tokens.shape[2]).permute(0, 3, 1, 2)


# --------------------------------------------------------------------------------------------
# Preprocessing
# --------------------------------------------------------------------------------------------


def as_rgb_uint8(image: Any, index: int = 0) -> np.ndarray:
    """Validate one frame as HxWx3 uint8 RGB; grey is expanded, an alpha channel dropped."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise InputRefused(f"Image {index} is not a uint8 numpy array", accepted="HxWx3 uint8 RGB arrays")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise InputRefused(f"Image {index} has shape {image.shape}", accepted="HxWx3 uint8 RGB arrays")
    if min(image.shape[:2]) < 1:
        raise InputRefused(f"Image {index} is empty")
    return image[:, :, :3]


def shorter_side_shape(height: int, width: int, size: int) -> tuple[int, int]:
    """Shape after resizing the shorter side to `size` (aspect kept)."""
    if height <= width:
        return size, max(size, int(round(width * size / height)))
    return max(size, int(round(height * size / width))), size


def center_crop_scale(height: int, width: int, config: DetectorConfig) -> tuple[int, int]:
    """Shape a frame is scaled to before center_crop takes its centre (see DetectorConfig.native_side)."""
    short = min(height, width)
    target = config.input_size if not config.native_side else min(max(short, config.input_size), config.native_side)
    return (height, width) if target == short else shorter_side_shape(height, width, target)


def crop_offsets(height: int, width: int, size: int) -> tuple[int, int]:
    return int(round((height - size) / 2.0)), int(round((width - size) / 2.0))


def _interp_mode(name: str):
    from torchvision.transforms import InterpolationMode

    return {"bilinear": InterpolationMode.BILINEAR, "bicubic": InterpolationMode.BICUBIC,
            "nearest": InterpolationMode.NEAREST}[name]


def preprocess_one(image: np.ndarray, config: DetectorConfig) -> torch.Tensor:
    """HxWx3 uint8 -> normalised float (3,h,w) following the config's resize policy."""
    import torchvision.transforms.v2.functional as TF

    # torch.tensor copies: decoded images may be read-only views, which torch.from_numpy warns about.
    tensor = torch.tensor(np.asarray(image, dtype=np.uint8)).permute(2, 0, 1).float().div_(255.0)
    height, width = image.shape[:2]
    mode = _interp_mode(config.interpolation)
    size = config.input_size
    if config.resize == "resize" and (height, width) != (size, size):
        tensor = TF.resize(tensor, [size, size], interpolation=mode, antialias=True)
    elif config.resize == "center_crop":
        new_h, new_w = center_crop_scale(height, width, config)
        if (new_h, new_w) != (height, width):
            tensor = TF.resize(tensor, [new_h, new_w], interpolation=mode, antialias=True)
        top, left = crop_offsets(new_h, new_w, size)
        tensor = tensor[:, top:top + size, left:left + size]
    elif config.resize == "none" and min(height, width) < MIN_SIDE_NO_RESIZE:
        raise InputRefused(f"Image is {width}x{height} pixels", limit=f"at least {MIN_SIDE_NO_RESIZE} px per side")
    mean = torch.tensor(config.mean).view(3, 1, 1)
    std = torch.tensor(config.std).view(3, 1, 1)
    return (tensor.clamp_(0.0, 1.0) - mean) / std


def tile_boxes(height: int, width: int, side: int) -> list[tuple[int, int, int, int]]:
    """(top, left, h, w) of the tiles a height x width frame is scored in: one box (the frame) when both
    sides fit in ``side`` (or side is 0), else rows x cols tiles of ONE size, each side <= side, spread
    evenly from edge to edge (neighbours overlap by less than a pixel per tile, when the side does not
    divide evenly). Equal tiles batch together, and their logits weigh equally in the frame's mean."""
    if side <= 0 or (height <= side and width <= side):
        return [(0, 0, height, width)]
    rows, cols = -(-height // side), -(-width // side)
    tile_h, tile_w = -(-height // rows), -(-width // cols)

    def starts(count: int, total: int, size: int) -> list[int]:
        return [0] if count == 1 else [int(round(i * (total - size) / (count - 1))) for i in range(count)]

    return [(top, left, tile_h, tile_w) for top in starts(rows, height, tile_h) for left in starts(cols, width, tile_w)]


def group_by_shape(shapes: Sequence[tuple[int, ...]], batch_size: int) -> list[list[int]]:
    """Index batches of at most batch_size whose members share a shape (order kept within shape)."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for index, shape in enumerate(shapes):
        groups.setdefault(tuple(shape), []).append(index)
    return [idx[i:i + batch_size] for idx in groups.values() for i in range(0, len(idx), batch_size)]


# --------------------------------------------------------------------------------------------
# Detector
# --------------------------------------------------------------------------------------------


def state_dict_sha256(module: nn.Module) -> str:
    """sha256 of the safetensors serialisation: equals the file hash save_detector writes."""
    from safetensors.torch import save

    return hashlib.sha256(save(plain_state_dict(module))).hexdigest()


def plain_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    # Contiguous CPU copies: safetensors refuses shared or strided storage.
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in module.state_dict().items()}


@dataclass(eq=False, repr=False)
class Detector:
    """An nn.Module that outputs one fake logit per image, with its preprocessing and model card.

    Build with apate_core.detect.create_detector or load_detector rather than directly.
    `lock` serialises use of the module: heatmap hooks would otherwise record the activations
    of a prediction running in another thread (e.g. a second dashboard session).
    """

    module: nn.Module
    config: DetectorConfig
    target_layers_fn: TargetLayersFn
    card: dict[str, Any] = field(default_factory=dict)
    token_grid: bool = False
    temporal: bool = False
    _sha256: Optional[str] = None
    lock: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self) -> None:
        self.module.eval()

    def __repr__(self) -> str:
        return f"Detector(name={self.name!r}, architecture={self.architecture!r}, resize={self.config.resize!r})"

    # ---- identity -------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return str(self.card.get("name") or self.config.architecture)

    @property
    def architecture(self) -> str:
        return self.config.architecture

    @property
    def weights_sha256(self) -> str:
        """sha256 of the weights file it came from, else of its safetensors serialisation (computed once)."""
        if self._sha256 is None:
            self._sha256 = state_dict_sha256(self.module)
        return self._sha256

    @property
    def model_card(self) -> dict[str, Any]:
        """JSON-able card: the stored card plus the live config and weights hash."""
        card = dict(self.card)
        card.setdefault("name", self.name)
        card["architecture"] = self.architecture
        card["config"] = self.config.to_dict()
        card["weights_sha256"] = self.weights_sha256
        return card

    # ---- device ---------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    def to(self, device: str | torch.device) -> "Detector":
        self.module.to(device)
        return self

    # ---- heatmap hooks --------------------------------------------------------------------
    @property
    def target_layers(self) -> list[nn.Module]:
        return self.target_layers_fn(self.module)

    @property
    def reshape_transform(self) -> Optional[Callable[[torch.Tensor], torch.Tensor]]:
        return vit_tokens_to_grid if self.token_grid else None

    # ---- inference ------------------------------------------------------------------------
    def preprocess(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """Frames (HxWx3 uint8 RGB) -> (N,3,h,w) float tensor on CPU; sizes must agree after resizing."""
        tensors = [preprocess_one(as_rgb_uint8(img, i), self.config) for i, img in enumerate(images)]
        if not tensors:
            raise InputRefused("No images given")
        shapes = {tuple(t.shape) for t in tensors}
        if len(shapes) > 1:
            raise InputRefused("Images of different sizes cannot share one batch without resizing",
                               accepted="same-size images, or predict_proba which groups them")
        return torch.stack(tensors)

    def _logits(self, batch: torch.Tensor) -> torch.Tensor:
        return self.module(batch.to(self.device)).reshape(batch.shape[0], -1)[:, 0]

    # ---- tiles ----------------------------------------------------------------------------
    def tiles(self, image: np.ndarray) -> list[tuple[int, int, int, int]]:
        """(top, left, h, w) of the tiles this frame is scored in (one box, the frame, unless it is tiled)."""
        height, width = image.shape[:2]
        return tile_boxes(height, width, self.config.tile if self.config.resize == "none" else 0)

    def split_tiles(self, frames: Sequence[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray, list[tuple]]:
        """(tile views, owning frame index per tile, box per tile) of validated RGB uint8 frames."""
        units, owners, boxes = [], [], []
        for n, frame in enumerate(frames):
            for box in self.tiles(frame):
                top, left, h, w = box
                units.append(frame[top:top + h, left:left + w])
                owners.append(n)
                boxes.append(box)
        return units, np.asarray(owners, dtype=np.int64), boxes

    def batch_limit(self, units: Sequence[np.ndarray], batch_size: int) -> int:
        """batch_size, lowered so one batch stays under BATCH_PIXELS of network input."""
        largest = max((int(np.prod(self.input_shape(u))) for u in units), default=1)
        return max(1, min(int(batch_size), BATCH_PIXELS // max(largest, 1)))

    @staticmethod
    def frame_logits(tile_logits: np.ndarray, owners: np.ndarray, count: int) -> np.ndarray:
        """Per frame, the mean of its tiles' logits (float64; exactly the logit for a one-tile frame)."""
        sums = np.bincount(owners, weights=np.asarray(tile_logits, dtype=np.float64), minlength=count)
        return sums / np.maximum(np.bincount(owners, minlength=count), 1)

    @property
    def card_temperature(self) -> Optional[float]:
        """The temperature fitted for this model and stored in its card; None when there is no usable one."""
        try:
            t = float(self.card["temperature"])
        except (KeyError, TypeError, ValueError):
            return None
        return t if math.isfinite(t) and t > 0 else None

    @property
    def temperature(self) -> float:
        """T in P(fake) = sigmoid(logit / T): the card's fitted temperature, else 1."""
        return self.card_temperature or 1.0

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated P(fake): sigmoid(logit / temperature) in float32 (raw logits stay for `apate evaluate`)."""
        z = np.asarray(logits, dtype=np.float64) / self.temperature
        return torch.sigmoid(torch.from_numpy(z).float()).numpy()

    def logits(self, images: Sequence[np.ndarray], batch_size: int = 16, progress: ProgressCallback = no_progress,
               cancel: Optional[CancelToken] = None) -> np.ndarray:
        """Fake logit per image (float64): the mean of its tile logits; batched by shape, under BATCH_PIXELS."""
        frames = [as_rgb_uint8(img, i) for i, img in enumerate(images)]
        units, owners, _ = self.split_tiles(frames)
        tile_logits = np.empty(len(units), dtype=np.float32)
        batches = group_by_shape([self.input_shape(u) for u in units], self.batch_limit(units, batch_size))
        for done, idx in enumerate(batches):
            check_cancelled(cancel)
            batch = self.preprocess([units[i] for i in idx])
            with self.lock, torch.inference_mode():
                tile_logits[idx] = self._logits(batch).float().cpu().numpy()
            progress((done + 1) / len(batches), f"Scored {sum(len(b) for b in batches[:done + 1])}/{len(units)} "
                                                f"tile{'s' if len(units) != 1 else ''} of {len(frames)} images")
        return self.frame_logits(tile_logits, owners, len(frames))

    def predict_proba(self, images: Sequence[np.ndarray], batch_size: int = 16,
                      progress: ProgressCallback = no_progress,
                      cancel: Optional[CancelToken] = None) -> np.ndarray:
        """P(fake) per image, shape (N,), float32. Different sizes are batched separately; large frames
        of native-resolution detectors are scored in tiles (sigmoid of the mean tile logit)."""
        return self.probabilities(self.logits(images, batch_size, progress, cancel))

    def predict_clip(self, frames: Sequence[np.ndarray], batch_size: int = 16,
                     progress: ProgressCallback = no_progress,
                     cancel: Optional[CancelToken] = None) -> tuple[float, np.ndarray]:
        """(clip P(fake), per-frame P(fake)). Temporal models run their GRU; others average frames."""
        if len(frames) == 0:
            raise InputRefused("No frames given")
        if not self.temporal:
            frame_probs = self.predict_proba(frames, batch_size, progress, cancel)
            return float(frame_probs.mean()), frame_probs
        features = self._frame_features(frames, max(1, batch_size), progress, cancel)
        with self.lock, torch.inference_mode():
            clip, frame_logits = self.module.clip_from_features(features[None])
        return (float(self.probabilities(clip[:1].float().cpu().numpy())[0]),
                self.probabilities(frame_logits[0].float().cpu().numpy()))

    def _frame_features(self, frames: Sequence[np.ndarray], batch_size: int,
                        progress: ProgressCallback, cancel: Optional[CancelToken]) -> torch.Tensor:
        # Backbone in batches bounds memory on long clips; the GRU then sees the whole sequence.
        chunks = []
        for start in range(0, len(frames), batch_size):
            check_cancelled(cancel)
            batch = self.preprocess(frames[start:start + batch_size])
            with self.lock, torch.inference_mode():
                chunks.append(self.module.frame_features(batch.to(self.device)))
            progress(min(1.0, (start + batch_size) / len(frames)), "Frame features")
        return torch.cat(chunks)

    def input_shape(self, image: np.ndarray) -> tuple[int, int]:
        """(h, w) of the network input this frame (or tile) becomes, untiled."""
        if self.config.resize == "none":
            return image.shape[0], image.shape[1]
        return self.config.input_size, self.config.input_size

