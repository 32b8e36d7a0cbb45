"""Checkpoints an analyst brings: which architecture their keys and shapes fit, import, card editing."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import math
import os
import re
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import torch

from ..errors import CheckpointError, InputRefused
from ..settings import Settings
from .catalog import (ACCEPTED, DETECTORS_DIR, EDITABLE_FIELDS, IMPORT_SUFFIXES, NAME_PATTERN, NOT_IMPORTABLE, SHOW_KEYS,
                      ModelEntry, StrPath, _is_under, _read_json, file_sha256, list_models)


# ============================================================================================= inspection
@dataclass(frozen=True)
class ShapeMismatch:
    key: str
    checkpoint: tuple[int, ...]
    model: tuple[int, ...]


@dataclass(frozen=True)
class KeyReport:
    """How a checkpoint's keys and shapes compare with one architecture (lists hold the first SHOW_KEYS)."""

    kind: str  # "detector" | "generator"
    architecture: str
    config: Mapping[str, Any] = field(default_factory=dict, compare=False)  # inferred options / configuration
    expected_keys: int = 0
    matched_keys: int = 0  # same name and same shape
    missing: tuple[str, ...] = ()
    unexpected: tuple[str, ...] = ()
    misshaped: tuple[ShapeMismatch, ...] = ()
    n_missing: int = 0
    n_unexpected: int = 0
    n_misshaped: int = 0
    note: str = ""

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.architecture}"

    @property
    def exact(self) -> bool:
        return self.expected_keys > 0 and not (self.n_missing or self.n_unexpected or self.n_misshaped or self.note)

    @property
    def score(self) -> float:
        return self.matched_keys / max(1, self.expected_keys + self.n_unexpected)

    def summary(self) -> str:
        if self.exact:
            return f"all {self.expected_keys} keys and shapes match"
        parts = []
        for label, count, items in (("missing", self.n_missing, self.missing),
                                    ("unexpected", self.n_unexpected, self.unexpected),
                                    ("mis-shaped", self.n_misshaped, [m.key for m in self.misshaped])):
            if count:
                more = f" (+{count - 5} more)" if count > 5 else ""
                parts.append(f"{count} {label} key(s): {', '.join(items[:5])}{more}")
        if self.note:
            parts.insert(0, self.note)
        return "; ".join(parts) or "no keys to compare"

    def rows(self) -> list[dict[str, str]]:
        """One row per listed key: key, problem, checkpoint shape, model shape (for a table)."""
        rows = [{"key": k, "problem": "missing from the checkpoint", "checkpoint": "—", "model": "present"}
                for k in self.missing]
        rows += [{"key": k, "problem": "not in the architecture", "checkpoint": "present", "model": "—"}
                 for k in self.unexpected]
        rows += [{"key": m.key, "problem": "shape differs", "checkpoint": str(list(m.checkpoint)),
                  "model": str(list(m.model))} for m in self.misshaped]
        return rows


@dataclass(frozen=True)
class CheckpointInspection:
    filename: str
    sha256: str
    size_bytes: int
    format: str  # "safetensors" | "torch (weights_only)"
    tensors: int
    parameters: int  # elements over every tensor
    candidates: tuple[KeyReport, ...]  # every importable architecture, best fit first

    @property
    def match(self) -> Optional[KeyReport]:
        """The architecture every key and shape fits, if one does."""
        return next((c for c in self.candidates if c.exact), None)

    def report(self, architecture: str) -> KeyReport:
        """The comparison with one architecture ("detector:resnet18", "generator:stargan" or a bare name)."""
        for c in self.candidates:
            if architecture in (c.id, c.architecture):
                return c
        raise InputRefused(f"Unknown architecture {architecture!r}",
                           accepted=", ".join(c.id for c in self.candidates))


def importable_architectures() -> list[str]:
    """Architectures an import can target, as "kind:name"."""
    from ..detect.registry import SHIPPED_MODELS, list_detectors
    from ..protect.generators import list_generators

    detectors = [f"detector:{n}" for n in list_detectors() if n not in SHIPPED_MODELS and n not in NOT_IMPORTABLE]
    return detectors + [f"generator:{n}" for n in list_generators()]


