"""A scan: many files analysed like ``apate detect``, resumable, with a row per file and an overview.

    plan = plan_scan(ScanParams(sources=("photos/",), out_dir=Path("apate-scan"), workers=2), settings)
    result = run_scan(plan, settings, progress=..., cancel=token, on_row=...)
    result.summary.labels, result.rows, result.paths["html"]

Two steps so that a caller can say what is about to happen (how many files, how many done before) and size a
progress bar before any model loads. Resume: a file already in ``OUT/scan.jsonl`` with the same size,
modification time and scan key (model + parameters) is not analysed again; any other file still goes through
the result store, so a file whose row was lost in a crash re-opens from the store instead of being scored again.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

from .. import __version__
from ..detect.pipeline import RESULT_VERSION, DetectParams, default_detector_name
from ..detect.verdict import LABELS, most_severe
from ..errors import InputRefused
from ..progress import CancelToken, ProgressCallback, no_progress
from ..settings import Settings
from .executors import get_executor
from .rows import FAILED, OK, UNREADABLE, Journal, ScanRow, ScanTask, read_jsonl, sort_rows, write_csv, write_json, \
    write_jsonl, write_text
from .sources import expand_sources
from .worker import ScanJob

DEFAULT_OUT = Path("apate-scan")
FILE_NAMES = {"jsonl": "scan.jsonl", "csv": "scan.csv", "summary": "summary.json", "html": "index.html"}
LOCK_NAME = ".scan.lock"  # hidden: never scanned itself
RESULTS_FOLDER = "results"  # per-file result.json + heatmaps, only when heatmaps are asked for
MOST_SUSPICIOUS = 10
# Settings that decide whether a file is accepted: a change re-examines files refused before.
_INTAKE_SETTINGS = ("max_video_mb", "max_image_mb", "max_image_pixels", "max_video_seconds", "video_containers",
                    "image_formats", "animated_gif")

RowCallback = Callable[[ScanRow], None]


def no_rows(row: ScanRow) -> None:
    """Default row callback: ignore rows."""


@dataclass(frozen=True)
class ScanParams:
    """sources: files, folders, globs or @LIST (see sources.py). detect: as ``apate detect``, but without
    heatmaps by default (cam=None); with a cam method each file also gets OUT/results/<name>-<sha>/."""

    sources: tuple[str, ...]
    out_dir: Path = DEFAULT_OUT
    workers: int = 1
    model: Optional[str] = None  # registered name or checkpoint path; None: default_detector_name()
    detect: DetectParams = field(default_factory=lambda: DetectParams(cam=None))
    executor: str = "local"

    def __post_init__(self) -> None:
        object.__setattr__(self, "sources", tuple(str(s) for s in self.sources))
        object.__setattr__(self, "out_dir", Path(self.out_dir))


@dataclass
class ScanPlan:
    """What a run will do: every file, the rows kept from an earlier run and the tasks still to do."""

    params: ScanParams
    model: str
    scan_key: str
    todo: list[ScanTask]
    reused: list[ScanRow]  # finished in an earlier run, same file, same model and parameters
    missing: list[ScanRow]  # list-file entries that match nothing, as unreadable rows
    dropped_lines: int = 0  # torn or foreign lines of the old scan.jsonl

    @property
    def total(self) -> int:
        return len(self.todo) + len(self.reused) + len(self.missing)


@dataclass
class ScanSummary:
    files: int
    analysed: int
    unreadable: int
    failed: int
    labels: dict[str, int]
    label: Optional[str]  # the most severe label of the scan
    reused: int  # rows kept from an earlier run
    new: int  # files done in this run
    from_store: int  # of those, re-opened from the result store
    duplicates: int
    seconds: float
    files_per_s: Optional[float]
    most_suspicious: list[dict[str, Any]]
    unreadable_files: list[dict[str, str]]
    model: str
    workers: int
    executor: str
    out_dir: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class ScanResult:
    rows: list[ScanRow]  # most suspicious first
    summary: ScanSummary
    paths: dict[str, Path]


# --------------------------------------------------------------------------------------------
# Plan
# --------------------------------------------------------------------------------------------


def check_model(name: str, settings: Settings) -> None:
    """Refuse an unknown model before any worker starts (loading it here would cost seconds and memory)."""
    from ..detect.registry import get_spec, list_detectors

    if name in list_detectors() or Path(name).exists() or (settings.models_path / name).exists():
        return
    get_spec(name)  # raises InputRefused naming the registered detectors


def scan_key(model: str, params: DetectParams, settings: Settings) -> str:
    """What a row depends on besides the file: model (and its checkpoint file's identity), detect parameters,
    intake limits and the result format."""
    checkpoint = Path(model) if Path(model).exists() else settings.models_path / model
    stamp = None
    if checkpoint.is_file():
        info = checkpoint.stat()
        stamp = [str(checkpoint.resolve()), info.st_size, info.st_mtime_ns]
    payload = {"model": model, "checkpoint": stamp, "params": params.key_dict(), "version": __version__,
               "result_version": RESULT_VERSION, "intake": {k: getattr(settings, k) for k in _INTAKE_SETTINGS}}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _task(path: Path) -> ScanTask:
    try:
        info = path.stat()
    except OSError:
        return ScanTask(str(path), -1, 0)  # the analyser reports why
    return ScanTask(str(path), info.st_size, info.st_mtime_ns)


def _reusable(old: Optional[ScanRow], task: ScanTask, key: str) -> bool:
    return (old is not None and old.status != FAILED and old.scan_key == key and task.size_bytes >= 0
            and old.size_bytes == task.size_bytes and old.mtime_ns == task.mtime_ns)


def plan_scan(params: ScanParams, settings: Settings) -> ScanPlan:
    """Expand the sources and read what an earlier run into the same OUT left (refuses bad input up front)."""
    out = params.out_dir
    if out.exists() and not out.is_dir():
        raise InputRefused(f"--out {out} is a file", accepted="a folder (created when missing)")
    get_executor(params.executor, params.workers)  # refuse a bad backend or worker count before listing files
    expansion = expand_sources(params.sources, exclude=out)
    model = params.model or default_detector_name()
    check_model(model, settings)
    key = scan_key(model, params.detect, settings)
    old_rows, dropped = read_jsonl(out / FILE_NAMES["jsonl"])
    previous = {row.path: row for row in old_rows}  # a later line for one path wins
    todo, reused = [], []
    for path in expansion.files:
        task = _task(path)
        old = previous.get(task.path)
        if _reusable(old, task, key):
            reused.append(old)
        else:
            todo.append(task)
    missing = [ScanRow(path=entry, name=Path(entry).name, status=UNREADABLE, size_bytes=-1, scan_key=key,
                       error="No such file or folder (an entry of a list file)") for entry in expansion.missing]
    return ScanPlan(params, model, key, todo, reused, missing, dropped)


# --------------------------------------------------------------------------------------------
# Run
# --------------------------------------------------------------------------------------------


def run_scan(plan: ScanPlan, settings: Settings, *, progress: ProgressCallback = no_progress,
             cancel: Optional[CancelToken] = None, on_row: RowCallback = no_rows) -> ScanResult:
    """Analyse the plan's files, journal each row as it comes, then write scan.csv, summary.json and index.html.

    Raises Cancelled (the journal keeps every finished file; a re-run resumes), InputRefused when another scan is
    writing to the same OUT, and whatever stops the whole scan (a model that cannot load). Unreadable and failed
    files are rows, never exceptions.
    """
    params = plan.params
    out = params.out_dir
    out.mkdir(parents=True, exist_ok=True)
    with _only_writer(out):
        return _run_locked(plan, settings, progress, cancel, on_row)


@contextlib.contextmanager
def _only_writer(out: Path) -> Iterator[None]:
    """Refuse a second scan into the same OUT while one runs: two writers would interleave the journal."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    with open(out / LOCK_NAME, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputRefused(f"Another apate scan is writing to {out}",
                               accepted="one scan per output folder at a time (use another --out)") from None
        yield  # the lock goes with the file's closing, also when the process dies


