"""Perceptual shaping: the budget map follows texture and brightness, steps move R, G, B together, the ε bound
stays exact in 8 bits, a real photo keeps a higher SSIM, and NO_SHAPING is the plain attack bit for bit."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from apate_core.protect import (create_attack, default_targets, fit_to_model, image_to_tensor, quantize_protected,
                                tensor_to_image)
from apate_core.protect.metrics import image_quality
from apate_core.protect.shaping import NO_SHAPING, Shaping, budget_map, project, shape_step

from test_protect_attacks import SIZE, small_generator, smooth_image

pytestmark = pytest.mark.usefixtures("one_thread")
ASTRONAUT = Path(__file__).resolve().parent.parent / "assets" / "samples" / "astronaut.jpg"


def textured_photo(h: int = 64, w: int = 96, seed: int = 0) -> torch.Tensor:
    """Left half: a flat dark patch (8-bit value 20); right half: mid-grey with strong per-pixel texture."""
    rng = np.random.default_rng(seed)
    rgb = np.full((h, w, 3), 20, np.uint8)
    rgb[:, w // 2:] = np.clip(128 + rng.normal(0, 40, (h, w - w // 2, 1)), 0, 255).astype(np.uint8)
    return image_to_tensor(rgb)


def real_photo_crop() -> np.ndarray:
    if not ASTRONAUT.is_file():
        pytest.skip(f"{ASTRONAUT} is missing: no real textured photo to measure SSIM on")
    with Image.open(ASTRONAUT) as im:
        return np.asarray(im.convert("RGB"))[:192, 160:352].copy()  # face, hair, flag, helmet: flat and textured


def plain_reference_attack(gen, x, c, epsilon, step, iterations, seed=0) -> torch.Tensor:
    """Today's PGD written out: uniform ±ε start, X <- clip(x + clip(X + a sign(grad) - x, ±ε), ±1)."""
    rng = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        clean = gen.generate(fit_to_model(x, SIZE), c)
    start = (torch.rand(x.shape, generator=rng, dtype=x.dtype) * 2 - 1) * epsilon
    X = torch.clamp(x + torch.clamp(x + start - x, -epsilon, epsilon), -1.0, 1.0).detach()
    for _ in range(iterations):
        X.requires_grad_(True)
        loss = F.mse_loss(gen.generate(fit_to_model(X, SIZE), c), clean)
        (grad,) = torch.autograd.grad(loss, X)
        X = torch.clamp(x + torch.clamp(X + step * grad.sign() - x, -epsilon, epsilon), -1.0, 1.0).detach()
    return X


def test_budget_lies_in_0_1_and_is_smaller_in_a_flat_dark_patch_than_in_texture():
    x = textured_photo()
    budget = budget_map(x, Shaping())
    assert budget.shape == (1, 1, 64, 96) and budget.dtype == x.dtype
    assert float(budget.min()) > 0 and float(budget.max()) <= 1
    flat, textured = budget[..., 8:-8, 4:40], budget[..., 8:-8, 56:-4]
    assert float(flat.max()) == pytest.approx(Shaping().floor, abs=1e-6)  # flat and dark: only the floor
    assert float(textured.min()) > 0.9  # σ ≈ 40/255 > texture_level: (almost) the full ε
    assert float(budget_map(x, Shaping(floor=0.5))[..., 8:-8, 4:40].min()) == pytest.approx(0.5, abs=1e-6)
    # a bright flat patch is held back by flatness alone, a dark textured one by darkness alone
    bright = budget_map(torch.full((1, 3, 32, 32), 0.6), Shaping())
    assert float(bright.max()) < 0.5
    assert torch.equal(budget_map(x, NO_SHAPING), torch.ones(1, 1, 64, 96))


def test_budget_map_rejects_bad_settings():
    for bad in (dict(floor=0.0), dict(window=4), dict(chroma=1.5), dict(texture_level=0)):
        with pytest.raises(ValueError):
            Shaping(**bad)


def test_step_is_channel_correlated():
    g = torch.Generator().manual_seed(0)
    grad = torch.randn(2, 3, 40, 40, generator=g)  # independent gradients per channel
    step = shape_step(grad, Shaping())
    assert step.shape == grad.shape and float(step.abs().max()) <= 1
    plain = shape_step(grad, NO_SHAPING)
    assert torch.equal(plain, grad.sign())

    def channel_correlation(s):
        flat = s.permute(1, 0, 2, 3).reshape(3, -1)
        corr = torch.corrcoef(flat)
        return float(corr[~torch.eye(3, dtype=torch.bool)].mean())

    assert abs(channel_correlation(plain)) < 0.05  # sign(grad): independent colour noise
    assert channel_correlation(step) > 0.8  # mostly one luminance step for the three channels
    grey = shape_step(grad, Shaping(chroma=0.0))
    assert torch.equal(grey[:, 0], grey[:, 1]) and torch.equal(grey[:, 1], grey[:, 2])
    assert torch.equal(grey[:, :1], grad.sum(1, keepdim=True).sign())
    assert torch.equal(shape_step(torch.zeros(1, 3, 4, 4), Shaping()), torch.zeros(1, 3, 4, 4))


