"""timm-style registry: a family name creates a configured generator; metadata for UIs lives here too."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Union

import torch

from .base import TranslationGenerator

TargetMaker = Callable[[tuple[str, ...], int, Optional[torch.Tensor]], list[Optional[torch.Tensor]]]


@dataclass(frozen=True)
class GeneratorFamily:
    name: str
    display_name: str
    model_cls: type[TranslationGenerator]
    config_cls: type
    infer_config: Callable[[dict[str, torch.Tensor]], Any]
    make_targets: TargetMaker
    condition_names: tuple[str, ...]  # of the released configuration
    condition_kind: str  # what a condition value means, for a UI
    native_size: tuple[int, int]  # (H, W) of the released configuration
    checkpoint_files: str  # where users put released files, for a UI / README
    description: str
    # Load-time fix-ups, by name (see loading.FIXUPS); alias prefixes are dropped before anything else.
    fixups: tuple[str, ...] = ()
    alias_prefixes: tuple[str, ...] = ()
    config_names: tuple[str, ...] = field(default=())

    def build(self, **config: Any) -> TranslationGenerator:
        return self.model_cls(self.config_cls(**config))


_FAMILIES: dict[str, GeneratorFamily] = {}


def register_generator(family: GeneratorFamily) -> GeneratorFamily:
    if family.name in _FAMILIES:
        raise ValueError(f"generator family {family.name!r} is already registered")
    _FAMILIES[family.name] = family
    return family


def list_generators() -> list[str]:
    return sorted(_FAMILIES)


def get_family(name: str) -> GeneratorFamily:
    key = name.lower().strip()
    if key not in _FAMILIES:
        raise KeyError(f"unknown generator family {name!r}; known: {', '.join(list_generators())}")
    return _FAMILIES[key]


def create_generator(family: str, **config: Any) -> TranslationGenerator:
    """A randomly initialised generator of ``family`` (released configuration unless overridden)."""
    return get_family(family).build(**config)


def default_targets(family_or_generator: Union[str, TranslationGenerator], n: int = 5,
                    original: Optional[torch.Tensor] = None) -> list[Optional[torch.Tensor]]:
    """Up to ``n`` target conditions for an attack; ``[None]`` for unconditional families.

    StarGAN: the official test's targets from the original labels (one-hot hair colour or toggled attribute;
    original defaults to all zeros). GANimation: expression presets, then seeded random AU vectors.
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    if isinstance(family_or_generator, TranslationGenerator):
        family = get_family(family_or_generator.family)
        names = family_or_generator.condition_names
    else:
        family = get_family(family_or_generator)
        names = family.condition_names
    return family.make_targets(names, n, original)
