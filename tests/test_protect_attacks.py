"""Attacks: each disrupts more than random noise of the same budget, respects the bound at full resolution,
avoids the zero-gradient trap, supports transferable / robust modes, progress and cancellation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from apate_core.errors import Cancelled
from apate_core.progress import CancelToken
from apate_core.protect import (create_attack, default_targets, fit_to_model, image_to_tensor, list_attacks,
                                load_generator, quantize_protected)
from apate_core.protect.attacks import AttackResult, PGDConfig
from apate_core.protect.shaping import NO_SHAPING, Shaping, budget_map
from apate_core.protect.transforms import gaussian_blur, jpeg_bpda, jpeg_compress

SIZE = (32, 32)
SMALL = {
    "stargan": dict(conv_dim=8, repeat_num=1),
    "ganimation": dict(conv_dim=8, repeat_num=1),
    "ganimation_vipermu": dict(conv_dim=8, repeat_num=1, layout="vipermu"),
    "cyclegan": dict(ngf=8, n_blocks=1),
    "pix2pixhd": dict(input_nc=3, netG="global", ngf=8, n_downsample_global=2, n_blocks_global=1),
}


pytestmark = pytest.mark.usefixtures("one_thread")


def small_generator(key: str, seed: int = 0):
    torch.manual_seed(seed)
    return load_generator(key.split("_")[0], **SMALL[key])


def smooth_image(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """A natural-ish image: upsampled noise kept away from the [-1, 1] clip."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, max(2, h // 8), max(2, w // 8), generator=g)
    return (F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False) * 1.6 - 0.8)


def output_mse(gen, clean, other, c, size=SIZE) -> float:
    with torch.no_grad():
        return float(F.mse_loss(gen.generate(fit_to_model(other, size), c), gen.generate(fit_to_model(clean, size), c)))


def random_sign_noise(x: torch.Tensor, eps: float, seed: int = 1, shaping: Shaping = Shaping()) -> torch.Tensor:
    """Independent ±1 noise per channel scaled by the attack's own budget: eps times the (default) shaping map."""
    g = torch.Generator().manual_seed(seed)
    return (x + eps * budget_map(x, shaping) * (torch.randint(0, 2, x.shape, generator=g) * 2 - 1)).clamp(-1, 1)


def test_registry_lists_and_configures():
    assert list_attacks() == ["fgsm", "ifgsm", "pgd"]
    pgd = create_attack("PGD", epsilon=0.03, iterations=3)
    assert isinstance(pgd.config, PGDConfig) and (pgd.config.epsilon, pgd.iterations) == (0.03, 3)
    assert create_attack("fgsm").step_size == create_attack("fgsm").config.epsilon == 0.05
    defaults = create_attack("ifgsm").config
    assert (defaults.epsilon, defaults.step_size, defaults.iterations, defaults.start_noise) == (0.05, 0.01, 10, 0.001)
    with pytest.raises(dataclasses.FrozenInstanceError):
        pgd.config.epsilon = 0.1
    with pytest.raises(ValueError):
        create_attack("pgd", epsilon=0)
    with pytest.raises(ValueError):
        create_attack("pgd", robust_transforms=("sharpen",))
    with pytest.raises(KeyError, match="known"):
        create_attack("cw")
    with pytest.raises(TypeError):
        create_attack("pgd", start_noise=0.1)  # PGD's start is the epsilon ball, not a tiny noise


@pytest.mark.parametrize("family", sorted(SMALL))
@pytest.mark.parametrize("name", ["fgsm", "ifgsm", "pgd"])
@pytest.mark.parametrize("shaping", [Shaping(), NO_SHAPING], ids=["shaped", "plain"])
def test_attack_beats_random_noise_of_same_budget(family, name, shaping):
    gen = small_generator(family)
    x = smooth_image(*SIZE)
    c = default_targets(gen, 1)[0]
    attack = create_attack(name, iterations=5, shaping=shaping) if name != "fgsm" else \
        create_attack(name, shaping=shaping)
    result = attack.run(gen, x, [c], model_size=SIZE)
    assert isinstance(result, AttackResult) and result.protected.shape == x.shape
    assert float(result.perturbation.abs().max()) <= 0.05 + 1e-6
    assert result.protected.min() >= -1 and result.protected.max() <= 1
    attacked = output_mse(gen, x, result.protected, c)
    noise = output_mse(gen, x, random_sign_noise(x, 0.05, shaping=shaping), c)
    assert attacked > 1.5 * noise, (attacked, noise)
    assert result.target_losses[0] == pytest.approx(attacked, rel=1e-4)  # the composed/final image is attacked


def test_fgsm_and_ifgsm_escape_the_zero_gradient_trap():
    gen, x = small_generator("stargan"), smooth_image(*SIZE)
    c = default_targets(gen, 1)
    trapped = create_attack("fgsm", start_noise=0.0).run(gen, x, c, model_size=SIZE)
    assert torch.count_nonzero(trapped.perturbation) == 0  # at X = x the gradient is exactly zero
    for name in ("fgsm", "ifgsm"):
        result = create_attack(name, iterations=2).run(gen, x, c, model_size=SIZE) if name == "ifgsm" else \
            create_attack(name).run(gen, x, c, model_size=SIZE)
        moved = result.perturbation.abs()
        budget = float(budget_map(x, Shaping()).mean())  # the default shaping's mean fraction of epsilon
        assert float(moved.mean()) > 0.5 * result.epsilon * budget if name == "fgsm" else float(moved.max()) > 0.005
        assert result.target_losses[0] > 0