def test_project_keeps_the_per_pixel_bound_and_range():
    x = torch.tensor([[[[0.0, 0.99]]]]).expand(1, 3, 1, 2)
    budget = torch.tensor([[[[0.5, 1.0]]]])
    X = project(x + 1.0, x, 0.1, budget)
    assert torch.allclose(X[0, :, 0, 0], torch.full((3,), 0.05)) and torch.equal(X[0, :, 0, 1], torch.ones(3))
    X = project(x - 1.0, x, 0.1, budget)
    assert torch.allclose(X - x, torch.tensor([-0.05, -0.1]).expand(1, 3, 1, 2))
    assert not X.requires_grad


def test_attack_stays_inside_the_shaped_ball_and_eps_is_exact_after_quantisation():
    gen = small_generator("stargan")
    x = textured_photo(40, 56)
    rgb = tensor_to_image(x)[0]
    budget = budget_map(x, Shaping())
    for eps in (0.05, 0.0549):
        result = create_attack("pgd", epsilon=eps, iterations=3).run(gen, x, default_targets(gen, 1), model_size=SIZE)
        assert bool((result.perturbation.abs() <= eps * budget + 1e-6).all())
        diff = np.abs(quantize_protected(rgb, result.protected, eps).astype(int) - rgb.astype(int))
        assert diff.max() == int(np.floor(eps * 127.5))  # the hard bound, reached in the texture
        assert diff[4:-4, 3:20].max() <= round(eps * Shaping().floor * 127.5)  # the flat dark half: the floor


def test_shaping_raises_ssim_on_a_real_photo_at_the_same_epsilon():
    rgb = real_photo_crop()
    gen = small_generator("stargan")
    x, c = image_to_tensor(rgb), default_targets(gen, 1)
    ssim = {}
    for label, shaping in (("plain", NO_SHAPING), ("shaped", Shaping())):
        result = create_attack("pgd", iterations=4, shaping=shaping).run(gen, x, c, model_size=(64, 64))
        protected = quantize_protected(rgb, result.protected, 0.05)
        ssim[label] = image_quality(rgb, protected).ssim
        assert np.abs(protected.astype(int) - rgb.astype(int)).max() <= 6
    assert ssim["shaped"] > ssim["plain"] + 0.04, ssim
    assert ssim["shaped"] > 0.95, ssim


def test_no_shaping_is_the_plain_attack_bit_for_bit():
    gen, x = small_generator("stargan"), smooth_image(*SIZE)
    c = default_targets(gen, 1)
    ours = create_attack("pgd", iterations=4, step_size=0.01, shaping=NO_SHAPING).run(gen, x, c, model_size=SIZE)
    reference = plain_reference_attack(gen, x, c[0], 0.05, 0.01, 4)
    assert torch.equal(ours.protected, reference)
    shaped = create_attack("pgd", iterations=4, step_size=0.01).run(gen, x, c, model_size=SIZE)
    assert not torch.equal(shaped.protected, reference)  # the default really is shaped


def test_job_records_shaping_and_keeps_shaped_and_plain_results_apart(settings, tmp_path):
    from apate_core.protect.job import ImageInput, ProtectParams, run_protect_job
    from apate_core.store import ResultStore

    from test_protect_job import FAST, photo, tiny_choice

    image = ImageInput("p.png", "0" * 64, photo(40, 56))
    with ResultStore(tmp_path / "store", 50 * 2 ** 20) as store:
        shaped = run_protect_job([image], tiny_choice(), FAST, settings, store=store).images[0]
        plain = run_protect_job([image], tiny_choice(), dataclasses.replace(FAST, shaping=False), settings,
                                store=store).images[0]
    assert ProtectParams().shaping is True and FAST.shaping is True
    assert shaped.metrics["shaping"] is True and plain.metrics["shaping"] is False
    assert not plain.cached and not np.array_equal(shaped.protected, plain.protected)  # a different store key
    moved = [np.abs(im.protected.astype(int) - im.original.astype(int)).mean() for im in (shaped, plain)]
    assert moved[0] < moved[1]
