"""The models the API serves, loaded once per name and kept until unloaded.

Detectors are the registered architectures plus checkpoints under ``APATE_MODELS_DIR`` (named by their path
relative to it: a client never names an arbitrary server path). Generators are the Protect families, from the same
source the CLI picks (shipped weights, a discovered checkpoint, or random demo weights). ``identity`` is the face
recogniser of the identity cloak, which the engine keeps for the whole process once it is built.
"""

from __future__ import annotations

import threading
from typing import Any, Optional

from ..errors import InputRefused
from ..settings import Settings

IDENTITY = "identity"


class UnknownModel(InputRefused):
    """A model name the API does not serve (answered 404 on the models routes, 400 elsewhere)."""


def _parameter_bytes(module: Any) -> Optional[int]:
    try:
        tensors = list(module.parameters()) + list(module.buffers())
    except AttributeError:
        return None
    return int(sum(t.numel() * t.element_size() for t in tensors))


class ModelRegistry:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._detectors: dict[str, Any] = {}
        self._generators: dict[str, tuple[Any, Any]] = {}  # family -> (GeneratorChoice, TranslationGenerator)
        self._identity: Any = None
        self._locks: dict[str, threading.Lock] = {}  # one load per name at a time, other names in parallel
        self._locks_lock = threading.Lock()

    def _lock(self, name: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(name, threading.Lock())

    # ------------------------------------------------------------------------------------ names

    def detector_names(self) -> list[str]:
        from ..detect.pipeline import available_checkpoints
        from ..detect.registry import list_detectors

        root = self.settings.models_path
        found = [p.relative_to(root).as_posix() for p in available_checkpoints(self.settings)]
        return list_detectors() + found

    @staticmethod
    def generator_names() -> list[str]:
        from ..protect.generators import list_generators

        return list_generators()

    def kind_of(self, name: str) -> str:
        if name == IDENTITY:
            return "identity"
        if name in self.generator_names():
            return "generator"
        if name in self.detector_names():
            return "detector"
        raise UnknownModel(f"Unknown model {name!r}", accepted=", ".join(
            self.detector_names() + self.generator_names() + [IDENTITY]))

    def check_detector(self, name: str) -> str:
        if name not in self.detector_names():
            raise UnknownModel(f"Unknown detector {name!r}", accepted=", ".join(self.detector_names()))
        return name

    # ------------------------------------------------------------------------------------ loading

    def detector(self, name: str) -> Any:
        self.check_detector(name)
        with self._lock(name):
            if name not in self._detectors:
                from ..detect.pipeline import load_detector
                from ..detect.registry import list_detectors

                target = name if name in list_detectors() else str(self.settings.models_path / name)
                self._detectors[name] = load_detector(target, self.settings)
            return self._detectors[name]

    def generator(self, family: str) -> tuple[Any, Any]:
        """(choice, generator) for a Protect family."""
        if family not in self.generator_names():
            raise UnknownModel(f"Unknown model_type {family!r}",
                               accepted=", ".join(self.generator_names() + [IDENTITY]))
        with self._lock(family):
            if family not in self._generators:
                from ..protect.job import available_generators, load_choice

                choice = available_generators(self.settings, family)[0]
                self._generators[family] = (choice, load_choice(choice, self.settings.resolved_device()))
            return self._generators[family]

    def identity(self) -> Any:
        with self._lock(IDENTITY):
            if self._identity is None:
                from ..protect.identity.descriptor import load_face_descriptor

                self._identity = load_face_descriptor()  # what run_identity_job uses (cached by the engine)
            return self._identity

    def load(self, name: str) -> dict[str, Any]:
        kind = self.kind_of(name)
        if kind == "identity":
            self.identity()
        elif kind == "generator":
            self.generator(name)
        else:
            self.detector(name)
        return self.describe(name)

    def unload(self, name: str) -> bool:
        """Drop the API's reference (memory returns once no running job holds the model); False if not loaded."""
        kind = self.kind_of(name)
        with self._lock(name):
            if kind == "identity":
                raise InputRefused("The identity recogniser is kept by the engine for the whole process",
                                   accepted="unloading detectors and generators")
            if kind == "generator":
                found = self._generators.pop(name, None)
                if found is not None:
                    from ..protect import job as protect_job

                    # the engine's own small cache would keep it alive otherwise
                    for key in [k for k, v in protect_job._MODELS.items() if v is found[1]]:
                        protect_job._MODELS.pop(key, None)
                return found is not None
            return self._detectors.pop(name, None) is not None

    # ------------------------------------------------------------------------------------ describing

    def describe(self, name: str) -> dict[str, Any]:
        kind = self.kind_of(name)
        model: Any = None
        info: dict[str, Any] = {"name": name, "kind": kind}
        if kind == "detector":
            from ..detect.pipeline import default_detector_name

            detector = self._detectors.get(name)
            model = detector.module if detector is not None else None
            info["default"] = name == default_detector_name()
            info["device"] = str(detector.device) if detector is not None else None
        elif kind == "generator":
            choice, model = self._generators.get(name, (None, None))
            info["source"] = choice.source if choice is not None else None
            info["label"] = choice.label if choice is not None else None
        else:
            model = self._identity
        info["loaded"] = model is not None
        if model is not None and info.get("device") is None:
            info["device"] = next((str(p.device) for p in model.parameters()), "cpu")
        info["parameter_bytes"] = _parameter_bytes(model) if model is not None else None
        return info

    def describe_all(self) -> list[dict[str, Any]]:
        names = self.detector_names() + self.generator_names() + [IDENTITY]
        return [self.describe(name) for name in names]
