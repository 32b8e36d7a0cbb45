"""timm-style attack registry: a name creates a configured attack."""

from __future__ import annotations

from typing import Any, TypeVar

from .base import Attack

_ATTACKS: dict[str, type[Attack]] = {}
A = TypeVar("A", bound=type[Attack])


def register_attack(cls: A) -> A:
    if cls.name in _ATTACKS:
        raise ValueError(f"attack {cls.name!r} is already registered")
    _ATTACKS[cls.name] = cls
    return cls


def list_attacks() -> list[str]:
    return sorted(_ATTACKS)


def get_attack_class(name: str) -> type[Attack]:
    key = name.lower().replace("-", "").replace("_", "")
    if key not in _ATTACKS:
        raise KeyError(f"unknown attack {name!r}; known: {', '.join(list_attacks())}")
    return _ATTACKS[key]


def create_attack(name: str, **config: Any) -> Attack:
    """E.g. ``create_attack('pgd', epsilon=0.03, iterations=20, transferable=True)``."""
    cls = get_attack_class(name)
    return cls(cls.config_cls(**config))
