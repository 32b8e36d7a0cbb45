"""Reading untrusted checkpoints safely and loading them strictly into Apate's generator classes."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable, Optional, Union

import torch
import torch.nn as nn

from ..errors import CheckpointError, checkpoint_refusal_reason
from .generators import TranslationGenerator, get_family
from .generators.inference import ACCEPTED
from .generators.registry import GeneratorFamily

MAX_CHECKPOINT_BYTES = 2 * 1024 ** 3
WRAPPER_KEYS = ("state_dict", "model", "generator", "netG", "G")
STAT_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")
StateDict = dict[str, torch.Tensor]
CheckpointSource = Union[str, Path, Mapping]


def read_checkpoint(path: Union[str, Path]) -> StateDict:
    """Tensors of a .pth/.ckpt/.pt (``weights_only`` unpickling) or .safetensors file, wrappers removed."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Checkpoint {path} does not exist or is not a file", accepted=ACCEPTED)
    size = path.stat().st_size
    if size > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(f"Checkpoint {path.name} is {size / 1e6:.0f} MB", accepted=ACCEPTED,
                              limit=f"{MAX_CHECKPOINT_BYTES / 1e6:.0f} MB")
    try:
        obj = _load_safetensors(path) if path.suffix == ".safetensors" else _torch_load(path)
    except CheckpointError:
        raise
    except Exception as exc:  # any decoder failure is a property of the file, report it as such
        raise CheckpointError(f"Checkpoint {path.name} cannot be read safely ({checkpoint_refusal_reason(exc)})",
                              accepted=ACCEPTED,
                              limit="only tensors and plain containers are unpickled (weights_only=True)") from exc
    return normalize_state_dict(obj, source=path.name)


def _load_safetensors(path: Path) -> StateDict:
    from safetensors.torch import load_file

    return load_file(str(path), device="cpu")


def _torch_load(path: Path) -> Any:
    try:  # memory-map zip-format files: a 700 MB pix2pixHD checkpoint is then not copied twice
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as exc:
        if "mmap" not in str(exc):
            raise
    return torch.load(path, map_location="cpu", weights_only=True)  # legacy (pre-1.6) serialisation


