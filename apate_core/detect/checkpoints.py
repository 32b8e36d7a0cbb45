"""Checkpoints users bring: Apate's safetensors + JSON card, CNNDetection .pth, plain state_dicts.

Nothing here unpickles arbitrary objects: .pth/.pt files go through
torch.load(weights_only=True, map_location="cpu"), and anything that loader rejects is refused
with a CheckpointError. Every mismatch names the first few missing, unexpected and mis-shaped keys.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import torch
from torch import nn

from ..media.intake import sha256_file
from ..errors import CheckpointError, checkpoint_refusal_reason
from .models import IMAGENET_MEAN, IMAGENET_STD, Detector, DetectorConfig, plain_state_dict
from .registry import VIT_TINY_OPTIONS, build_detector, get_spec, is_registered, list_detectors, make_config

PathLike = Union[str, os.PathLike]
CHECKPOINT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".ckpt")
CARD_KEYS = ("name", "architecture", "config", "trained_on", "metrics", "recipe", "date")
# Containers training scripts commonly wrap a state_dict in.
WRAPPER_KEYS = ("model", "state_dict", "model_state_dict", "net")
SHOW_KEYS = 5
CNNDETECTION_REFERENCE = ("Wang et al., 'CNN-generated images are surprisingly easy to spot... for now', "
                          "CVPR 2020 (github.com/PeterWangsicheng/CNNDetection)")


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def looks_like_checkpoint(name: Any) -> bool:
    if not isinstance(name, (str, os.PathLike)):
        return False
    path = Path(name)
    return path.suffix.lower() in CHECKPOINT_SUFFIXES or path.is_file()


def card_path_for(weights_path: PathLike) -> Path:
    """The JSON model card lives beside the weights as <stem>.json."""
    return Path(weights_path).with_suffix(".json")


def file_sha256(path: PathLike) -> str:
    return sha256_file(path)


def read_state_dict(path: PathLike) -> tuple[dict[str, torch.Tensor], Optional[str]]:
    """(state_dict, wrapper key or None). Refuses anything that is not plain tensors."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Checkpoint file not found: {path}")
    raw = _read_safetensors(path) if path.suffix.lower() == ".safetensors" else _torch_load(path)
    state, wrapper = _unwrap(raw, path)
    return _strip_prefix(state, "module."), wrapper


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:  # the library raises several types for corrupt headers
        raise CheckpointError(f"{path.name} is not a readable safetensors file ({exc})") from exc


def _torch_load(path: Path) -> Any:
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError for refused objects, RuntimeError/EOFError for damage
        raise CheckpointError(
            f"{path.name} was refused: it is not a plain-tensor checkpoint that loads with "
            f"weights_only=True ({checkpoint_refusal_reason(exc)})",
            accepted=".safetensors, or .pth/.pt holding only tensors (a state_dict or {'model': state_dict})",
        ) from exc


def _unwrap(raw: Any, path: Path) -> tuple[dict[str, torch.Tensor], Optional[str]]:
    if not isinstance(raw, Mapping):
        raise CheckpointError(f"{path.name} holds a {type(raw).__name__}, not a state_dict")
    wrapper = None
    if not all(isinstance(v, torch.Tensor) for v in raw.values()):
        wrapper = next((k for k in WRAPPER_KEYS if isinstance(raw.get(k), Mapping)), None)
        if wrapper is None:
            raise CheckpointError(f"{path.name} is a dict without tensors at its top level",
                                  accepted=f"a state_dict, or one wrapped under {list(WRAPPER_KEYS)}")
        raw = raw[wrapper]
    bad = [k for k, v in raw.items() if not isinstance(v, torch.Tensor)]
    if bad or not raw:
        raise CheckpointError(f"{path.name}: state_dict is empty or has non-tensor entries {bad[:SHOW_KEYS]}")
    return dict(raw), wrapper


def _strip_prefix(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    # DataParallel checkpoints prefix every key with "module.".
    if state and all(k.startswith(prefix) for k in state):
        return {k[len(prefix):]: v for k, v in state.items()}
    return state


def read_card(weights_path: PathLike) -> Optional[dict[str, Any]]:
    path = card_path_for(weights_path)
    if not path.is_file():
        return None
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"Model card {path.name} is not valid JSON ({exc})") from exc
    if not isinstance(card, dict) or not (card.get("architecture") or card.get("name")):
        raise CheckpointError(f"Model card {path.name} does not name an architecture",
                              accepted=f"a JSON object with keys {list(CARD_KEYS)}")
    return card


# --------------------------------------------------------------------------------------------
# Matching weights to a module
# --------------------------------------------------------------------------------------------


