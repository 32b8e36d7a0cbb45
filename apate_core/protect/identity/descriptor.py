"""Face descriptor network: a PyTorch port of face-api.js's ``FaceRecognitionNet``.

The network is dlib's ``dlib_face_recognition_resnet_model_v1`` (Davis King, public domain) as
ported to TensorFlow.js by face-api.js; the weights are those shipped in
``@vladmandic/face-api@1.7.15`` (MIT), converted once by ``scripts/convert_face_descriptor.py``.
The forward pass follows ``src/faceRecognitionNet/*.ts`` of that package op for op, so a crop gives
the descriptor face-api gives (tests/test_identity_descriptor.py checks it against face-api itself,
run by node on tfjs's CPU backend). Two faces are the same person when their descriptors lie
closer than ``MATCH_THRESHOLD`` (dlib trained the identities into balls of radius 0.6). The agreement
(about 3e-7) holds in float32 on the CPU; on CUDA, PyTorch's cuDNN TF32 default
(``torch.backends.cudnn.allow_tf32``) trades some of it for speed.

Stored weights keep face-api's names and TensorFlow layouts: a uint8-quantised tensor ``name`` comes
with float64 scalars ``name:scale`` and ``name:min``, and is decoded the way tfjs decodes it.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...errors import CheckpointError

ROOT = Path(__file__).resolve().parents[3]
DEFAULT_WEIGHTS = ROOT / "assets" / "models" / "identity" / "face-descriptor.safetensors"

INPUT_SIZE = 150  # face-api's toBatchTensor(150): the crop the net was trained on
MEAN_RGB = (122.782, 117.001, 104.298)  # FaceRecognitionNet.forwardInput: normalize(x, meanRgb).div(255)
PIXEL_DIVISOR = 255.0
DESCRIPTOR_DIM = 128
MATCH_THRESHOLD = 0.6  # face-api's FaceMatcher default distance threshold
SCALE_SUFFIX = ":scale"
MIN_SUFFIX = ":min"

# (name, input channels, output channels, downsampling) of the residual blocks, in forward order.
BLOCKS: tuple[tuple[str, int, int, bool], ...] = (
    ("conv32_1", 32, 32, False), ("conv32_2", 32, 32, False), ("conv32_3", 32, 32, False),
    ("conv64_down", 32, 64, True), ("conv64_1", 64, 64, False), ("conv64_2", 64, 64, False),
    ("conv64_3", 64, 64, False),
    ("conv128_down", 64, 128, True), ("conv128_1", 128, 128, False), ("conv128_2", 128, 128, False),
    ("conv256_down", 128, 256, True), ("conv256_1", 256, 256, False), ("conv256_2", 256, 256, False),
    ("conv256_down_out", 256, 256, True),
)


class Affine(nn.Module):
    """dlib's per-channel affine layer (a batch norm folded at training time): x * weight + bias."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        # Multiply then add, as face-api's scaleLayer does (no fused multiply-add: same rounding).
        return x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class ScaledConv(nn.Module):
    """face-api's convLayer: conv + bias, affine, optional ReLU.

    Stride 1 is tfjs 'same' padding (1 pixel each side for 3x3); stride 2 is 'valid' (no padding).
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, relu: bool = True) -> None:
        super().__init__()
        padding = kernel // 2 if stride == 1 else 0
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding)
        self.scale = Affine(cout)
        self.relu = relu

    def forward(self, x: Tensor) -> Tensor:
        x = self.scale(self.conv(x))
        return F.relu(x) if self.relu else x


class ResidualBlock(nn.Module):
    """face-api's residual / residualDown: two convs, identity or pooled shortcut, ReLU after the sum."""

    def __init__(self, cin: int, cout: int, down: bool) -> None:
        super().__init__()
        self.conv1 = ScaledConv(cin, cout, 3, stride=2 if down else 1)
        self.conv2 = ScaledConv(cout, cout, 3, relu=False)
        self.down = down

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv2(self.conv1(x))
        if not self.down:
            return F.relu(out + x)
        shortcut = F.avg_pool2d(x, 2, 2)
        # A 'valid' stride-2 conv can give one row/column fewer than the 2x2 pool (8 -> 3 vs 4):
        # face-api appends zeros at the bottom and right of the conv branch to match.
        out = F.pad(out, (0, shortcut.shape[3] - out.shape[3], 0, shortcut.shape[2] - out.shape[2]))
        # More output channels than input ones: the shortcut is padded with zero channels after its own.
        shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, out.shape[1] - shortcut.shape[1]))
        return F.relu(shortcut + out)