def _scrub(text: str) -> str:
    """A loader's message without PyTorch's suggestion to reload the file the unsafe way."""
    sentences = re.split(r"(?<=[.!?])\s+|\n+", text or "")
    unsafe = re.compile(r"weights_only\W*(=|set to|to|from)?\W*False|re-?running|trusted source|arbitrary code|"
                        r"two options|can still be loaded|add_safe_globals|safe_globals", re.IGNORECASE)
    kept = [s.strip() for s in sentences
            if s.strip() and not unsafe.search(s) and not ("weights_only" in s and "False" in s)]
    out = " ".join(kept)
    return re.sub(r"weights_only\s*=\s*False", "", out).strip()


def _refusal(exc: CheckpointError, filename: str) -> CheckpointError:
    problem = _scrub(exc.problem) or f"{filename} is not a checkpoint Apate can read safely"
    return CheckpointError(problem, accepted=ACCEPTED, limit=_scrub(exc.limit))


def _safe_name(filename: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(filename).name).strip("._")[:80] or "checkpoint"
    suffix = Path(stem).suffix.lower()
    return str(Path(stem).with_suffix(suffix)) if suffix else stem


def _check_suffix(filename: str) -> str:
    suffix = Path(filename).suffix.lower()
    if suffix not in IMPORT_SUFFIXES:
        raise CheckpointError(f"{Path(filename).name} is not a checkpoint file ({suffix or 'no extension'})",
                              accepted=ACCEPTED)
    return suffix


class _Staged:
    """A checkpoint given as bytes or a path, available as a file with a trustworthy suffix."""

    def __init__(self, source: Union[bytes, StrPath], filename: Optional[str]):
        self.filename = Path(filename or (str(source) if not isinstance(source, (bytes, bytearray)) else "")).name
        if not self.filename:
            raise CheckpointError("A checkpoint given as bytes needs its file name", accepted=ACCEPTED)
        _check_suffix(self.filename)
        self._tmp: Optional[tempfile.TemporaryDirectory] = None
        if isinstance(source, (bytes, bytearray)):
            self._tmp = tempfile.TemporaryDirectory(prefix="apate-import-")
            self.path = Path(self._tmp.name) / _safe_name(self.filename)
            self.path.write_bytes(bytes(source))
        elif Path(source).suffix.lower() != Path(source).suffix:
            self._tmp = tempfile.TemporaryDirectory(prefix="apate-import-")
            self.path = Path(self._tmp.name) / _safe_name(self.filename)
            self.path.write_bytes(Path(source).read_bytes())
        else:
            self.path = Path(source)
        if not self.path.is_file():
            raise CheckpointError(f"Checkpoint {self.filename} not found", accepted=ACCEPTED)

    def __enter__(self) -> "_Staged":
        return self

    def __exit__(self, *exc: object) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()


def _read_state(path: Path, filename: str) -> dict[str, torch.Tensor]:
    """Plain tensors from an untrusted file, through the engine's safe readers; refusals scrubbed."""
    from ..detect.checkpoints import read_state_dict
    from ..protect.checkpoints import read_checkpoint

    try:
        return read_checkpoint(path)  # safetensors or weights_only unpickling; unwraps generator-style wrappers
    except CheckpointError as exc:
        if "not a state_dict of tensors" not in exc.problem:
            raise _refusal(exc, filename) from None
        first = exc
    try:  # the detector reader knows 'model_state_dict' and 'net' wrappers too (the file already passed
        return read_state_dict(path)[0]  # weights_only unpickling above)
    except CheckpointError:
        raise _refusal(first, filename) from None


_EXPECTED: dict[tuple, dict[str, tuple[int, ...]]] = {}  # (kind, architecture, options) -> key shapes
_EXPECTED_LOCK = threading.Lock()


