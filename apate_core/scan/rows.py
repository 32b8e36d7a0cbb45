"""One row per scanned file: what it is, its verdict or why it could not be read; JSONL and CSV files of rows.

``scan.jsonl`` is also the scan's journal: a row is appended (and flushed) the moment its file is finished, so a
crash loses only the files in flight. Reading it back drops a torn last line rather than failing.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from ..detect.verdict import SEVERITY

OK, UNREADABLE, FAILED = "ok", "unreadable", "failed"
STATUSES = (OK, UNREADABLE, FAILED)


@dataclass(frozen=True)
class ScanTask:
    """A file to analyse, with the size and modification time it had when the scan listed it."""

    path: str
    size_bytes: int
    mtime_ns: int


@dataclass
class ScanRow:
    """One file's line in scan.jsonl and scan.csv (the CSV columns are these fields, in this order).

    status: ``ok`` (analysed, or re-opened from the result store), ``unreadable`` (refused by intake: not media,
    corrupt, over a limit, missing; ``error`` says why) or ``failed`` (an internal error; retried on resume).
    duplicate_of: the path of the first file (by path order) with the same content, else empty.
    scan_key: model + parameters the row was made with; a re-run with others analyses the file again.
    """

    path: str
    name: str
    status: str
    kind: str = ""
    format: str = ""
    size_bytes: int = 0
    mtime_ns: int = 0
    sha256: str = ""
    label: str = ""
    score: Optional[float] = None
    max_score: Optional[float] = None
    frames: int = 0
    decided_by: str = ""
    model: str = ""
    weights_sha256: str = ""
    from_store: bool = False
    duplicate_of: str = ""
    seconds: float = 0.0
    result_dir: str = ""
    error: str = ""
    scan_key: str = ""
    result_key: str = ""  # the Detect result's key in the result store (History opens it)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ScanRow":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


COLUMNS = tuple(f.name for f in dataclasses.fields(ScanRow))


def suspicion_order(row: ScanRow) -> tuple:
    """Sort key, most suspicious first: analysed files by label severity (declared, fake, segments, uncertain,
    real) then score, highest first; unreadable and failed files after them; the path breaks ties."""
    if row.status != OK:
        return (1, 0, 0.0, row.path)
    rank = SEVERITY.index(row.label) if row.label in SEVERITY else -1
    return (0, -rank, -(row.score if row.score is not None else -1.0), row.path)


def sort_rows(rows: Iterable[ScanRow]) -> list[ScanRow]:
    return sorted(rows, key=suspicion_order)


# --------------------------------------------------------------------------------------------
# JSONL: the journal, appended line by line
# --------------------------------------------------------------------------------------------


def read_jsonl(path: Path) -> tuple[list[ScanRow], int]:
    """Rows of a scan.jsonl and how many lines were dropped (torn by a crash, or not rows at all)."""
    if not path.is_file():
        return [], 0
    rows, dropped = [], 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                row = ScanRow.from_dict(data)
            except (ValueError, TypeError):
                dropped += 1
                continue
            if row.status not in STATUSES or not row.path:
                dropped += 1
                continue
            rows.append(row)
    return rows, dropped


def _row_line(row: ScanRow) -> str:
    return json.dumps(row.to_dict(), ensure_ascii=False, separators=(",", ":")) + "\n"


class Journal:
    """Appends rows to scan.jsonl, one flushed line each, so a crash loses only the rows not yet written."""

    def __init__(self, path: Path):
        self.path = path
        self._fh = open(path, "a", encoding="utf-8")

    def append(self, row: ScanRow) -> None:
        self._fh.write(_row_line(row))
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _replace_atomically(path: Path, write) -> None:
    """Write to a temporary sibling and rename it over ``path``: a crash leaves the old file or the new one."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        write(fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_jsonl(path: Path, rows: Sequence[ScanRow]) -> None:
    _replace_atomically(path, lambda fh: fh.writelines(_row_line(row) for row in rows))


def _cell(value):
    """A CSV cell a spreadsheet shows as text: a file name starting with = + - @ would otherwise run as a formula."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def write_csv(path: Path, rows: Sequence[ScanRow]) -> None:
    def write(fh) -> None:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(v) for k, v in row.to_dict().items()})

    _replace_atomically(path, write)


def write_json(path: Path, data: Any) -> None:
    _replace_atomically(path, lambda fh: fh.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"))


def write_text(path: Path, text: str) -> None:
    _replace_atomically(path, lambda fh: fh.write(text))
