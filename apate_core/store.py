"""Result store over diskcache: content-addressed keys, values stored without pickle.

Values are bytes only: results are JSON plus arrays in an ``.npz`` read with ``allow_pickle=False``,
and media (browser copies) are raw bytes. The disk class refuses to unpickle anything, so a planted
pickle in the store cannot run code. A store that is corrupted or deleted is rebuilt, never fatal.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import diskcache
import numpy as np

log = logging.getLogger(__name__)

META_KEY = "__meta__"
PINNED = "pinned"  # the diskcache tag of entries the size limit never evicts
_STORE_ERRORS = (sqlite3.Error, OSError, ValueError, diskcache.Timeout)


class BytesOnlyDisk(diskcache.Disk):
    """A diskcache Disk that stores and returns only str/bytes/numbers, never pickles."""

    def store(self, value, read, key=diskcache.core.UNKNOWN):
        if not read and not isinstance(value, (bytes, str, int, float)):
            raise TypeError(f"the result store keeps bytes only, not {type(value).__name__}")
        return super().store(value, read, key=key)

    def fetch(self, mode, filename, value, read):
        if mode == diskcache.core.MODE_PICKLE:
            raise ValueError("refusing to unpickle a value found in the result store")
        return super().fetch(mode, filename, value, read)

    def put(self, key):
        if not isinstance(key, (bytes, str, int, float)):
            raise TypeError("result store keys are strings")
        return super().put(key)

    def get(self, key, raw):
        if not raw:
            raise ValueError("refusing to unpickle a key found in the result store")
        return super().get(key, raw)


@dataclass
class StoredResult:
    meta: dict
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class StoreUsage:
    directory: str
    entries: int
    bytes_used: int
    bytes_limit: int


def make_key(content_sha256: str, task: str, model_id: str = "", weights_sha256: str = "", params: Any = None) -> str:
    """Key for one computation: same content, task, model, weights and parameters → same key."""
    canonical = json.dumps(
        {"content": content_sha256, "task": task, "model": model_id, "weights": weights_sha256, "params": params},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return f"{task}:{hashlib.sha256(canonical.encode()).hexdigest()}"


def encode_result(meta: dict, arrays: Optional[dict[str, np.ndarray]] = None) -> bytes:
    buffer = io.BytesIO()
    payload = {META_KEY: np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)}
    payload.update(arrays or {})
    np.savez(buffer, **payload)
    return buffer.getvalue()


def decode_result(blob: bytes) -> StoredResult:
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        meta = json.loads(npz[META_KEY].tobytes().decode())
        arrays = {name: npz[name] for name in npz.files if name != META_KEY}
    return StoredResult(meta, arrays)


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


class ResultStore:
    """Content-addressed cache of results and media. Use as a context manager or call close()."""

    def __init__(self, directory: str | Path, size_limit_bytes: int):
        self.directory = Path(directory).expanduser()
        self.size_limit = int(size_limit_bytes)
        self.hits = self.misses = 0  # result lookups in this process (the metrics' hit rate)
        self._cache = self._open()

    def _open(self) -> diskcache.Cache:
        _private_dir(self.directory)
        try:
            cache = self._connect()
            cache.check(fix=False)  # reads the schema: fails fast on a corrupted database
            return cache
        except _STORE_ERRORS as exc:
            log.warning("result store at %s is unreadable (%s); rebuilding it", self.directory, exc)
            self._wipe()
            return self._connect()

    def _connect(self) -> diskcache.Cache:
        return diskcache.Cache(
            str(self.directory),
            disk=BytesOnlyDisk,
            size_limit=self.size_limit,
            eviction_policy="least-recently-used",
            cull_limit=0,  # evict in _evict instead: diskcache culls ten at a time, the new entry too
            disk_min_file_size=0,
        )

    def _wipe(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
        _private_dir(self.directory)

    def _rebuild(self, exc: BaseException) -> None:
        log.warning("result store at %s failed (%s); rebuilding it", self.directory, exc)
        try:
            self._cache.close()
        except _STORE_ERRORS:
            pass
        self._wipe()
        self._cache = self._connect()

    def _guarded(self, action: Callable[[], Any], default: Any = None) -> Any:
        """Run a store operation; on corruption or deletion rebuild the store and report a miss."""
        if not self.directory.is_dir():
            self._rebuild(FileNotFoundError(str(self.directory)))
        try:
            return action()
        except _STORE_ERRORS as exc:
            self._rebuild(exc)
            return default

    def _set(self, key: str, blob: bytes) -> None:
        def write() -> None:
            self._cache.set(key, blob)
            self._evict(keep=key)

        self._guarded(write)

    def _evict(self, keep: str) -> None:
        """Drop least recently used entries, one at a time, until the volume is under the limit."""
        oldest = f"SELECT key FROM Cache WHERE key != ? AND tag IS NOT '{PINNED}' ORDER BY access_time LIMIT 1"
        while self._cache.volume() > self.size_limit:
            row = self._cache._sql(oldest, (keep,)).fetchone()
            if row is None:
                break
            self._cache.delete(row[0])

    # results: JSON metadata + arrays
    def put(self, key: str, meta: dict, arrays: Optional[dict[str, np.ndarray]] = None) -> None:
        self._set(key, encode_result(meta, arrays))

    def get(self, key: str) -> Optional[StoredResult]:
        found = self._read(key)
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        return found

    def peek(self, key: str) -> Optional[StoredResult]:
        """Like get, but not counted as a lookup (listings are not cache hits)."""
        return self._read(key)

    def _read(self, key: str) -> Optional[StoredResult]:
        blob = self._guarded(lambda: self._cache.get(key))
        if blob is None:
            return None
        try:
            return decode_result(blob)
        except (ValueError, OSError, KeyError, json.JSONDecodeError) as exc:
            log.warning("dropping unreadable store entry %s: %s", key, exc)
            self.delete(key)
            return None

    # media and other raw bytes
    def put_bytes(self, key: str, data: bytes) -> None:
        self._set(key, bytes(data))

    def get_bytes(self, key: str) -> Optional[bytes]:
        value = self._guarded(lambda: self._cache.get(key))
        return value if isinstance(value, bytes) else None

    def keys(self, prefix: str = "") -> list[str]:
        """Every key that starts with ``prefix`` (no values read)."""
        query = "SELECT key FROM Cache WHERE raw = 1 AND substr(key, 1, ?) = ?"
        return self._guarded(lambda: [r[0] for r in self._cache._sql(query, (len(prefix), prefix)).fetchall()], [])

    def set_pinned(self, keys: list[str], pinned: bool) -> None:
        """Pinned entries are never evicted by the size limit (they still count towards it)."""
        tag = PINNED if pinned else None
        self._guarded(lambda: [self._cache._sql("UPDATE Cache SET tag = ? WHERE key = ? AND raw = 1", (tag, k))
                               for k in keys])

    def pinned_bytes(self) -> int:
        row = self._guarded(lambda: self._cache._sql("SELECT COALESCE(SUM(size), 0) FROM Cache WHERE tag = ?",
                                                      (PINNED,)).fetchone(), (0,))
        return int(row[0])

    def __contains__(self, key: str) -> bool:
        return bool(self._guarded(lambda: key in self._cache, False))

    def delete(self, key: str) -> None:
        self._guarded(lambda: self._cache.delete(key))

    def clear(self) -> None:
        self._guarded(self._cache.clear)

    def usage(self) -> StoreUsage:
        entries = self._guarded(lambda: len(self._cache), 0)
        volume = self._guarded(self._cache.volume, 0)
        return StoreUsage(str(self.directory), int(entries), int(volume), self.size_limit)

    def close(self) -> None:
        try:
            self._cache.close()
        except _STORE_ERRORS:
            pass

    def __enter__(self) -> "ResultStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_store(settings) -> ResultStore:
    return ResultStore(settings.cache_path / "store", settings.cache_size_mb * 1024 * 1024)