class FaceDescriptorNet(nn.Module):
    """(B, 3, 150, 150) RGB crops on the 0..255 scale -> (B, 128) face descriptors; differentiable."""

    def __init__(self) -> None:
        super().__init__()
        self.conv32_down = ScaledConv(3, 32, 7, stride=2)
        for name, cin, cout, down in BLOCKS:
            self.add_module(name, ResidualBlock(cin, cout, down))
        self.fc = nn.Parameter(torch.zeros(256, DESCRIPTOR_DIM))  # face-api's layout: features @ fc
        self.register_buffer("mean_rgb", torch.tensor(MEAN_RGB).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        check_input(x)
        x = (x - self.mean_rgb) / PIXEL_DIVISOR
        x = F.max_pool2d(self.conv32_down(x), 3, 2)
        for name, *_ in BLOCKS:
            x = self.get_submodule(name)(x)
        return x.mean(dim=(2, 3)) @ self.fc


def check_input(x: Tensor) -> None:
    """The network has no resize of its own: the crop must already be face-api's 150x150."""
    if x.dim() != 4 or tuple(x.shape[1:]) != (3, INPUT_SIZE, INPUT_SIZE) or not x.is_floating_point():
        raise ValueError(f"FaceDescriptorNet expects a float tensor (B, 3, {INPUT_SIZE}, {INPUT_SIZE}) "
                         f"of RGB on 0..255, got {tuple(x.shape)} {x.dtype}")


def dequantize(values: Tensor, scale: Tensor, minimum: Tensor) -> Tensor:
    """tfjs's decodeWeights: ``v * scale + min`` in JS numbers (float64), stored in a Float32Array."""
    return (values.to(torch.float64) * scale.to(torch.float64) + minimum.to(torch.float64)).to(torch.float32)


def decode_stored(stored: dict[str, Tensor]) -> dict[str, Tensor]:
    """The stored tensors (uint8 + scale/min, or float32) -> face-api's float32 weights by name."""
    weights = {}
    for name, value in stored.items():
        if name.endswith((SCALE_SUFFIX, MIN_SUFFIX)):
            continue
        if value.dtype == torch.uint8:
            value = dequantize(value, stored[name + SCALE_SUFFIX], stored[name + MIN_SUFFIX])
        weights[name] = value.to(torch.float32)
    return weights


def state_dict_from_faceapi(weights: dict[str, Tensor]) -> dict[str, Tensor]:
    """face-api names and layouts -> this module's state dict.

    ``conv32_1/conv1/conv/filters`` (kh, kw, in, out) -> ``conv32_1.conv1.conv.weight`` (out, in, kh, kw);
    ``.../scale/weights`` and ``.../scale/biases`` -> ``.../scale.weight`` and ``.bias``; ``fc`` as is.
    """
    state = {}
    for name, value in weights.items():
        parts = name.split("/")
        leaf = {"filters": "weight", "weights": "weight", "biases": "bias"}.get(parts[-1], parts[-1])
        if parts[-1] == "filters":
            value = value.permute(3, 2, 0, 1)
        state[".".join([*parts[:-1], leaf])] = value.contiguous()
    return state


def read_weights(path: Path) -> dict[str, Tensor]:
    """The stored file (safetensors only: no pickle, no code) -> face-api's float32 weights."""
    from safetensors.torch import load_file

    if not path.is_file():
        raise CheckpointError(f"Face descriptor weights are missing ({path})",
                              accepted="assets/models/identity/face-descriptor.safetensors "
                                       "(made by scripts/convert_face_descriptor.py)")
    return decode_stored(load_file(str(path)))


def build_face_descriptor(weights: dict[str, Tensor], device: Union[str, torch.device] = "cpu") -> FaceDescriptorNet:
    """A frozen network in eval mode from face-api's float32 weights."""
    net = FaceDescriptorNet()
    try:
        net.load_state_dict(state_dict_from_faceapi(weights), strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"Face descriptor weights do not match the network: {exc}") from exc
    net.requires_grad_(False)
    return net.eval().to(device)


@lru_cache(maxsize=4)
def _cached(path: str, device: str) -> FaceDescriptorNet:
    return build_face_descriptor(read_weights(Path(path)), device)


def load_face_descriptor(path: Union[str, Path, None] = None,
                         device: Union[str, torch.device] = "cpu") -> FaceDescriptorNet:
    """The shipped (or given) weights as a frozen network in eval mode; one instance per file and device."""
    return _cached(str(Path(path or DEFAULT_WEIGHTS).resolve()), str(torch.device(device)))


def descriptor_distance(a: Union[Tensor, np.ndarray, list], b: Union[Tensor, np.ndarray, list]) -> Tensor:
    """Euclidean distance over the last axis (face-api's euclideanDistance), broadcasting the rest.

    Differentiable in tensors; computed in the inputs' dtype (face-api sums in float64: pass float64
    tensors for the same digits).
    """
    a_t = a if isinstance(a, Tensor) else torch.as_tensor(np.asarray(a))
    b_t = b if isinstance(b, Tensor) else torch.as_tensor(np.asarray(b))
    return torch.linalg.vector_norm(a_t - b_t, dim=-1)
