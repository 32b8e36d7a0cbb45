"""The "Disrupting Deepfakes" attack loop (Ruiz et al. 2020), shared by FGSM, I-FGSM and PGD.

Maximise MSE(G(X, c), G(x, c)) under ||X - x||_inf <= epsilon with
X <- clip(x + clip(X + a * sign(grad) - x, -eps, eps), -1, 1). Perceptual shaping (``shaping.py``, on by default)
scales eps and a per pixel by a budget map in (0, 1] of the clean image and replaces sign(grad) by a
channel-correlated step; ``NO_SHAPING`` gives exactly the plain loop above. The perturbation lives at the image's own
resolution and reaches the generator through a differentiable resize, so the bound holds at full resolution.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Optional, Sequence

import torch
import torch.nn.functional as F

from ...progress import CancelToken, ProgressCallback, check_cancelled, no_progress
from ..convert import fit_to_model
from ..generators import TranslationGenerator, default_targets
from ..shaping import Shaping, budget_map, project, shape_step
from ..transforms import TRANSFORM_KINDS, ImageTransform, sample_eot

Condition = Optional[torch.Tensor]
DEFAULT_TRANSFERABLE_TARGETS = 5


@dataclass(frozen=True)
class AttackConfig:
    """Options every attack shares; epsilon is on the [-1, 1] scale (0.05 = 6.4 of 255)."""

    epsilon: float = 0.05
    transferable: bool = False  # one perturbation for all targets: losses summed over targets each step
    robust: bool = False  # expectation over transformations: gradients averaged over random JPEG/resize/blur
    robust_transforms: tuple[str, ...] = TRANSFORM_KINDS
    seed: Optional[int] = 0
    shaping: Shaping = Shaping()  # where the budget goes and how steps colour; NO_SHAPING: the plain sign attack

    def __post_init__(self) -> None:
        if not 0.0 < self.epsilon <= 2.0:
            raise ValueError(f"epsilon must lie in (0, 2] on the [-1, 1] scale, got {self.epsilon}")
        unknown = set(self.robust_transforms) - set(TRANSFORM_KINDS)
        if unknown or not self.robust_transforms:
            raise ValueError(f"robust_transforms must be a non-empty subset of {TRANSFORM_KINDS}")


@dataclass(frozen=True)
class AttackResult:
    attack: str
    protected: torch.Tensor  # (B, C, H, W) at the input's resolution, in [-1, 1]
    perturbation: torch.Tensor  # protected - original, |.| <= epsilon
    target_losses: tuple[float, ...]  # final MSE(G(protected, c), G(original, c)) per target, no transform
    iterations: int
    epsilon: float
    model_size: tuple[int, int]
    loss_history: tuple[float, ...]  # objective after each step's gradient (before the step)


class _Objective:
    """The loss being maximised: clean outputs are computed once, transforms resampled per step."""

    def __init__(self, generator: TranslationGenerator, x: torch.Tensor, targets: Sequence[Condition],
                 size: tuple[int, int]) -> None:
        self.generator, self.targets, self.size = generator, list(targets), size
        with torch.no_grad():
            self.clean = [generator.generate(fit_to_model(x, size), c) for c in self.targets]

    def per_target(self, X: torch.Tensor) -> list[torch.Tensor]:
        inputs = fit_to_model(X, self.size)
        return [F.mse_loss(self.generator.generate(inputs, c), y) for c, y in zip(self.targets, self.clean)]

    def gradient(self, X: torch.Tensor, transforms: Sequence[ImageTransform]) -> tuple[torch.Tensor, float]:
        """Gradient of the summed-over-targets loss, averaged over the transforms."""
        X = X.detach().requires_grad_(True)
        loss = sum(sum(self.per_target(t(X))) for t in transforms) / len(transforms)
        (grad,) = torch.autograd.grad(loss, X)
        return grad, float(loss.detach())


class Attack(ABC):
    """Owns the loop, projection, clamping, progress and cancellation; subclasses define start and step."""

    name: ClassVar[str]
    config_cls: ClassVar[type[AttackConfig]]

    def __init__(self, config: Optional[AttackConfig] = None, **overrides) -> None:
        self.config = config if config is not None else self.config_cls(**overrides)

    @property
    @abstractmethod
    def iterations(self) -> int: ...

    @property
    @abstractmethod
    def step_size(self) -> float: ...

    @abstractmethod
    def initial_offset(self, x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        """Start point minus x (the projection then keeps it inside the ball and [-1, 1])."""

    def run(self, generator: TranslationGenerator, image: torch.Tensor,
            targets: Optional[Sequence[Condition]] = None, *, model_size: Optional[tuple[int, int]] = None,
            progress: Optional[ProgressCallback] = None, cancel: Optional[CancelToken] = None) -> AttackResult:
        """Protect ``image`` ((B, C, H, W) in [-1, 1], any resolution) against ``generator``."""
        cfg, report = self.config, progress or no_progress
        x = _check_image(image, generator)
        size = _check_size(model_size or generator.native_size, generator)
        targets = self._resolve_targets(generator, targets)
        check_cancelled(cancel)
        report(0.0, f"{self.name}: computing clean outputs for {len(targets)} target(s)")
        objective = _Objective(generator, x, targets, size)
        torch_rng, eot_rng = _rngs(cfg.seed)
        budget = budget_map(x, cfg.shaping)  # fraction of epsilon per pixel, from the clean image (ones: unshaped)
        X = project(x + self.initial_offset(x, torch_rng).to(x) * budget, x, cfg.epsilon, budget)
        history = []
        for i in range(self.iterations):
            check_cancelled(cancel)
            transforms = sample_eot(cfg.robust_transforms, eot_rng) if cfg.robust else [ImageTransform("identity")]
            grad, loss = objective.gradient(X, transforms)
            X = project(X + self.step_size * (budget * shape_step(grad, cfg.shaping)), x, cfg.epsilon, budget)
            history.append(loss)
            report((i + 1) / self.iterations, f"{self.name}: step {i + 1}/{self.iterations}, loss {loss:.4f}")
        with torch.no_grad():
            final = tuple(float(v) for v in objective.per_target(X))
        return AttackResult(self.name, X.detach(), (X - x).detach(), final, self.iterations, cfg.epsilon, size,
                            tuple(history))

    def run_per_target(self, generator: TranslationGenerator, image: torch.Tensor,
                       targets: Sequence[Condition], **kwargs) -> list[AttackResult]:
        """The reference code's setting: one separate perturbation per target condition."""
        report = kwargs.pop("progress", None) or no_progress
        results = []
        for i, c in enumerate(targets):
            step = lambda f, m, i=i: report((i + f) / len(targets), f"target {i + 1}/{len(targets)}: {m}")
            results.append(self.run(generator, image, [c], progress=step, **kwargs))
        return results

    def _resolve_targets(self, generator: TranslationGenerator,
                         targets: Optional[Sequence[Condition]]) -> list[Condition]:
        if targets is None:
            n = DEFAULT_TRANSFERABLE_TARGETS if self.config.transferable else 1
            targets = default_targets(generator, n)
        targets = list(targets)
        if not targets:
            raise ValueError("at least one target condition is needed (None for unconditional generators)")
        if len(targets) > 1 and not self.config.transferable:
            raise ValueError(f"{len(targets)} targets given: set transferable=True for one perturbation against "
                             "all of them, or use run_per_target for one perturbation each")
        return targets