def mismatch_report(module: nn.Module, state: Mapping[str, torch.Tensor]) -> Optional[str]:
    """None when state fits module exactly, else the first few missing/unexpected/mis-shaped keys."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    misshaped = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
                 for k, v in expected.items() if k in state and tuple(state[k].shape) != tuple(v.shape)]
    parts = [_listing(label, items) for label, items in
             (("missing keys", missing), ("unexpected keys", unexpected), ("mis-shaped keys", misshaped)) if items]
    return "; ".join(parts) or None


def _listing(label: str, items: list[str]) -> str:
    more = f" (+{len(items) - SHOW_KEYS} more)" if len(items) > SHOW_KEYS else ""
    return f"{len(items)} {label}: {', '.join(items[:SHOW_KEYS])}{more}"


def load_state_into(module: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Strictly load state into module, or raise CheckpointError describing the mismatch."""
    problem = mismatch_report(module, state)
    if problem:
        raise CheckpointError(f"{source} does not match the architecture: {problem}",
                              accepted="a checkpoint with exactly the architecture's keys and a 1-output head")
    module.load_state_dict(dict(state), strict=True)


def _shape(state: Mapping[str, torch.Tensor], key: str) -> Optional[tuple[int, ...]]:
    return tuple(state[key].shape) if key in state else None


def is_cnndetection(state: Mapping[str, torch.Tensor]) -> bool:
    """ResNet-50 with a single-output fc, as CNNDetection ships it."""
    return _shape(state, "fc.weight") == (1, 2048) and "layer4.2.conv3.weight" in state


def infer_architecture(state: Mapping[str, torch.Tensor]) -> Optional[tuple[str, dict[str, Any]]]:
    """(registered name, overrides) recognised from key names/shapes, or None."""
    if "gru.weight_ih_l0" in state and "clip_head.weight" in state:
        return "cnn_gru", {"hidden_size": state["clip_head.weight"].shape[1]}
    if "conv_proj.weight" in state and "encoder.pos_embedding" in state:
        return "vit_tiny", _infer_vit(state)
    if _shape(state, "classifier.1.weight") == (1, 1280):
        return "efficientnet_b0", {}
    if is_cnndetection(state):
        return "resnet50", {}
    if _shape(state, "fc.weight") == (1, 512) and "layer4.1.conv2.weight" in state:
        return "resnet18", {}
    return None


def _infer_vit(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    hidden, _, patch, _ = state["conv_proj.weight"].shape
    layers = {k.split(".")[2] for k in state if k.startswith("encoder.layers.")}
    tokens = state["encoder.pos_embedding"].shape[1] - 1
    side = int(round(tokens ** 0.5))
    found = {"hidden_dim": hidden, "patch_size": patch, "num_layers": len(layers), "input_size": side * patch}
    mlp_key = "encoder.layers.encoder_layer_0.mlp.0.weight"
    if mlp_key in state:
        found["mlp_dim"] = state[mlp_key].shape[0]
    # Heads leave no trace in the shapes; keep the default when it divides the width.
    if hidden % VIT_TINY_OPTIONS["num_heads"]:
        found["num_heads"] = 1
    return {k: int(v) for k, v in found.items()}


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def load_detector(path: PathLike, architecture: Optional[str] = None, *, device: str = "cpu",
                  **overrides: Any) -> Detector:
    """Load a checkpoint a user brings.

    - Apate format: <name>.safetensors with <name>.json card beside it.
    - CNNDetection: .pth holding {'model': ResNet-50 state_dict with a (1, 2048) fc}; detected
      automatically; full image, ImageNet normalisation, sigmoid -> P(fake).
    - Plain torchvision state_dict with a 1-output head; architecture named by the caller (or
      recognised from its keys).
    overrides: DetectorConfig fields or builder options, as for create_detector.
    """
    path = Path(path)
    state, wrapper = read_state_dict(path)
    sha = file_sha256(path)
    card = read_card(path)
    if card is not None:
        _check_card_hash(card, sha, path)
        detector = _from_card(state, card, path, architecture, overrides)
    elif is_cnndetection(state) and architecture in (None, "resnet50") and (wrapper or architecture is None):
        detector = _from_cnndetection(state, path, overrides)
    else:
        detector = _from_plain(state, path, architecture, overrides)
    detector._sha256 = sha
    return detector.to(device)


def _from_card(state: dict[str, torch.Tensor], card: dict[str, Any], path: Path,
               architecture: Optional[str], overrides: dict[str, Any]) -> Detector:
    arch = str(card.get("architecture") or card.get("name"))
    if architecture and architecture != arch:
        raise CheckpointError(f"{path.name} is a {arch} checkpoint (per its card), not {architecture}")
    spec = get_spec(arch) if is_registered(arch) else _unknown_arch(arch, path)
    base = DetectorConfig.from_dict(card["config"]) if isinstance(card.get("config"), Mapping) else None
    if base is not None and base.architecture != arch:
        raise CheckpointError(f"Model card of {path.name} names {arch} but its config says {base.architecture}")
    config = _config_or_refuse(spec, base, overrides, path)
    full_card = {k: card.get(k) for k in CARD_KEYS} | {k: v for k, v in card.items() if k not in CARD_KEYS}
    full_card.update(architecture=arch, format="apate", source=str(path))
    return _build_loaded(spec, config, full_card, state, path)


def _check_card_hash(card: Mapping[str, Any], sha: str, path: Path) -> None:
    # A card written by save_detector names the hash of the weights it describes.
    expected = card.get("weights_sha256")
    if expected and expected != sha:
        raise CheckpointError(f"{path.name} is not the weights its model card describes (sha256 differs)",
                              accepted="the .safetensors file saved together with its .json card")


def _from_cnndetection(state: dict[str, torch.Tensor], path: Path, overrides: dict[str, Any]) -> Detector:
    spec = get_spec("resnet50")
    base = DetectorConfig(architecture="resnet50", resize="none", mean=IMAGENET_MEAN, std=IMAGENET_STD)
    config = _config_or_refuse(spec, base, overrides, path)
    card = {"name": path.stem, "architecture": "resnet50", "trained_on": None, "metrics": {},
            "recipe": None, "date": None, "format": "cnndetection", "source": str(path),
            "notes": f"CNNDetection-format checkpoint; protocol of {CNNDETECTION_REFERENCE}. "
                     "Training data as stated by whoever published the file."}
    return _build_loaded(spec, config, card, state, path)


def _from_plain(state: dict[str, torch.Tensor], path: Path, architecture: Optional[str],
                overrides: dict[str, Any]) -> Detector:
    inferred = infer_architecture(state)
    arch = architecture or (inferred[0] if inferred else None)
    if arch is None:
        raise CheckpointError(f"Cannot tell which architecture {path.name} is for",
                              accepted=f"load_detector(path, architecture=...) with one of {list_detectors()}")
    spec = get_spec(arch)
    guessed = inferred[1] if inferred and inferred[0] == arch else {}
    config = _config_or_refuse(spec, None, {**guessed, **overrides}, path)
    card = {"name": path.stem, "architecture": arch, "trained_on": None, "metrics": {}, "recipe": None,
            "date": None, "format": "torchvision", "source": str(path)}
    return _build_loaded(spec, config, card, state, path)


def _config_or_refuse(spec, base, overrides, path: Path) -> DetectorConfig:
    try:
        return make_config(spec, base, **overrides)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"Cannot configure {spec.name} for {path.name}: {exc}") from exc


