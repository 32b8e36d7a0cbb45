"""FGSM, I-FGSM and PGD: they differ only in where they start, the step size and the number of steps."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Attack, AttackConfig
from .registry import register_attack


def _uniform(x: torch.Tensor, bound: float, rng: torch.Generator) -> torch.Tensor:
    return (torch.rand(x.shape, generator=rng, dtype=x.dtype) * 2 - 1) * bound


@dataclass(frozen=True)
class FGSMConfig(AttackConfig):
    # At X = x the loss and its gradient are exactly zero, so start from tiny noise or nothing changes.
    start_noise: float = 0.001


@dataclass(frozen=True)
class IFGSMConfig(AttackConfig):
    step_size: float = 0.01
    iterations: int = 10
    start_noise: float = 0.001

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_steps(self.step_size, self.iterations)


@dataclass(frozen=True)
class PGDConfig(AttackConfig):
    step_size: float = 0.01
    iterations: int = 10
    random_start: bool = True  # False: start like I-FGSM from its +-0.001 noise (exactly x would be a no-op)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_steps(self.step_size, self.iterations)


def _check_steps(step_size: float, iterations: int) -> None:
    if step_size <= 0 or iterations < 1:
        raise ValueError(f"need step_size > 0 and iterations >= 1, got {step_size}, {iterations}")


@register_attack
class IFGSM(Attack):
    """Iterative FGSM: k steps of size a from (almost) the clean image."""

    name = "ifgsm"
    config_cls = IFGSMConfig

    @property
    def iterations(self) -> int:
        return self.config.iterations

    @property
    def step_size(self) -> float:
        return self.config.step_size

    def initial_offset(self, x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        return _uniform(x, self.config.start_noise, rng)


@register_attack
class FGSM(IFGSM):
    """One signed-gradient step of size epsilon."""

    name = "fgsm"
    config_cls = FGSMConfig

    @property
    def iterations(self) -> int:
        return 1

    @property
    def step_size(self) -> float:
        return self.config.epsilon


@register_attack
class PGD(IFGSM):
    """I-FGSM from a uniform random start in the epsilon ball."""

    name = "pgd"
    config_cls = PGDConfig

    def initial_offset(self, x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        return _uniform(x, self.config.epsilon if self.config.random_start else IFGSMConfig.start_noise, rng)
