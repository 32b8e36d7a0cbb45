"""Protection metrics: true norms, scikit-image quality, output distortion, robustness, 8-bit quantisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from apate_core.protect import create_attack, default_targets, image_to_tensor, load_generator, tensor_to_image
from apate_core.protect.convert import epsilon_steps, fit_to_model
from apate_core.protect.metrics import (DISRUPTION_THRESHOLD, evaluate_protection, image_quality,
                                        output_distortion, perturbation_norms, quantize_protected, robustness)
from apate_core.protect.transforms import ROBUSTNESS_TRANSFORMS, ImageTransform, gaussian_blur

SIZE = (32, 32)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    rng = np.random.default_rng(0)
    coarse = rng.uniform(30, 220, (6, 8, 3))
    image = np.kron(coarse, np.ones((8, 8, 1))) + rng.normal(0, 8, (48, 64, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def generator():
    torch.manual_seed(0)
    return load_generator("stargan", conv_dim=8, repeat_num=1)


def test_perturbation_norms_are_true_norms(photo):
    rng = np.random.default_rng(1)
    protected = np.clip(photo.astype(int) + rng.integers(-6, 7, photo.shape), 0, 255).astype(np.uint8)
    delta = (protected.astype(float) - photo.astype(float)) / 127.5
    norms = perturbation_norms(photo, protected)
    assert norms.l2 == pytest.approx(np.sqrt((delta ** 2).sum()), rel=1e-6)
    assert norms.linf == pytest.approx(np.abs(delta).max(), rel=1e-6)  # a maximum, not the reference's minimum
    assert norms.linf_8bit == pytest.approx(np.abs(protected.astype(int) - photo.astype(int)).max(), rel=1e-6)
    same = perturbation_norms(image_to_tensor(photo), image_to_tensor(protected))
    assert same.l2 == pytest.approx(norms.l2, rel=1e-5) and same.linf == pytest.approx(norms.linf, rel=1e-5)


def test_image_quality_agrees_with_scikit_image(photo):
    protected = np.clip(photo.astype(int) + 5 * (np.indices(photo.shape).sum(0) % 2) - 2, 0, 255).astype(np.uint8)
    quality = image_quality(photo, protected)
    assert quality.ssim == pytest.approx(structural_similarity(photo, protected, channel_axis=-1, data_range=255))
    mse = np.mean((photo.astype(float) - protected.astype(float)) ** 2)
    assert quality.psnr == pytest.approx(10 * np.log10(255 ** 2 / mse))
    assert quality.psnr == pytest.approx(peak_signal_noise_ratio(photo, protected, data_range=255))
    identical = image_quality(photo, photo)
    assert identical.ssim == pytest.approx(1.0) and identical.psnr == float("inf")
    with pytest.raises(ValueError):
        image_quality(photo, photo[:10])


def test_quantisation_keeps_the_epsilon_bound_where_rounding_would_not(photo):
    eps = 6.6 / 127.5  # rounding a +6.6 change gives 7 steps, over the bound
    protected = (image_to_tensor(photo) + eps).clamp(-1, 1)
    naive = np.clip(np.rint((protected[0].permute(1, 2, 0).double().numpy() + 1) * 127.5), 0, 255)
    assert (naive - photo).max() == 7
    safe = quantize_protected(photo, protected, eps)
    diff = safe.astype(int) - photo.astype(int)
    assert diff.max() == epsilon_steps(eps) == 6 and diff.min() >= 0
    assert np.all(np.abs(diff) / 127.5 <= eps)
    assert np.all(safe[photo == 255] == 255)  # clipped to the 8-bit range as well
    down = quantize_protected(photo, (image_to_tensor(photo) - 0.05).clamp(-1, 1), 0.05)
    assert (down.astype(int) - photo.astype(int)).min() == -6


def test_output_distortion_matches_manual_computation(generator, photo):
    targets = default_targets(generator, 3)
    x = image_to_tensor(photo)
    result = create_attack("pgd", iterations=3, transferable=True).run(generator, x, targets, model_size=SIZE)
    protected = quantize_protected(photo, result.protected, 0.05)
    distortions = output_distortion(generator, photo, protected, targets, SIZE)
    assert [d.target_index for d in distortions] == [0, 1, 2]
    for d, c in zip(distortions, targets):
        with torch.no_grad():
            a = generator.generate(fit_to_model(image_to_tensor(protected), SIZE), c).double()
            b = generator.generate(fit_to_model(x, SIZE), c).double()
        assert d.mse == pytest.approx(float(F.mse_loss(a, b)), rel=1e-6)
        assert d.l1 == pytest.approx(float((a - b).abs().mean()), rel=1e-6)
        assert d.l2 == pytest.approx(float(torch.linalg.vector_norm(a - b)), rel=1e-6)
        assert d.disrupted == (d.mse > DISRUPTION_THRESHOLD)
    unchanged = output_distortion(generator, photo, photo, targets, SIZE)
    assert all(d.mse == 0 and not d.disrupted for d in unchanged)


def test_robustness_applies_each_transform_to_both_images(generator, photo):
    targets = default_targets(generator, 2)
    result = create_attack("pgd", iterations=2, transferable=True).run(generator, image_to_tensor(photo), targets,
                                                                       model_size=SIZE)
    protected = quantize_protected(photo, result.protected, 0.05)
    report = robustness(generator, photo, protected, targets, SIZE)
    assert [r.transform for r in report] == ["jpeg95", "jpeg75", "jpeg50", "resize0.5", "blur1.5"]
    jpeg50 = ImageTransform("jpeg", 50)
    expected = output_distortion(generator, jpeg50.apply_uint8(photo), jpeg50.apply_uint8(protected), targets, SIZE)
    assert report[2].distortions == expected
    assert all(0.0 <= r.disrupted_fraction <= 1.0 and len(r.baseline_mse) == 2 for r in report)
    clean = robustness(generator, photo, photo, targets, SIZE)
    assert all(d.mse == 0 for r in clean for d in r.distortions)
    assert all(b > 0 for b in clean[2].baseline_mse)  # JPEG 50 alone changes the output a little


def test_transforms_match_references(photo):
    blurred = ImageTransform("blur", 1.5).apply_uint8(photo)
    reference = gaussian_filter(photo.astype(float), sigma=(1.5, 1.5, 0), mode="mirror", truncate=3.0)
    assert np.abs(blurred.astype(float) - reference).max() <= 1.0  # equal up to 8-bit rounding
    half = ImageTransform("resize", 0.5).apply_uint8(photo)
    assert half.shape == photo.shape and not np.array_equal(half, photo)
    x = image_to_tensor(photo).requires_grad_(True)
    gaussian_blur(x, 2.0).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert [t.name for t in ROBUSTNESS_TRANSFORMS][0] == "jpeg95"


def test_evaluate_protection_report(generator, photo):
    targets = default_targets(generator, 2)
    result = create_attack("ifgsm", iterations=2, transferable=True).run(generator, image_to_tensor(photo), targets,
                                                                         model_size=SIZE)
    protected = quantize_protected(photo, result.protected, 0.05)
    report = evaluate_protection(generator, photo, protected, targets, SIZE, with_robustness=False)
    assert report.norms.linf_8bit <= 6 and report.quality.psnr > 30 and report.quality.ssim < 1
    assert len(report.distortions) == 2 and report.robustness == ()
    assert 0 <= report.disrupted_fraction <= 1
    assert np.array_equal(tensor_to_image(image_to_tensor(photo))[0], photo)  # lossless round trip
