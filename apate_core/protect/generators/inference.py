"""Small helpers to read a configuration off a state_dict's keys and shapes."""

from __future__ import annotations

import re

import torch

from ...errors import CheckpointError

ACCEPTED = "a generator state_dict saved with torch.save (.pth/.ckpt/.pt) or safetensors (.safetensors)"


def require(state_dict: dict[str, torch.Tensor], key: str, family: str, dims: int | None = None) -> torch.Tensor:
    """The tensor under ``key``, or a CheckpointError saying which key the family's layout needs."""
    tensor = state_dict.get(key)
    if tensor is None or (dims is not None and tensor.dim() != dims):
        raise CheckpointError(
            f"Cannot infer the {family} configuration: the checkpoint has no {dims or ''}-D tensor '{key}' "
            f"(first keys: {', '.join(list(state_dict)[:4]) or 'none'})",
            accepted=f"{ACCEPTED} in the released {family} key layout",
        )
    return tensor


def indices(state_dict: dict[str, torch.Tensor], prefix: str, suffix: str) -> list[int]:
    """Sorted distinct N for keys shaped ``<prefix>N<suffix>``."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)" + re.escape(suffix) + "$")
    return sorted({int(m.group(1)) for key in state_dict if (m := pattern.match(key))})


def count_indexed(state_dict: dict[str, torch.Tensor], prefix: str, suffix: str) -> int:
    return len(indices(state_dict, prefix, suffix))