def _expected_detector(name: str, overrides: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    from ..detect.registry import get_spec, make_config

    cache_key = ("detector", name, tuple(sorted((k, repr(v)) for k, v in overrides.items())))
    with _EXPECTED_LOCK:
        if cache_key not in _EXPECTED:
            spec = get_spec(name)
            with torch.device("meta"):  # shapes only: nothing allocated, nothing initialised for real
                module = spec.builder(make_config(spec, **dict(overrides)))
            _EXPECTED[cache_key] = {k: tuple(v.shape) for k, v in module.state_dict().items()}
        return _EXPECTED[cache_key]


def _compare(kind: str, architecture: str, config: Mapping[str, Any], state: Mapping[str, torch.Tensor],
             expected: Mapping[str, tuple[int, ...]], note: str = "") -> KeyReport:
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    misshaped = [ShapeMismatch(k, tuple(state[k].shape), tuple(v)) for k, v in expected.items()
                 if k in state and tuple(state[k].shape) != tuple(v)]
    matched = sum(1 for k, v in expected.items() if k in state and tuple(state[k].shape) == tuple(v))
    return KeyReport(kind, architecture, dict(config), len(expected), matched, tuple(missing[:SHOW_KEYS]),
                     tuple(unexpected[:SHOW_KEYS]), tuple(misshaped[:SHOW_KEYS]), len(missing), len(unexpected),
                     len(misshaped), note)


def _detector_reports(state: Mapping[str, torch.Tensor]) -> list[KeyReport]:
    from ..detect.checkpoints import infer_architecture

    inferred = infer_architecture(state)
    reports = []
    for arch_id in importable_architectures():
        kind, name = arch_id.split(":", 1)
        if kind != "detector":
            continue
        overrides = dict(inferred[1]) if inferred and inferred[0] == name else {}
        try:
            expected = _expected_detector(name, overrides)
        except Exception as exc:  # noqa: BLE001 - options inferred from arbitrary shapes
            reports.append(KeyReport("detector", name, overrides, note=f"cannot be configured from these shapes "
                                                                         f"({exc})"))
            continue
        reports.append(_compare("detector", name, overrides, state, expected))
    return reports


def _generator_reports(state: Mapping[str, torch.Tensor]) -> list[KeyReport]:
    from ..protect.checkpoints import FIXUPS, config_from_state_dict, drop_aliases
    from ..protect.generators import get_family, list_generators

    reports = []
    for name in list_generators():
        fam = get_family(name)
        sd = drop_aliases(dict(state), fam.alias_prefixes)
        note, config = "", {}
        try:
            config = dataclasses.asdict(config_from_state_dict(name, sd))
        except CheckpointError as exc:
            note = f"its {fam.display_name} configuration cannot be read off the keys ({_scrub(exc.problem)})"
        except Exception as exc:  # noqa: BLE001 - arbitrary tensors can trip a family's reader in any way
            note = f"its {fam.display_name} configuration cannot be read off the keys ({type(exc).__name__})"
        try:
            with torch.device("meta"):
                model = fam.build(**config)
        except Exception as exc:  # noqa: BLE001 - an inferred configuration the family cannot build
            note = note or f"no {fam.display_name} generator has this configuration ({exc})"
            with torch.device("meta"):
                model = fam.build()
        for fix in fam.fixups:
            sd = FIXUPS[fix](sd, model)
        expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        reports.append(_compare("generator", name, config, sd, expected, note))
    return reports


def inspect_state(state: Mapping[str, torch.Tensor]) -> list[KeyReport]:
    """Every importable architecture compared with a state_dict, the best fit first."""
    reports = _detector_reports(state) + _generator_reports(state)
    return sorted(reports, key=lambda r: (not r.exact, -r.score, r.id))


def inspect_checkpoint(source: Union[bytes, StrPath], filename: Optional[str] = None) -> CheckpointInspection:
    """Read an untrusted checkpoint safely and compare it with every architecture Apate can import it as.

    ``source``: the file's bytes (give ``filename``) or a path. Raises CheckpointError (scrubbed of any advice
    to load the file unsafely) when the file is not plain tensors.
    """
    with _Staged(source, filename) as staged:
        state = _read_state(staged.path, staged.filename)
        sha = file_sha256(staged.path) if staged._tmp is None else hashlib.sha256(staged.path.read_bytes()).hexdigest()
        size = staged.path.stat().st_size
        fmt = "safetensors" if staged.path.suffix.lower() == ".safetensors" else "torch (weights_only)"
    return CheckpointInspection(staged.filename, sha, size, fmt, len(state),
                                sum(int(t.numel()) for t in state.values()), tuple(inspect_state(state)))


# ============================================================================================= import
@dataclass(frozen=True)
class ImportedModel:
    kind: str
    name: str  # the catalog name (relative path under APATE_MODELS_DIR)
    architecture: str
    path: Path
    card_path: Path
    weights_sha256: str

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.name}"


def _clean_card(card: Optional[Mapping[str, Any]]) -> dict[str, Any]:
    """The analyst's card fields, typed: metrics a JSON object (text kept under 'reported')."""
    given = dict(card or {})
    unknown = sorted(set(given) - set(EDITABLE_FIELDS))
    if unknown:
        raise InputRefused(f"Card fields {unknown} cannot be set here", accepted=", ".join(EDITABLE_FIELDS))
    out: dict[str, Any] = {}
    for key, value in given.items():
        if key == "metrics":
            out[key] = _metrics(value)
        elif value is None or isinstance(value, (str, int, float, bool)):
            out[key] = value.strip() if isinstance(value, str) else value
        else:
            out[key] = json.loads(json.dumps(value))  # JSON-able or TypeError
    return out


