"""The history of analyses: one small index entry per Detect, Protect or Inspect result in the result store.

Results are stored under content-addressed keys that say nothing a person can browse by. Beside each result the
engine writes an entry under ``history:<result key>``: when, what (input name, a 96 px thumbnail), which kind,
the verdict or protection summary, the model and its weights hash, the parameters, plus the analyst's notes,
tags and pin. Entries are JSON + an npz thumbnail like every stored value (no pickle). The dashboard and the CLI
write them alike, so the History page lists both when they share ``APATE_CACHE_DIR``.

A pinned entry and its result are tagged in the store so that its size limit never evicts them.
"""

from __future__ import annotations

import dataclasses
import io
import json
import tempfile
import time
import zipfile
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Optional

import cv2
import numpy as np

from .store import ResultStore

PREFIX = "history:"
THUMB_SIDE = 96
KINDS = ("detect", "protect", "inspect", "scan")


@dataclass
class HistoryEntry:
    key: str  # the result's key in the store
    kind: str  # "detect", "protect", "inspect" or "scan" (a folder scan: its rows open their Detect results)
    name: str  # the input's file name
    created: float  # seconds since the epoch
    summary: str  # verdict with score, or what the protection achieved
    label: str = ""  # detect: real / uncertain / fake / segments / declared; protect: the target
    model: str = ""
    weights_sha256: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    notes: str = ""
    tags: list[str] = field(default_factory=list)
    pinned: bool = False
    thumbnail: Optional[np.ndarray] = field(default=None, repr=False)  # uint8 RGB, longest side THUMB_SIDE

    def to_meta(self) -> dict[str, Any]:
        meta = dataclasses.asdict(self)
        meta.pop("thumbnail")
        return meta

    def matches(self, text: str) -> bool:
        """Free-text filter over name, summary, model, notes and tags (case-insensitive)."""
        text = text.strip().lower()
        haystack = " ".join([self.name, self.summary, self.model, self.notes, " ".join(self.tags)]).lower()
        return not text or all(word in haystack for word in text.split())