def _run_locked(plan: ScanPlan, settings: Settings, progress: ProgressCallback, cancel: Optional[CancelToken],
                on_row: RowCallback) -> ScanResult:
    params = plan.params
    out = params.out_dir
    paths = {kind: out / name for kind, name in FILE_NAMES.items()}
    kept = plan.reused + plan.missing
    # Start the journal over from what is kept: drops a torn last line (which the next append would extend)
    # and rows of files no longer in the scan or analysed with other parameters.
    write_jsonl(paths["jsonl"], kept)
    results_dir = out / RESULTS_FOLDER if params.detect.cam is not None else None
    job = ScanJob(settings=settings, model=plan.model, params=params.detect, scan_key=plan.scan_key,
                  result_root=str(results_dir.resolve()) if results_dir else None)
    executor = get_executor(params.executor, params.workers)
    started = time.perf_counter()
    new_rows: list[ScanRow] = []
    progress(len(kept) / max(plan.total, 1), f"{plan.total} files, {len(plan.reused)} done in an earlier run")
    with Journal(paths["jsonl"]) as journal:
        for row in executor.run(job, plan.todo, cancel):
            journal.append(row)
            new_rows.append(row)
            on_row(row)
            done = len(kept) + len(new_rows)
            progress(done / max(plan.total, 1), f"{done}/{plan.total} files: {row.name}")
    seconds = time.perf_counter() - started
    rows = sort_rows(mark_duplicates(kept + new_rows))
    summary = summarise(rows, new_rows, plan, seconds)
    write_jsonl(paths["jsonl"], rows)
    write_csv(paths["csv"], rows)
    write_json(paths["summary"], summary.to_dict())
    from .overview import overview_html

    write_text(paths["html"], overview_html(rows, summary, out))
    _remember(rows, summary, plan, settings)
    if results_dir is not None:
        paths["results"] = results_dir
    return ScanResult(rows, summary, paths)