def _metrics(value: Any) -> dict[str, Any]:
    if value is None or value == "":
        return {}
    if isinstance(value, Mapping):
        return json.loads(json.dumps(dict(value)))
    text = str(value).strip()
    try:
        parsed = json.loads(text)
    except ValueError:
        return {"reported": text}
    return parsed if isinstance(parsed, dict) else {"reported": text}


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not NAME_PATTERN.match(name) or name.lower().endswith(IMPORT_SUFFIXES + (".json",)):
        raise InputRefused(f"{name!r} cannot name a model file",
                           accepted="1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit, "
                                    "without a file extension")
    return name


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _write_card(path: Path, card: Mapping[str, Any]) -> None:
    _atomic_write(path, (json.dumps(card, indent=2, sort_keys=True, default=str) + "\n").encode("utf-8"))


def import_checkpoint(data: Union[bytes, StrPath], filename: str, architecture: Optional[str] = None,
                      card: Optional[Mapping[str, Any]] = None, settings: Optional[Settings] = None, *,
                      overwrite: bool = False) -> ImportedModel:
    """Validate a checkpoint and save it under APATE_MODELS_DIR as safetensors with its model card.

    architecture: "detector:resnet18", "generator:stargan", a bare name, or None for the one that fits exactly.
    card: the analyst's fields (EDITABLE_FIELDS); name defaults to the file's stem.
    The weights are rebuilt strictly into the architecture before anything is written.
    """
    from ..settings import load_settings

    settings = settings or load_settings()
    fields = _clean_card(card)
    with _Staged(data, filename) as staged:
        state = _read_state(staged.path, staged.filename)
        original_sha = hashlib.sha256(staged.path.read_bytes()).hexdigest()
        reports = inspect_state(state)
        if architecture:
            chosen = next((r for r in reports if architecture in (r.id, r.architecture)), None)
            if chosen is None:
                raise InputRefused(f"Unknown architecture {architecture!r}",
                                   accepted=", ".join(importable_architectures()))
            if not chosen.exact:
                raise CheckpointError(f"{staged.filename} does not fit {chosen.id}: {chosen.summary()}",
                                      accepted=f"a checkpoint with exactly the keys and shapes of {chosen.id}")
        else:
            chosen = next((r for r in reports if r.exact), None)
            if chosen is None:
                best = reports[0] if reports else None
                closest = f"; closest: {best.id} ({best.summary()})" if best else ""
                raise CheckpointError(f"{staged.filename} fits no architecture Apate knows{closest}",
                                      accepted="choose the architecture, or a checkpoint of one of "
                                               + ", ".join(importable_architectures()))
        name = _check_name(str(fields.get("name") or Path(staged.filename).stem))
        fields["name"] = name
        extra = {"imported_from": staged.filename, "imported_sha256": original_sha,
                 "imported_date": _dt.date.today().isoformat()}
        if chosen.kind == "detector":
            return _import_detector(staged.path, chosen, name, fields, extra, settings, overwrite)
        return _import_generator(state, chosen, name, fields, extra, settings, overwrite)