def thumbnail(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    scale = THUMB_SIDE / max(h, w)
    if scale >= 1:
        return np.ascontiguousarray(rgb)
    return cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def record(store: Optional[ResultStore], entry: HistoryEntry, image: Optional[np.ndarray] = None) -> None:
    """Write (or refresh) the entry of a result just stored; keeps notes, tags and pin of an existing entry."""
    if store is None:
        return
    old = get(store, entry.key)
    if old is not None:
        entry.notes, entry.tags, entry.pinned = old.notes, old.tags, old.pinned
        if image is None:
            entry.thumbnail = old.thumbnail
    if image is not None:
        entry.thumbnail = thumbnail(image)
    _write(store, entry)


def _write(store: ResultStore, entry: HistoryEntry) -> None:
    arrays = {"thumbnail": entry.thumbnail} if entry.thumbnail is not None else None
    store.put(PREFIX + entry.key, entry.to_meta(), arrays)
    store.set_pinned([PREFIX + entry.key, entry.key], entry.pinned)


def _entry(stored) -> Optional[HistoryEntry]:
    names = {f.name for f in dataclasses.fields(HistoryEntry)}
    try:
        entry = HistoryEntry(**{k: v for k, v in stored.meta.items() if k in names})
    except TypeError:
        return None
    entry.thumbnail = stored.arrays.get("thumbnail")
    return entry


def get(store: ResultStore, key: str) -> Optional[HistoryEntry]:
    stored = store.get(PREFIX + key)
    return None if stored is None else _entry(stored)


def entries(store: ResultStore, kind: str = "", text: str = "", label: str = "") -> list[HistoryEntry]:
    """Every entry whose result is still in the store, newest first, filtered by kind, label and free text."""
    found = []
    for history_key in store.keys(PREFIX):
        stored = store.peek(history_key)
        entry = None if stored is None else _entry(stored)
        if entry is None or entry.key not in store:
            continue
        if (not kind or entry.kind == kind) and (not label or entry.label == label) and entry.matches(text):
            found.append(entry)
    return sorted(found, key=lambda e: e.created, reverse=True)


def annotate(store: ResultStore, key: str, *, notes: Optional[str] = None, tags: Optional[list[str]] = None,
             pinned: Optional[bool] = None) -> HistoryEntry:
    entry = get(store, key)
    if entry is None:
        raise KeyError(f"no history entry for {key}")
    if notes is not None:
        entry.notes = notes.strip()
    if tags is not None:
        entry.tags = sorted({t.strip() for t in tags if t.strip()})
    if pinned is not None:
        entry.pinned = bool(pinned)
    _write(store, entry)
    return entry


def delete(store: ResultStore, key: str) -> None:
    """The entry and its result (and a Detect result's extra frame views, which are re-made on demand)."""
    store.set_pinned([PREFIX + key, key], False)
    store.delete(PREFIX + key)
    store.delete(key)


def detect_entry(data: dict[str, Any], key: str) -> HistoryEntry:
    """The entry of a Detect result (result.json as a dict)."""
    from .detect.verdict import display_label

    score = data.get("score")
    shown = "no score" if score is None else f"P(fake) {score:.3f}"
    model = data.get("model", {})
    return HistoryEntry(key, "detect", data["input"]["name"], time.time(),
                        f"{display_label(data['label'])} · {shown}", data["label"], model.get("name", ""),
                        model.get("weights_sha256", ""), dict(data.get("params", {})))


def protect_entry(key: str, name: str, target: str, model: str, weights_sha256: str, params: dict[str, Any],
                  summary: str) -> HistoryEntry:
    """The entry of one protected image (identity cloak or generator disruption)."""
    return HistoryEntry(key, "protect", name, time.time(), summary, target, model, weights_sha256, params)


def open_detect(store: ResultStore, key: str):
    """The stored Detect result of an entry, as the Detect page shows it (no recomputation); None when gone."""
    from .detect.pipeline import DetectResult
    from .detect.verdict import apply_verdict

    stored = store.get(key)
    if stored is None:
        return None
    return DetectResult(apply_verdict(stored.meta), stored.arrays, from_store=True, key=key)


def _folder_name(entry: HistoryEntry, used: set[str]) -> str:
    stem = "".join(c if c.isalnum() or c in "._-" else "_" for c in Path(entry.name).stem)[:60] or "input"
    name, n = f"{entry.kind}-{stem}", 2
    while name in used:
        name, n = f"{entry.kind}-{stem}-{n}", n + 1
    used.add(name)
    return name


def export_zip(store: ResultStore, keys: list[str]) -> bytes:
    """One folder per entry: a Detect result's result.json, heatmaps and report.html, or a protected image
    with its metrics; each with entry.json (notes, tags, model, parameters)."""
    from PIL import Image

    from .detect.report import write_result_dir

    buffer, used = io.BytesIO(), set()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive, tempfile.TemporaryDirectory() as tmp:
        for key in keys:
            entry, stored = get(store, key), store.get(key)
            if entry is None or stored is None:
                continue
            folder = Path(tmp) / _folder_name(entry, used)
            folder.mkdir()
            (folder / "entry.json").write_text(json.dumps(entry.to_meta(), indent=2), encoding="utf-8")
            if entry.kind == "detect":
                write_result_dir(open_detect(store, key), folder)
            elif entry.kind in ("inspect", "scan"):
                (folder / f"{entry.kind}.json").write_text(json.dumps(stored.meta, indent=2), encoding="utf-8")
            else:
                (folder / "result.json").write_text(json.dumps(stored.meta, indent=2, default=str), encoding="utf-8")
                if "protected" in stored.arrays:
                    Image.fromarray(stored.arrays["protected"]).save(folder / "protected.png")
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    archive.write(path, path.relative_to(tmp).as_posix())
    return buffer.getvalue()
