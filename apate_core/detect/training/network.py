"""The in-house fingerprint detector: a small fully-convolutional CNN at native resolution.

No early downsampling: two full-resolution 3x3 convolutions see the pixel-level periodic traces
upsampling leaves, then two stride-2 stages, global average pooling and one logit. Being fully
convolutional it scores any size >= 32 px without resampling (config resize="none"); reflect
padding keeps image borders from looking like a feature.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

ARCHITECTURE = "apate_fingerprint"
SHIPPED_NAME = "apate"
SHIPPED_FILE = "apate-fingerprint.safetensors"
FINGERPRINT_MEAN = (0.5, 0.5, 0.5)
FINGERPRINT_STD = (0.25, 0.25, 0.25)


def _conv(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, padding_mode="reflect", bias=False),
            nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class FingerprintNet(nn.Module):
    def __init__(self, width: int = 16) -> None:
        super().__init__()
        w = int(width)
        self.stem = nn.Sequential(*_conv(3, w), *_conv(w, w))
        self.stage2 = nn.Sequential(*_conv(w, 2 * w, 2), *_conv(2 * w, 2 * w))
        self.stage3 = nn.Sequential(*_conv(2 * w, 4 * w, 2), *_conv(4 * w, 4 * w))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4 * w, 1)

    def forward(self, x):
        return self.fc(self.pool(self.stage3(self.stage2(self.stem(x)))).flatten(1))


def shipped_weights_path() -> Path:
    """assets/models/apate-fingerprint.safetensors in the repository (or the Docker image's /app)."""
    return Path(__file__).resolve().parents[3] / "assets" / "models" / SHIPPED_FILE
