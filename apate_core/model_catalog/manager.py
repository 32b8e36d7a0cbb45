"""The models this process holds (load, unload, device, memory) and the default device for loads."""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from .. import monitoring
from ..errors import ApateError, InputRefused
from ..settings import Settings

from .catalog import ModelEntry, find_model


# ============================================================================================= loaded models
@dataclass(frozen=True)
class LoadedModel:
    key: str
    kind: str
    name: str
    device: str
    memory_bytes: int  # parameters and buffers, each tensor once
    parameters: int
    seconds: float  # time the load took
    loaded_at: float


def tensor_bytes(module: nn.Module) -> tuple[int, int]:
    """(bytes, parameter count) of a module's parameters and buffers, each tensor counted once."""
    seen: set[int] = set()
    total = params = 0
    for tensor in [*module.parameters(), *module.buffers()]:
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        total += tensor.numel() * tensor.element_size()
    for p in module.parameters():
        params += p.numel()
    return total, params


def _device_of(module: nn.Module) -> str:
    tensor = next(iter([*module.parameters(), *module.buffers()]), None)
    return str(tensor.device) if tensor is not None else "cpu"


class ModelManager:
    """Models this process holds for the Models page, one instance per key. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._held: dict[str, tuple[LoadedModel, Any]] = {}

    def load(self, key: str, device: Optional[str] = None, settings: Optional[Settings] = None) -> LoadedModel:
        """Load (or move) the model ``key`` onto ``device`` (default: default_device())."""
        from ..settings import load_settings

        settings = settings or load_settings()
        entry = find_model(key, settings)
        if not entry.loadable:
            raise InputRefused(f"{entry.title} is an algorithm, not weights: there is nothing to load")
        device = check_device(device or default_device(settings))
        with self._lock:
            held = self._held.get(entry.key)
            if held is not None and held[0].device == device:
                return held[0]
            started = time.perf_counter()
            if held is not None:
                obj = held[1]
                _module_of(obj).to(device)
            else:
                obj = _build(entry, device, settings)
            seconds = time.perf_counter() - started
            module = _module_of(obj)
            memory, params = tensor_bytes(module)
            info = LoadedModel(entry.key, entry.kind, entry.name, _device_of(module), memory, params, seconds,
                               time.time())
            self._held[entry.key] = (info, obj)
            return info

    def unload(self, key: str) -> bool:
        """Drop the model; True when it was held."""
        with self._lock:
            held = self._held.pop(key, None)
        if held is None:
            return False
        if held[0].device.startswith("cuda") and torch.cuda.is_available():
            del held
            torch.cuda.empty_cache()
        return True

    def loaded(self) -> list[LoadedModel]:
        with self._lock:
            return sorted((info for info, _ in self._held.values()), key=lambda i: i.loaded_at)

    def get(self, key: str) -> Any:
        """The held object (a Detector, a generator or the face descriptor), or None."""
        with self._lock:
            held = self._held.get(key)
        return None if held is None else held[1]

    def is_loaded(self, key: str) -> bool:
        with self._lock:
            return key in self._held


def _module_of(obj: Any) -> nn.Module:
    return obj.module if hasattr(obj, "module") and isinstance(obj.module, nn.Module) else obj


def _build(entry: ModelEntry, device: str, settings: Settings) -> Any:
    started = time.perf_counter()
    if entry.kind == "detector":
        from ..detect import pipeline

        # pipeline.load_detector reports the load to monitoring itself
        return pipeline.load_detector(entry.load_name, dataclasses.replace(settings, device=device))
    if entry.kind == "generator":
        from ..protect.checkpoints import load_generator

        if entry.path is None:
            with torch.random.fork_rng(devices=[]):  # the same seeded demo weights Protect uses
                torch.manual_seed(0)
                model = load_generator(entry.architecture, device=device, **dict(entry.config))
        else:
            model = load_generator(entry.architecture, entry.path, device=device)
    elif entry.kind == "identity":
        from ..protect.identity.descriptor import build_face_descriptor, read_weights

        model = build_face_descriptor(read_weights(Path(entry.path)), device)
    else:
        raise InputRefused(f"{entry.title} cannot be loaded")
    monitoring.model_loaded(entry.name, model, time.perf_counter() - started)
    return model


MANAGER = ModelManager()


def load(name: str, device: Optional[str] = None, settings: Optional[Settings] = None) -> LoadedModel:
    return MANAGER.load(name, device, settings)


def unload(name: str) -> bool:
    return MANAGER.unload(name)


def loaded() -> list[LoadedModel]:
    return MANAGER.loaded()


# ============================================================================================= default device
_default_device: Optional[str] = None
_device_lock = threading.Lock()


def available_devices() -> list[str]:
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def check_device(device: str) -> str:
    if device not in available_devices():
        raise InputRefused(f"Device {device!r} is not available on this machine",
                           accepted=", ".join(available_devices()))
    return device


def default_device(settings: Optional[Settings] = None) -> str:
    """The device chosen on the Models page for this process, else what APATE_DEVICE stands for."""
    if _default_device is not None:
        return _default_device
    if settings is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        return settings.resolved_device()
    except ApateError:
        return "cpu"


def set_default_device(device: Optional[str]) -> Optional[str]:
    """Choose the default device for models this process loads from the Models page (None: back to APATE_DEVICE)."""
    global _default_device
    with _device_lock:
        _default_device = None if device is None else check_device(device)
        return _default_device