def test_full_resolution_input_keeps_its_size_and_bound():
    gen = small_generator("stargan")
    x = smooth_image(100, 150)
    result = create_attack("pgd", iterations=3).run(gen, x, default_targets(gen, 1), model_size=(64, 64))
    assert result.protected.shape == (1, 3, 100, 150) and result.model_size == (64, 64)
    assert float(result.perturbation.abs().max()) <= 0.05 + 1e-6
    assert float(result.perturbation.abs().mean()) > 0.01  # the perturbation covers the full-res pixels
    with pytest.raises(ValueError, match="multiples of 4"):
        create_attack("fgsm").run(gen, x, default_targets(gen, 1), model_size=(30, 30))


def test_epsilon_bound_holds_exactly_after_8bit_quantisation():
    gen = small_generator("stargan")
    rng = np.random.default_rng(0)
    photo = np.clip(rng.normal(128, 60, (40, 56, 3)), 0, 255).astype(np.uint8)
    photo[:4] = 0  # pixels at the range ends
    photo[-4:] = 255
    for eps in (0.05, 0.03, 0.0549):
        result = create_attack("pgd", epsilon=eps, iterations=2).run(gen, image_to_tensor(photo),
                                                                     default_targets(gen, 1), model_size=SIZE)
        protected = quantize_protected(photo, result.protected, eps)
        diff = np.abs(protected.astype(int) - photo.astype(int))
        assert protected.dtype == np.uint8 and protected.shape == photo.shape
        assert diff.max() <= eps * 127.5 and diff.max() == int(np.floor(eps * 127.5))


def test_transferable_mode_disrupts_every_target_and_per_target_mode():
    gen, x = small_generator("stargan"), smooth_image(*SIZE)
    targets = default_targets(gen, 5)
    with pytest.raises(ValueError, match="transferable"):
        create_attack("pgd").run(gen, x, targets, model_size=SIZE)
    result = create_attack("pgd", iterations=5, transferable=True).run(gen, x, targets, model_size=SIZE)
    assert len(result.target_losses) == 5
    for c, loss in zip(targets, result.target_losses):
        assert loss > 1.5 * output_mse(gen, x, random_sign_noise(x, 0.05), c)
    each = create_attack("ifgsm", iterations=2).run_per_target(gen, x, targets[:2], model_size=SIZE)
    assert len(each) == 2 and all(len(r.target_losses) == 1 for r in each)
    assert not torch.equal(each[0].perturbation, each[1].perturbation)


def test_robust_mode_survives_blur_better_than_the_plain_attack():
    gen, x = small_generator("stargan"), smooth_image(48, 48)
    c, size = default_targets(gen, 1), (48, 48)
    robust = create_attack("pgd", iterations=6, robust=True).run(gen, x, c, model_size=size)
    plain = create_attack("pgd", iterations=6).run(gen, x, c, model_size=size)
    assert len(robust.loss_history) == 6 and all(np.isfinite(robust.loss_history))
    assert float(robust.perturbation.abs().max()) <= 0.05 + 1e-6

    def after_blur(protected):  # the deepfaker blurs with sigma 1.5 before generating
        return output_mse(gen, gaussian_blur(x, 1.5), gaussian_blur(protected, 1.5), c[0], size)

    assert after_blur(robust.protected) > 1.5 * after_blur(plain.protected)
    assert after_blur(robust.protected) > 1.5 * after_blur(random_sign_noise(x, 0.05))


def test_jpeg_is_straight_through():
    x = smooth_image(16, 16).requires_grad_(True)
    y = jpeg_bpda(x, 60)
    assert torch.equal(y.detach(), jpeg_compress(x.detach(), 60)) and not torch.equal(y.detach(), x.detach())
    (y * torch.arange(y.numel()).view_as(y)).sum().backward()
    assert torch.equal(x.grad, torch.arange(x.numel()).view_as(x).float())


def test_same_seed_same_result_and_progress_reported():
    gen, x = small_generator("stargan"), smooth_image(*SIZE)
    seen = []
    a = create_attack("pgd", iterations=3, seed=7).run(gen, x, default_targets(gen, 1), model_size=SIZE,
                                                      progress=lambda f, m: seen.append((f, m)))
    b = create_attack("pgd", iterations=3, seed=7).run(gen, x, default_targets(gen, 1), model_size=SIZE)
    assert torch.equal(a.protected, b.protected)
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    assert all(isinstance(m, str) and m for _, m in seen)


def test_cancellation_raises():
    gen, x = small_generator("stargan"), smooth_image(*SIZE)
    token = CancelToken()
    steps = []

    def progress(fraction, message):
        steps.append(fraction)
        if fraction > 0:
            token.cancel()

    with pytest.raises(Cancelled):
        create_attack("pgd", iterations=10).run(gen, x, default_targets(gen, 1), model_size=SIZE,
                                                progress=progress, cancel=token)
    assert len(steps) == 2  # stopped right after the first step
    with pytest.raises(Cancelled):
        create_attack("fgsm").run(gen, x, default_targets(gen, 1), model_size=SIZE, cancel=token)


def test_invalid_images_are_refused():
    gen = small_generator("stargan")
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        create_attack("fgsm").run(gen, torch.full((1, 3, 32, 32), 2.0), model_size=SIZE)
    with pytest.raises(ValueError, match="channels"):
        create_attack("fgsm").run(gen, torch.zeros(1, 4, 32, 32), model_size=SIZE)
