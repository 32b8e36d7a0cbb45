"""The catalogue: every detector, Protect generator, attack and the face descriptor, with its card."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union


from ..errors import CheckpointError, InputRefused
from ..settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_DETECTORS_DIR = ROOT / "assets" / "models"
KINDS = ("detector", "generator", "attack", "identity")
KIND_TITLES = {"detector": "Detectors", "generator": "Protect generators", "attack": "Attacks",
               "identity": "Identity"}
IMPORT_SUFFIXES = (".safetensors", ".pth", ".pt", ".ckpt", ".bin")
ACCEPTED = ("a .safetensors file, or a .pth/.pt/.ckpt/.bin file holding only tensors (read with "
            "weights_only=True, which never runs code): a state_dict, possibly wrapped under "
            "'state_dict', 'model', 'model_state_dict', 'net', 'generator', 'netG' or 'G'")
DETECTORS_DIR = "detectors"  # models/detectors/<name>.safetensors + <name>.json
SHOW_KEYS = 20  # keys listed per kind of mismatch
EDITABLE_FIELDS = ("name", "trained_on", "metrics", "licence", "source", "notes")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# Registered names that are shipped weights rather than architectures, and architectures whose modules need
# more than their keys to be rebuilt (the CLIP probe's blocks cannot be read off a head's shape).
NOT_IMPORTABLE = {"clip_probe": "a CLIP linear probe: which CLIP blocks it reads cannot be told from its shapes; "
                                "bring it as Apate's .safetensors with its .json card under models/detectors/"}
StrPath = Union[str, os.PathLike]



# ============================================================================================= listing
@dataclass(frozen=True)
class ModelEntry:
    """One model as the Models page lists it. ``key`` ("kind:name") is what load/unload take."""

    kind: str  # one of KINDS
    name: str  # unique within its kind
    title: str
    origin: str  # "shipped" | "imported" | "checkpoint" | "architecture" | "random" | "built-in"
    architecture: str
    description: str = ""
    path: Optional[Path] = None
    sha256: Optional[str] = None
    size_bytes: Optional[int] = None
    card: Mapping[str, Any] = field(default_factory=dict, compare=False)
    loadable: bool = True
    editable: bool = False  # the card may be edited (imported models and checkpoints under APATE_MODELS_DIR)
    load_name: str = ""  # detectors: what pipeline.load_detector takes
    config: Mapping[str, Any] = field(default_factory=dict, compare=False)  # random generators' configuration

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.name}"

    @property
    def trained_on(self) -> str:
        return _summary(self.card.get("trained_on") or self.card.get("training"))

    @property
    def metrics(self) -> Any:
        for key in ("metrics", "heldout_metrics", "efficacy", "cloak_efficacy", "exactness"):
            if self.card.get(key):
                return self.card[key]
        return None

    @property
    def licence(self) -> str:
        return _summary(self.card.get("licence") or self.card.get("license"))

    @property
    def source(self) -> str:
        for key in ("source", "recipe_command", "recipe", "converter"):
            if self.card.get(key):
                return _summary(self.card[key])
        return ""


def list_models(settings: Settings, kinds: Sequence[str] = KINDS) -> list[ModelEntry]:
    """Every model of the given kinds, in KINDS order; within a kind shipped first, then imports and checkpoints."""
    makers = {"detector": _detector_entries, "generator": _generator_entries, "attack": _attack_entries,
              "identity": _identity_entries}
    out: list[ModelEntry] = []
    for kind in KINDS:
        if kind in kinds:
            out += makers[kind](settings)
    return out


def find_model(key: str, settings: Settings) -> ModelEntry:
    """The entry whose key ("kind:name") or unique name is ``key``; InputRefused otherwise."""
    entries = list_models(settings)
    hits = [e for e in entries if e.key == key] or [e for e in entries if e.name == key]
    if len(hits) != 1:
        problem = f"No model {key!r}" if not hits else f"{key!r} names {len(hits)} models"
        raise InputRefused(problem, accepted="a key shown on the Models page, e.g. 'detector:resnet18'")
    return hits[0]


def _summary(value: Any, limit: int = 400) -> str:
    if value is None or value == "" or value == {} or value == []:
        return ""
    if isinstance(value, str):
        text = value
    elif isinstance(value, Mapping) and set(value) >= {"kind"}:
        text = str(value["kind"])
    elif isinstance(value, Mapping) and all(isinstance(v, (str, int, float)) for v in value.values()):
        text = "; ".join(f"{k}: {v}" for k, v in value.items())
    else:
        text = json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@functools.lru_cache(maxsize=256)
def _hash_cached(path: str, mtime: float, size: int) -> str:
    from ..media.intake import sha256_file

    return sha256_file(path)


def file_sha256(path: StrPath) -> str:
    """SHA-256 of a weights file, computed once per (path, mtime, size)."""
    stat = Path(path).stat()
    return _hash_cached(str(Path(path).resolve()), stat.st_mtime, stat.st_size)


def _read_json(path: Path) -> Optional[dict[str, Any]]:
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return card if isinstance(card, dict) else None


def _detector_entries(settings: Settings) -> list[ModelEntry]:
    from ..detect import checkpoints, pipeline
    from ..detect.registry import SHIPPED_MODELS, get_spec, list_detectors, untrained_card

    registered = set(list_detectors())
    shipped_names = {Path(fn()).resolve(): name for name, fn in SHIPPED_MODELS.items()}
    entries: list[ModelEntry] = []
    for path in sorted(SHIPPED_DETECTORS_DIR.glob("*.safetensors")):
        card = _read_json(path.with_suffix(".json")) or {}
        name = shipped_names.get(path.resolve(), path.stem)
        described = " (the default)" if name == pipeline.default_detector_name() else ""
        entries.append(ModelEntry(
            "detector", name, f"{name}{described}", "shipped", str(card.get("architecture", "?")),
            description=f"Apate's shipped weights, {path.relative_to(ROOT).as_posix()}", path=path,
            sha256=file_sha256(path), size_bytes=path.stat().st_size, card=card,
            load_name=name if name in registered else str(path)))
    for name in list_detectors():
        if name in SHIPPED_MODELS:
            continue
        entries.append(ModelEntry(
            "detector", name, f"{name} (architecture, untrained)", "architecture", name,
            description=get_spec(name).description, card=untrained_card(name), load_name=name))
    models = settings.models_path
    for path in pipeline.available_checkpoints(settings):  # generators' files are listed with them
        try:
            card = checkpoints.read_card(path)
        except CheckpointError as exc:
            card = {"problem": str(exc)}
        rel = path.relative_to(models).as_posix()
        origin = "imported" if card and card.get("imported_from") else "checkpoint"
        entries.append(ModelEntry(
            "detector", rel, (card or {}).get("name") or rel, origin,
            str((card or {}).get("architecture") or "inferred when loaded"),
            description=f"under APATE_MODELS_DIR ({models})", path=path, sha256=file_sha256(path),
            size_bytes=path.stat().st_size, card=card or {}, editable=card is not None and "problem" not in card,
            load_name=str(path)))
    return entries


def _is_under(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def _generator_entries(settings: Settings) -> list[ModelEntry]:
    from ..protect.generators import get_family
    from ..protect.job import RANDOM_LABEL, available_generators, weights_id

    entries: list[ModelEntry] = []
    for choice in available_generators(settings):
        family = get_family(choice.family)
        card: dict[str, Any] = {}
        if choice.path is not None:
            card = _read_json(Path(choice.path).with_suffix(".json")) or {}
        if choice.source == "shipped":
            name, origin = f"{choice.family}/shipped", "shipped"
        elif choice.source == "checkpoint":
            rel = Path(choice.path).relative_to(settings.models_path).as_posix()
            name, origin = rel, "imported" if card.get("imported_from") else "checkpoint"
        else:
            name, origin = f"{choice.family}/random", "random"
            card = {"name": name, "source": RANDOM_LABEL, "configuration": dict(choice.config),
                    "notes": f"No {family.display_name} weights were found, so Protect offers seeded random "
                             "weights to show the workflow; they say nothing about a real model."}
        path = Path(choice.path) if choice.path is not None else None
        title = f"{family.display_name}: {card['name']}" if origin == "imported" and card.get("name") else choice.label
        entries.append(ModelEntry(
            "generator", name, title, origin, choice.family, description=family.description, path=path,
            sha256=weights_id(choice), size_bytes=path.stat().st_size if path else None, card=card,
            editable=origin in ("imported", "checkpoint"), config=dict(choice.config)))
    return entries


def _attack_entries(settings: Settings) -> list[ModelEntry]:
    from ..protect.attacks import get_attack_class, list_attacks

    entries = []
    for name in list_attacks():
        cls = get_attack_class(name)
        defaults = {f.name: _jsonable(f.default) for f in dataclasses.fields(cls.config_cls)
                    if f.default is not dataclasses.MISSING}
        doc = (cls.__doc__ or "").strip().splitlines()[0] if (cls.__doc__ or "").strip() else ""
        card = {"name": name, "description": doc, "defaults": defaults,
                "source": f"apate_core/protect/attacks ({cls.__module__}.{cls.__name__})",
                "licence": "same as Apate (MIT)"}
        entries.append(ModelEntry("attack", name, name.upper(), "built-in", name, description=doc, card=card,
                                  loadable=False))
    return entries


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value if isinstance(value, (str, int, float, bool, type(None), dict)) else repr(value)


def _identity_entries(settings: Settings) -> list[ModelEntry]:
    from ..protect.identity.descriptor import DEFAULT_WEIGHTS

    card = _read_json(DEFAULT_WEIGHTS.with_suffix(".json")) or {}
    present = DEFAULT_WEIGHTS.is_file()
    return [ModelEntry(
        "identity", "face-descriptor", "Face descriptor (face-api.js FaceRecognitionNet)", "shipped",
        "FaceDescriptorNet", description=str(card.get("task", "")), path=DEFAULT_WEIGHTS if present else None,
        sha256=file_sha256(DEFAULT_WEIGHTS) if present else None,
        size_bytes=DEFAULT_WEIGHTS.stat().st_size if present else None, card=card, loadable=present)]
