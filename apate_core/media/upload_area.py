"""The private upload area: ``<cache>/uploads/<sha256[:32]>/<safe name>``, one folder per content, shared by the
dashboard and the HTTP API, and pruned so that a long-running server does not fill its disk.

A folder's modification time is its last use: saving the same content again touches it. ``prune`` removes the
folders unused for longer than ``APATE_UPLOAD_KEEP_DAYS`` (0 keeps everything); an analysis that is re-opened
later still shows its stored verdict, scores and top frames, and only asking for a frame that was not kept needs
the file again (``detect.pipeline.frame_view`` says so).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import BinaryIO, Optional

CHUNK = 1 << 20
INCOMING = ".incoming"  # partial copies, renamed into place when complete
DAY_S = 86400.0


def uploads_root(settings) -> Path:
    """Where the dashboard and the API keep uploads: ``<APATE_CACHE_DIR>/uploads``."""
    return settings.cache_path / "uploads"


def safe_name(name: Optional[str], fallback: str = "upload") -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name or "").name).strip("._")
    return cleaned[:80] or fallback


def _private(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def save_stream(source: BinaryIO, root: Path, name: Optional[str], keep_days: float = 0.0) -> Path:
    """Copy ``source`` into ``root/<sha256[:32]>/<safe name>`` 1 MB at a time (an existing copy is reused and its
    folder touched); then prune folders unused for more than ``keep_days`` (0: never)."""
    incoming = _private(root / INCOMING)
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=incoming)
    try:
        with os.fdopen(fd, "wb") as out:
            for block in iter(lambda: source.read(CHUNK), b""):
                digest.update(block)
                out.write(block)
        folder = _private(root / digest.hexdigest()[:32])
        path = folder / safe_name(name)
        if path.exists():
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
        os.utime(folder)  # in use now: the last thing pruning may remove
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    prune(root, keep_days, spare=folder)
    return path


def save_bytes(data: bytes, root: Path, name: Optional[str], keep_days: float = 0.0) -> Path:
    return save_stream(io.BytesIO(data), root, name, keep_days)


def prune(root: Path, keep_days: float, *, now: Optional[float] = None, spare: Optional[Path] = None) -> list[Path]:
    """Remove the upload folders (and stale partial copies) unused for more than ``keep_days``; the removed ones."""
    if keep_days <= 0 or not root.is_dir():
        return []
    cutoff = (time.time() if now is None else now) - keep_days * DAY_S
    removed = []
    partial = root / INCOMING
    candidates = [e for e in root.iterdir() if e != partial] + (list(partial.iterdir()) if partial.is_dir() else [])
    for item in candidates:
        try:
            if item == spare or item.lstat().st_mtime >= cutoff:
                continue
            if item.is_dir() and not item.is_symlink():
                shutil.rmtree(item)
            else:
                item.unlink()
            removed.append(item)
        except FileNotFoundError:  # another process pruned it first
            continue
    return removed