def _build_loaded(spec, config: DetectorConfig, card: dict[str, Any], state: dict[str, torch.Tensor],
                  path: Path) -> Detector:
    try:
        detector = build_detector(spec, config, card=card)
    except ValueError as exc:
        raise CheckpointError(f"Cannot build {spec.name} for {path.name}: {exc}") from exc
    load_state_into(detector.module, state, source=path.name)
    return detector


def _unknown_arch(arch: str, path: Path):
    raise CheckpointError(f"{path.name} is for architecture {arch!r}, which this Apate does not know",
                          accepted=", ".join(list_detectors()))


def save_detector(detector: Detector, path: PathLike, *, trained_on: Any = None,
                  metrics: Optional[Mapping[str, Any]] = None, recipe: Any = None,
                  date: Optional[str] = None, name: Optional[str] = None) -> Path:
    """Write <path>.safetensors and the <stem>.json model card beside it; returns the weights path.

    Card fields not given keep the detector's current card values; date defaults to today.
    """
    from safetensors.torch import save

    path = Path(path)
    if path.suffix.lower() != ".safetensors":
        path = path.with_name(path.name + ".safetensors")
    payload = save(plain_state_dict(detector.module))
    sha = hashlib.sha256(payload).hexdigest()
    card = _card_for_save(detector, sha, trained_on=trained_on, metrics=metrics, recipe=recipe, date=date, name=name)
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, payload)
    _atomic_write(card_path_for(path), (json.dumps(card, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    detector._sha256 = sha
    detector.card.update({k: card[k] for k in CARD_KEYS if k not in ("config", "architecture")})
    return path


def _card_for_save(detector: Detector, sha: str, **given: Any) -> dict[str, Any]:
    card = {k: v for k, v in detector.card.items() if k not in ("source", "format")}
    for key, value in given.items():
        if value is not None:
            card[key] = dict(value) if key == "metrics" else value
    card.setdefault("name", detector.name)
    card["date"] = card.get("date") or _dt.date.today().isoformat()
    card.update(architecture=detector.architecture, config=detector.config.to_dict(), weights_sha256=sha,
                format="apate")
    for key in CARD_KEYS:
        card.setdefault(key, {} if key == "metrics" else None)
    try:
        json.dumps(card)
    except TypeError as exc:
        raise ValueError(f"model card values must be JSON-able: {exc}") from exc
    return card


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)
