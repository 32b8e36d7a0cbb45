"""Every model Apate can use, its card, which ones this process holds, and checkpoints an analyst imports.

    entries = list_models(settings)                        # detectors, Protect generators, attacks, identity
    load("detector:resnet18", "cpu", settings)              # the process-wide manager; loaded() shows device, bytes
    report = inspect_checkpoint(data, "mine.pth")           # which architecture the keys and shapes fit, or why not
    imported = import_checkpoint(data, "mine.pth", None, {"name": "mine", "licence": "MIT"}, settings)
    save_card(imported.name, {"trained_on": "FF++ c23"}, settings)

Listing reads the registries (``apate_core.detect.list_detectors``, ``apate_core.protect`` generator families and
attacks), the shipped weights with the cards beside them (``assets/models``) and the checkpoints under
``APATE_MODELS_DIR``. Imports are written where the Detect and Protect pages and the CLI look:
``models/detectors/<name>.safetensors`` + ``<name>.json`` for a detector, ``models/<family>/<name>.safetensors``
(+ card) for a generator.

Checkpoints are untrusted input. They are read only by the engine's safe readers
(``apate_core.protect.checkpoints.read_checkpoint`` and ``apate_core.detect.checkpoints``): safetensors, or
``torch.load(weights_only=True)``, which never runs code from the file. A refusal says what was wrong and what
is accepted; PyTorch's own advice to retry the unsafe way is cut out of it.
"""

from .catalog import ACCEPTED, EDITABLE_FIELDS, IMPORT_SUFFIXES, KIND_TITLES, KINDS, SHOW_KEYS, ModelEntry, find_model, \
    list_models
from .importing import (CheckpointInspection, ImportedModel, KeyReport, ShapeMismatch, human_bytes, import_checkpoint,
                        importable_architectures, inspect_checkpoint, inspect_state, save_card)
from .manager import (MANAGER, LoadedModel, ModelManager, available_devices, default_device, load, loaded,
                      set_default_device, tensor_bytes, unload)

__all__ = [
    "ACCEPTED", "CheckpointInspection", "EDITABLE_FIELDS", "IMPORT_SUFFIXES", "ImportedModel", "KIND_TITLES", "KINDS",
    "KeyReport", "LoadedModel", "MANAGER", "ModelEntry", "ModelManager", "SHOW_KEYS", "ShapeMismatch",
    "available_devices", "default_device", "find_model", "human_bytes", "import_checkpoint",
    "importable_architectures", "inspect_checkpoint", "inspect_state", "list_models", "load", "loaded", "save_card",
    "set_default_device", "tensor_bytes", "unload",
]