def normalize_state_dict(obj: Any, source: str = "checkpoint") -> StateDict:
    """Unwrap ``{'state_dict': ...}``-style wrappers, check every value is a tensor, strip ``module.``."""
    for _ in range(3):
        if isinstance(obj, Mapping) and not _all_tensors(obj):
            inner = next((obj[k] for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, Mapping) or not obj or not _all_tensors(obj):
        found = type(obj).__name__ if not isinstance(obj, Mapping) else (
            "no tensors" if not obj else "non-tensor entries: " + ", ".join(
                str(k) for k, v in obj.items() if not isinstance(v, torch.Tensor))[:200])
        raise CheckpointError(f"{source} is not a state_dict of tensors ({found})", accepted=ACCEPTED)
    out: StateDict = {}
    for key, value in obj.items():
        name = str(key)
        name = name[len("module."):] if name.startswith("module.") else name
        if name in out:
            raise CheckpointError(f"{source} has key '{name}' both with and without the 'module.' prefix",
                                  accepted=ACCEPTED)
        out[name] = value
    return out


def _all_tensors(mapping: Mapping) -> bool:
    return all(isinstance(v, torch.Tensor) for v in mapping.values())


def drop_aliases(state_dict: StateDict, prefixes: tuple[str, ...]) -> StateDict:
    """Remove checkpoint-only alias entries (vipermu GANimation's ``debug1.*``..``debug4.*``)."""
    return {k: v for k, v in state_dict.items() if not k.startswith(prefixes)} if prefixes else state_dict


def fill_num_batches_tracked(state_dict: StateDict, model: nn.Module) -> StateDict:
    """Old checkpoints lack ``num_batches_tracked``; torch's own loader fills 0 for them, as done here."""
    for name, _ in model.named_buffers():
        stem = name[: -len("num_batches_tracked")]
        if name.endswith("num_batches_tracked") and name not in state_dict and stem + "running_mean" in state_dict:
            state_dict[name] = torch.tensor(0, dtype=torch.long)
    return state_dict


def strip_legacy_norm_stats(state_dict: StateDict, model: nn.Module) -> StateDict:
    """Drop running-stat keys saved by old torch versions for norm layers that have no such buffers."""
    modules = dict(model.named_modules())
    expected = set(model.state_dict())
    for key in list(state_dict):
        owner, _, attr = key.rpartition(".")
        is_norm = isinstance(modules.get(owner), nn.modules.batchnorm._NormBase)
        if key not in expected and attr in STAT_BUFFERS and is_norm:
            del state_dict[key]
    return state_dict


FIXUPS: dict[str, Callable[[StateDict, nn.Module], StateDict]] = {
    "fill_num_batches_tracked": fill_num_batches_tracked,
    "strip_legacy_norm_stats": strip_legacy_norm_stats,
}


def _as_state_dict(family: GeneratorFamily, checkpoint: CheckpointSource) -> StateDict:
    if isinstance(checkpoint, Mapping):
        state_dict = normalize_state_dict(checkpoint)
    else:
        state_dict = read_checkpoint(checkpoint)
    return drop_aliases(state_dict, family.alias_prefixes)


def config_from_state_dict(family: str, state_dict: Mapping) -> Any:
    """The family's configuration dataclass read off keys and shapes; CheckpointError when impossible."""
    fam = get_family(family)
    sd = drop_aliases(normalize_state_dict(state_dict), fam.alias_prefixes)
    try:
        return fam.infer_config(sd)
    except CheckpointError:
        raise
    except (KeyError, IndexError, ValueError) as exc:
        raise CheckpointError(f"Cannot infer the {fam.display_name} configuration from this checkpoint ({exc})",
                              accepted=f"{ACCEPTED} in the released {fam.display_name} key layout") from exc


def load_generator(family: str, checkpoint: Optional[CheckpointSource] = None, *, device: str = "cpu",
                   **config: Any) -> TranslationGenerator:
    """A ready-to-run generator (eval mode, parameters frozen).

    Without a checkpoint: randomly initialised, released configuration unless overridden. With one (a path or a
    state_dict): configuration inferred from the checkpoint, explicit ``config`` values taking precedence, then a
    strict load after the family's fix-ups.
    """
    fam = get_family(family)
    if checkpoint is None:
        model = fam.build(**config)
    else:
        state_dict = _as_state_dict(fam, checkpoint)
        inferred = dataclasses.asdict(config_from_state_dict(family, state_dict))
        model = _load_strict(fam, state_dict, {**inferred, **config}, _source_name(checkpoint))
    return model.to(device).eval().requires_grad_(False)


def _source_name(checkpoint: CheckpointSource) -> str:
    return "state_dict" if isinstance(checkpoint, Mapping) else Path(checkpoint).name


def _load_strict(fam: GeneratorFamily, state_dict: StateDict, config: dict, source: str) -> TranslationGenerator:
    with torch.device("meta"):  # no random init of weights that are overwritten right away
        model = fam.build(**config)
    for name in fam.fixups:
        state_dict = FIXUPS[name](state_dict, model)
    problems = describe_mismatch(state_dict, model.state_dict())
    if problems:
        raise CheckpointError(
            f"Checkpoint {source} does not match the {fam.display_name} generator {model.config}: {problems}",
            accepted=f"{ACCEPTED} in the {fam.display_name} key layout ({fam.checkpoint_files})",
            limit="every key and shape must match the architecture (strict load)")
    _check_finite(state_dict, source)
    model.to_empty(device="cpu")
    model.load_state_dict(state_dict, strict=True)
    return model


def describe_mismatch(state_dict: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor],
                      show: int = 4) -> str:
    """Readable summary of missing / unexpected keys and shape mismatches; empty when they agree."""
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    shapes = [f"{k} {list(state_dict[k].shape)} vs model {list(v.shape)}"
              for k, v in expected.items() if k in state_dict and state_dict[k].shape != v.shape]
    parts = []
    for label, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes)):
        if items:
            more = f" (+{len(items) - show} more)" if len(items) > show else ""
            parts.append(f"{len(items)} {label}: {', '.join(items[:show])}{more}")
    return "; ".join(parts)


def _check_finite(state_dict: StateDict, source: str) -> None:
    bad = [k for k, v in state_dict.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(f"Checkpoint {source} holds NaN or infinite values in {', '.join(bad[:4])}",
                              accepted="finite floating-point weights")


@dataclasses.dataclass(frozen=True)
class DiscoveredCheckpoint:
    family: str
    path: Path
    size_bytes: int
    label: str  # "<family>/<relative path>", for a picker


CHECKPOINT_SUFFIXES = (".ckpt", ".pth", ".pt", ".safetensors")
# Discriminators and optimiser states share the folders: 200000-D.ckpt, latest_net_D_A.pth, net_epoch_3_id_D.pth.
_DISCRIMINATOR = re.compile(r"(^|[-_])D(_[AB])?$")


def discover_checkpoints(models_dir: Union[str, Path], max_depth: int = 2) -> list[DiscoveredCheckpoint]:
    """Generator checkpoints under ``models_dir/<family>/`` (sub-folders up to ``max_depth``), sorted."""
    from .generators import list_generators

    root = Path(models_dir).expanduser()
    found: list[DiscoveredCheckpoint] = []
    for family in list_generators():
        folder = root / family
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder)
            if (len(rel.parts) > max_depth or not path.is_file() or path.suffix.lower() not in CHECKPOINT_SUFFIXES
                    or rel.name.startswith(".") or _is_discriminator(path)):
                continue
            found.append(DiscoveredCheckpoint(family, path, path.stat().st_size, f"{family}/{rel.as_posix()}"))
    return found


def _is_discriminator(path: Path) -> bool:
    return bool(_DISCRIMINATOR.search(path.stem)) or "optim" in path.stem.lower()