def _check_image(image: torch.Tensor, generator: TranslationGenerator) -> torch.Tensor:
    if not isinstance(image, torch.Tensor) or image.dim() != 4 or not image.is_floating_point():
        raise ValueError("image must be a float tensor of shape (B, C, H, W)")
    if image.shape[1] != generator.input_channels:
        raise ValueError(f"image has {image.shape[1]} channels, the generator takes {generator.input_channels}")
    if float(image.min()) < -1.0 - 1e-4 or float(image.max()) > 1.0 + 1e-4:
        raise ValueError("image values must lie in [-1, 1]")
    return image.detach().clamp(-1.0, 1.0)


def _check_size(size: tuple[int, int], generator: TranslationGenerator) -> tuple[int, int]:
    size = (int(size[0]), int(size[1]))
    m = generator.size_multiple
    if size[0] < m or size[1] < m or size[0] % m or size[1] % m:
        raise ValueError(f"model_size {size} must be positive multiples of {m} for this generator")
    return size


def _rngs(seed: Optional[int]) -> tuple[torch.Generator, random.Random]:
    torch_rng = torch.Generator()
    if seed is None:
        torch_rng.seed()
        return torch_rng, random.Random()
    torch_rng.manual_seed(seed)
    return torch_rng, random.Random(seed)