def _remember(rows: Sequence[ScanRow], summary: ScanSummary, plan: ScanPlan, settings: Settings) -> None:
    """The scan as one History entry (its rows, each opening its own Detect result), in the result store."""
    from .. import history
    from ..store import open_store

    out = plan.params.out_dir.resolve()
    key = "scan:" + hashlib.sha256(f"{out}|{plan.scan_key}".encode()).hexdigest()
    listed = [{"name": r.name, "path": r.path, "status": r.status, "label": r.label, "score": r.score,
               "error": r.error, "result_key": r.result_key} for r in rows]
    counts = ", ".join(f"{n} {label}" for label, n in summary.labels.items() if n)
    text = f"{summary.files} files: {counts or 'none analysed'}" + (f", {summary.unreadable} unreadable"
                                                                     if summary.unreadable else "")
    with open_store(settings) as store:
        store.put(key, {"summary": summary.to_dict(), "rows": listed})
        history.record(store, history.HistoryEntry(
            key, "scan", out.name, time.time(), text, summary.label or "", summary.model, "",
            {"sources": list(plan.params.sources), "out_dir": str(out), "workers": summary.workers,
             "executor": summary.executor}))


def mark_duplicates(rows: Sequence[ScanRow]) -> list[ScanRow]:
    """Files with one content: the first by path is the original, the others name it in ``duplicate_of``."""
    first: dict[str, str] = {}
    for row in sorted(rows, key=lambda r: r.path):
        row.duplicate_of = ""
        if not row.sha256:
            continue
        if row.sha256 in first:
            row.duplicate_of = first[row.sha256]
        else:
            first[row.sha256] = row.path
    return list(rows)


def summarise(rows: Sequence[ScanRow], new_rows: Sequence[ScanRow], plan: ScanPlan, seconds: float) -> ScanSummary:
    """Counts by status and label, this run's speed, and the most suspicious files (rows are sorted already)."""
    status = collections.Counter(row.status for row in rows)
    analysed = [row for row in rows if row.status == OK]
    labels = {label: sum(1 for row in analysed if row.label == label) for label in LABELS}
    params = plan.params
    return ScanSummary(
        files=len(rows), analysed=status[OK], unreadable=status[UNREADABLE], failed=status[FAILED],
        labels=labels, label=most_severe([row.label for row in analysed]),
        reused=len(plan.reused), new=len(new_rows), from_store=sum(1 for row in new_rows if row.from_store),
        duplicates=sum(1 for row in rows if row.duplicate_of), seconds=round(seconds, 3),
        files_per_s=round(len(new_rows) / seconds, 3) if new_rows and seconds > 0 else None,
        most_suspicious=[{"path": r.path, "name": r.name, "label": r.label, "score": r.score}
                         for r in analysed[:MOST_SUSPICIOUS]],
        unreadable_files=[{"path": r.path, "status": r.status, "error": r.error} for r in rows if r.status != OK],
        model=plan.model, workers=params.workers, executor=params.executor, out_dir=str(params.out_dir.resolve()),
    )