def _refuse_existing(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise InputRefused(f"A model named {path.stem!r} already exists ({path})",
                           accepted="another name, or overwrite explicitly")


def _import_detector(path: Path, report: KeyReport, name: str, fields: dict[str, Any], extra: dict[str, Any],
                     settings: Settings, overwrite: bool) -> ImportedModel:
    from ..detect.checkpoints import card_path_for, load_detector, read_card, save_detector

    dest = settings.models_path / DETECTORS_DIR / f"{name}.safetensors"
    _refuse_existing(dest, overwrite)
    try:
        detector = load_detector(path, architecture=report.architecture)  # strict; CNNDetection recognised
    except CheckpointError as exc:
        raise _refusal(exc, path.name) from None
    detector.card["name"] = name
    saved = save_detector(detector, dest, trained_on=fields.get("trained_on") or None,
                          metrics=fields.get("metrics") or None, name=name)
    stored = read_card(saved) or {}
    stored.update({k: v for k, v in fields.items() if k not in ("trained_on", "metrics")})
    stored.update(extra)
    _write_card(card_path_for(saved), stored)
    return ImportedModel("detector", saved.relative_to(settings.models_path).as_posix(), report.architecture,
                         saved, card_path_for(saved), stored["weights_sha256"])


def _import_generator(state: dict[str, torch.Tensor], report: KeyReport, name: str, fields: dict[str, Any],
                      extra: dict[str, Any], settings: Settings, overwrite: bool) -> ImportedModel:
    from safetensors.torch import save

    from ..protect.checkpoints import _is_discriminator, discover_checkpoints, load_generator

    family = report.architecture
    dest = settings.models_path / family / f"{name}.safetensors"
    if _is_discriminator(dest):
        raise InputRefused(f"{name!r} reads as a discriminator or optimiser file, which Protect skips",
                           accepted="a name not ending in D, D_A or D_B and without 'optim'")
    _refuse_existing(dest, overwrite)
    try:
        model = load_generator(family, state)  # strict, finite values, the family's fix-ups
    except CheckpointError as exc:
        raise _refusal(exc, name) from None
    payload = save({k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()})
    sha = hashlib.sha256(payload).hexdigest()
    config = dataclasses.asdict(model.config) if dataclasses.is_dataclass(model.config) else dict(report.config)
    card = {"trained_on": None, "metrics": {}, "licence": None, "source": None, "notes": None, **fields, **extra,
            "family": family, "architecture": family, "configuration": config, "weights_sha256": sha,
            "format": "apate", "date": _dt.date.today().isoformat(),
            "parameters": sum(p.numel() for p in model.parameters())}
    _atomic_write(dest, payload)
    _write_card(dest.with_suffix(".json"), card)
    if not any(c.path.resolve() == dest.resolve() for c in discover_checkpoints(settings.models_path)):
        dest.unlink(missing_ok=True)
        dest.with_suffix(".json").unlink(missing_ok=True)
        raise InputRefused(f"{name!r} would not be found by Protect", accepted="another name")
    return ImportedModel("generator", dest.relative_to(settings.models_path).as_posix(), family, dest,
                         dest.with_suffix(".json"), sha)


# ============================================================================================= card editing
def save_card(name: str, card: Mapping[str, Any], settings: Optional[Settings] = None) -> dict[str, Any]:
    """Update the editable fields of the card of a model under APATE_MODELS_DIR; returns the stored card.

    name: the catalog name ("detectors/mine.safetensors", "stargan/mine.safetensors"), a "kind:name" key or a
    detector's bare name. Architecture, configuration and weights hash are kept: the card still matches its file.
    """
    from ..settings import load_settings

    settings = settings or load_settings()
    entry = _editable_entry(name, settings)
    fields = _clean_card(card)
    if "name" in fields and not str(fields["name"] or "").strip():
        raise InputRefused("A model card needs a name")
    path = Path(entry.path).with_suffix(".json")
    stored = _read_json(path) or {}
    if entry.kind == "detector" and not stored:
        raise InputRefused(f"{entry.name} has no model card to edit",
                           accepted="a model imported on the Models page (its card is written with it)")
    if entry.kind == "generator" and not stored:
        stored = {"family": entry.architecture, "architecture": entry.architecture,
                  "weights_sha256": entry.sha256, "format": "checkpoint"}
    stored.update(fields)
    stored["edited"] = _dt.datetime.now().isoformat(timespec="seconds")
    _write_card(path, stored)
    return stored


def _editable_entry(name: str, settings: Settings) -> ModelEntry:
    entries = [e for e in list_models(settings, ("detector", "generator")) if e.path is not None]
    key = name if ":" in name else None
    hits = [e for e in entries if (e.key == key if key else e.name in (name, f"{DETECTORS_DIR}/{name}.safetensors"))]
    if len(hits) != 1:
        raise InputRefused(f"No imported model {name!r}",
                           accepted="the name of a model under APATE_MODELS_DIR, e.g. detectors/mine.safetensors")
    entry = hits[0]
    if not entry.editable or not _is_under(Path(entry.path), settings.models_path):
        raise InputRefused(f"The card of {entry.title} is part of Apate's release and is not edited here",
                           accepted="a model under APATE_MODELS_DIR")
    return entry


def human_bytes(n: Optional[float]) -> str:
    if n is None:
        return "—"
    if n < 1024:
        return f"{int(n)} B"
    exp = min(int(math.log(n, 1024)), 4)
    return f"{n / 1024 ** exp:.1f} {'BKMGT'[exp]}B"

