"""Pictures of a protection shared by every Protect target: the amplified perturbation and a before/after split."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

SUFFIX = {"png": "png", "jpeg": "jpg", "webp": "webp"}
MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


def perturbation_image(original: np.ndarray, protected: np.ndarray, amplify: Optional[float] = None) -> np.ndarray:
    """protected - original, centred on grey and stretched to the full range (or by ``amplify``)."""
    delta = protected.astype(np.float32) - original.astype(np.float32)
    peak = float(np.abs(delta).max()) or 1.0
    gain = amplify if amplify is not None else 127.0 / peak
    return np.clip(127.5 + delta * gain, 0, 255).astype(np.uint8)


def split_view(original: np.ndarray, protected: np.ndarray, fraction: float) -> np.ndarray:
    """Before/after split: original left of ``fraction`` of the width, protected right, a white seam."""
    w = original.shape[1]
    cut = int(round(min(max(fraction, 0.0), 1.0) * w))
    out = protected.copy()
    out[:, :cut] = original[:, :cut]
    if 0 < cut < w:
        out[:, max(0, cut - 1):cut + 1] = 255
    return out


class PairViews:
    """Mixin for a protected photo: ``name``, ``original`` and ``protected`` uint8 images, ``output_format``."""

    name: str
    original: np.ndarray
    protected: np.ndarray
    output_format: str

    @property
    def file_name(self) -> str:
        return f"{Path(self.name).stem}.protected.{SUFFIX[self.output_format]}"

    @property
    def mime(self) -> str:
        return MIME[self.output_format]

    def perturbation_image(self, amplify: Optional[float] = None) -> np.ndarray:
        return perturbation_image(self.original, self.protected, amplify)

    def split_view(self, fraction: float) -> np.ndarray:
        return split_view(self.original, self.protected, fraction)
