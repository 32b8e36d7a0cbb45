"""A timm-style registry of classes by name, shared by the re-synthesisers and the real-photo sources."""

from __future__ import annotations

from typing import Any, Callable, Generic, TypeVar

from ...errors import InputRefused

T = TypeVar("T")


class Registry(Generic[T]):
    """``@registry.register("name")`` on a class sets its ``name``; ``create(name, **opts)`` instantiates it."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._classes: dict[str, type[T]] = {}

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        def add(cls: type[T]) -> type[T]:
            key = name.lower().strip()
            if key in self._classes:
                raise ValueError(f"{self.kind} {key!r} is already registered")
            cls.name = key  # type: ignore[attr-defined]
            self._classes[key] = cls
            return cls

        return add

    def names(self) -> list[str]:
        return sorted(self._classes)

    def create(self, name: str, **opts: Any) -> T:
        key = name.lower().strip()
        if key not in self._classes:
            raise InputRefused(f"Unknown {self.kind} {name!r}", accepted=", ".join(self.names()))
        return self._classes[key](**opts)
