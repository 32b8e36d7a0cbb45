"""How strong, how visible and how durable a protection is.

Norms are reported under their true names (the reference code's "L2" is an MSE and its "L-inf" a minimum).
A (image, target) pair counts as disrupted when MSE(G(protected, c), G(original, c)) > 0.05 on the [-1, 1] scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from .convert import SCALE, fit_to_model, image_to_tensor, quantize_protected  # quantize_protected: re-export
from .generators import TranslationGenerator, default_targets
from .transforms import ROBUSTNESS_TRANSFORMS, ImageTransform

DISRUPTION_THRESHOLD = 0.05
Image = Union[np.ndarray, torch.Tensor]  # uint8 HWC / BHWC array, or [-1, 1] BCHW tensor

__all__ = ["DISRUPTION_THRESHOLD", "ImageQuality", "OutputDistortion", "PerturbationNorms", "ProtectionReport",
           "RobustnessResult", "evaluate_protection", "image_quality", "output_distortion", "perturbation_norms",
           "quantize_protected", "robustness"]


@dataclass(frozen=True)
class PerturbationNorms:
    l2: float  # Euclidean norm of protected - original over all pixels and channels, [-1, 1] scale
    linf: float  # largest absolute pixel change, [-1, 1] scale
    linf_8bit: float  # the same in 8-bit steps


@dataclass(frozen=True)
class ImageQuality:
    ssim: float
    psnr: float  # dB; inf for identical images


@dataclass(frozen=True)
class OutputDistortion:
    target_index: int
    mse: float
    l1: float  # mean absolute difference
    l2: float  # Euclidean norm of the difference
    disrupted: bool


@dataclass(frozen=True)
class RobustnessResult:
    transform: str
    distortions: tuple[OutputDistortion, ...]  # G(T(protected)) vs G(T(original)), per target
    baseline_mse: tuple[float, ...]  # G(T(original)) vs G(original): what the transform alone changes

    @property
    def disrupted_fraction(self) -> float:
        return sum(d.disrupted for d in self.distortions) / len(self.distortions)


@dataclass(frozen=True)
class ProtectionReport:
    norms: PerturbationNorms
    quality: ImageQuality
    distortions: tuple[OutputDistortion, ...]
    robustness: tuple[RobustnessResult, ...]

    @property
    def disrupted_fraction(self) -> float:
        return sum(d.disrupted for d in self.distortions) / len(self.distortions)


def _as_tensor(image: Image) -> torch.Tensor:
    return image_to_tensor(image) if isinstance(image, np.ndarray) else image.detach().float()


def perturbation_norms(original: Image, protected: Image) -> PerturbationNorms:
    if isinstance(original, np.ndarray) and isinstance(protected, np.ndarray):  # exact for 8-bit pairs
        delta = torch.from_numpy(protected.astype(np.float64) - original.astype(np.float64)) / SCALE
    else:
        delta = _as_tensor(protected).double() - _as_tensor(original).double()
    linf = float(delta.abs().max())
    return PerturbationNorms(l2=float(delta.norm(p=2)), linf=linf, linf_8bit=linf * SCALE)


def image_quality(original: np.ndarray, protected: np.ndarray) -> ImageQuality:
    """SSIM and PSNR of two uint8 HWC images (scikit-image, data_range 255)."""
    a, b = np.asarray(original), np.asarray(protected)
    if a.dtype != np.uint8 or b.dtype != np.uint8 or a.shape != b.shape or a.ndim != 3:
        raise ValueError("image_quality needs two uint8 (H, W, C) images of the same shape")
    ssim = structural_similarity(a, b, channel_axis=-1, data_range=255)
    with np.errstate(divide="ignore"):
        psnr = peak_signal_noise_ratio(a, b, data_range=255)
    return ImageQuality(ssim=float(ssim), psnr=float(psnr))


def _targets(generator: TranslationGenerator, targets: Optional[Sequence]) -> list:
    return list(targets) if targets is not None else default_targets(generator, 5)


def _outputs(generator: TranslationGenerator, image: torch.Tensor, targets: Sequence,
             size: tuple[int, int]) -> list[torch.Tensor]:
    with torch.no_grad():
        inputs = fit_to_model(image, size)
        return [generator.generate(inputs, c) for c in targets]


def _distortion(i: int, a: torch.Tensor, b: torch.Tensor, threshold: float) -> OutputDistortion:
    d = (a - b).double()
    mse = float((d ** 2).mean())
    return OutputDistortion(i, mse=mse, l1=float(d.abs().mean()), l2=float(d.norm(p=2)), disrupted=mse > threshold)


def output_distortion(generator: TranslationGenerator, original: Image, protected: Image,
                      targets: Optional[Sequence] = None, model_size: Optional[tuple[int, int]] = None,
                      threshold: float = DISRUPTION_THRESHOLD) -> tuple[OutputDistortion, ...]:
    """Per target: how far G(protected, c) is from G(original, c)."""
    targets, size = _targets(generator, targets), tuple(model_size or generator.native_size)
    clean = _outputs(generator, _as_tensor(original), targets, size)
    adv = _outputs(generator, _as_tensor(protected), targets, size)
    return tuple(_distortion(i, a, b, threshold) for i, (a, b) in enumerate(zip(adv, clean)))


def robustness(generator: TranslationGenerator, original: np.ndarray, protected: np.ndarray,
               targets: Optional[Sequence] = None, model_size: Optional[tuple[int, int]] = None,
               transforms: Sequence[ImageTransform] = ROBUSTNESS_TRANSFORMS,
               threshold: float = DISRUPTION_THRESHOLD) -> tuple[RobustnessResult, ...]:
    """Disruption left after each transform is applied to both 8-bit images (JPEG 95/75/50, resize x0.5 and
    back, blur sigma 1.5): the reference is G(T(original)), so the transform's own effect is not counted."""
    targets, size = _targets(generator, targets), tuple(model_size or generator.native_size)
    clean = _outputs(generator, image_to_tensor(original), targets, size)
    results = []
    for t in transforms:
        t_orig = _outputs(generator, image_to_tensor(t.apply_uint8(original)), targets, size)
        t_prot = _outputs(generator, image_to_tensor(t.apply_uint8(protected)), targets, size)
        results.append(RobustnessResult(
            t.name, tuple(_distortion(i, a, b, threshold) for i, (a, b) in enumerate(zip(t_prot, t_orig))),
            tuple(float(((b - c) ** 2).mean()) for b, c in zip(t_orig, clean))))
    return tuple(results)


def evaluate_protection(generator: TranslationGenerator, original: np.ndarray, protected: np.ndarray,
                        targets: Optional[Sequence] = None, model_size: Optional[tuple[int, int]] = None,
                        with_robustness: bool = True) -> ProtectionReport:
    """All metrics for one 8-bit original / protected pair (HWC uint8)."""
    return ProtectionReport(
        norms=perturbation_norms(original, protected),
        quality=image_quality(original, protected),
        distortions=output_distortion(generator, original, protected, targets, model_size),
        robustness=robustness(generator, original, protected, targets, model_size) if with_robustness else (),
    )
