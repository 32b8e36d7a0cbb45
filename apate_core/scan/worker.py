"""Analysing one file of a scan, as ``apate detect`` would: intake, the detector, the result store.

:class:`ScanJob` is everything a worker needs, and is picklable so that any executor (a process pool today,
another backend later) can ship it. :class:`FileAnalyser` loads the detector and opens the store once, then
turns each :class:`ScanTask` into a :class:`ScanRow`; a file that cannot be read becomes a row with its reason,
never an exception, so one bad file cannot stop a scan.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..errors import ApateError, Cancelled, InputRefused
from ..progress import CancelToken, ProgressCallback, no_progress
from ..settings import Settings
from .rows import FAILED, OK, UNREADABLE, ScanRow, ScanTask


@dataclass(frozen=True)
class ScanJob:
    """What every file of one scan is analysed with. ``result_root``: where per-file result folders (result.json
    and heatmap PNGs) go when heatmaps are asked for; None writes none (the rows hold the verdicts)."""

    settings: Settings
    model: str
    params: object  # DetectParams; typed loosely so that this module imports without the pipeline
    scan_key: str
    result_root: Optional[str] = None


def result_folder_name(row_path: str, sha256: str) -> str:
    """A folder name per file that two files with one name (in different folders) cannot share."""
    return f"{Path(row_path).stem[:60]}-{sha256[:12]}"


class FileAnalyser:
    """Analyses files one at a time with one detector and one store handle, both made on first use."""

    def __init__(self, job: ScanJob):
        self.job = job
        self._detector = None
        self._store = None

    @property
    def detector(self):
        if self._detector is None:
            from ..detect.pipeline import load_detector

            self._detector = load_detector(self.job.model, self.job.settings)
        return self._detector

    @property
    def store(self):
        if self._store is None:
            from ..store import open_store

            self._store = open_store(self.job.settings)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def analyse(self, task: ScanTask, progress: ProgressCallback = no_progress,
                cancel: Optional[CancelToken] = None) -> ScanRow:
        """The row for one file. Refused content gives an ``unreadable`` row, an internal error a ``failed`` one;
        Cancelled and a detector that cannot be loaded (ApateError outside the file) propagate."""
        from ..detect.pipeline import analyse_media
        from ..media.intake import intake_file

        detector = self.detector  # a model that cannot load is the scan's problem, not this file's
        path = Path(task.path)
        base = ScanRow(path=task.path, name=path.name, status=OK, size_bytes=task.size_bytes, mtime_ns=task.mtime_ns,
                       scan_key=self.job.scan_key)
        started = time.perf_counter()
        try:
            media = intake_file(path, self.job.settings)
            base.kind, base.format, base.sha256 = media.kind, media.format, media.sha256
            result = analyse_media(media, detector, self.job.params, store=self.store, progress=progress,
                                   cancel=cancel, settings=self.job.settings, source=task.path)
            row = self._row(base, result)
        except Cancelled:
            raise
        except InputRefused as exc:
            row = _failed(base, UNREADABLE, str(exc))
        except OSError as exc:  # vanished, unreadable permissions, a dead network share
            row = _failed(base, UNREADABLE, f"The file cannot be read ({exc.strerror or exc})")
        except ApateError as exc:
            row = _failed(base, FAILED, str(exc))
        except Exception as exc:  # noqa: BLE001 - one file's bug must not stop thousands of others
            row = _failed(base, FAILED, f"internal error ({type(exc).__name__}: {exc})")
        row.seconds = round(time.perf_counter() - started, 4)
        return row

    def _row(self, base: ScanRow, result) -> ScanRow:
        data = result.data
        base.label = data["label"]
        base.score = data["score"]
        base.max_score = data["aggregates"]["max"]
        base.frames = len(data["frames"])
        base.decided_by = data["verdict"]["decided_by"]
        base.model = data["model"]["name"]
        base.weights_sha256 = data["model"]["weights_sha256"]
        base.from_store = result.from_store
        base.result_key = result.key
        if self.job.result_root:
            from ..detect.report import write_result_dir

            folder = Path(self.job.result_root) / result_folder_name(base.path, base.sha256)
            write_result_dir(result, folder, html_report=False)  # report.html inlines plotly: MBs per file
            base.result_dir = str(folder)
        return base


def _failed(base: ScanRow, status: str, reason: str) -> ScanRow:
    base.status, base.error = status, reason
    return base


# --------------------------------------------------------------------------------------------
# Worker processes: one analyser per process, made by the pool's initializer
# --------------------------------------------------------------------------------------------

_ANALYSER: Optional[FileAnalyser] = None


def init_worker(job: ScanJob, threads: int) -> None:
    """Pool initializer: share the cores between workers (torch would give each of them all of them), and leave
    Ctrl-C to the parent, which stops the pool (a worker interrupted while idle would print a traceback)."""
    global _ANALYSER
    import signal

    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(max(1, threads))
    _ANALYSER = FileAnalyser(job)


def analyse_in_worker(task: ScanTask) -> ScanRow:
    assert _ANALYSER is not None, "init_worker did not run in this process"
    return _ANALYSER.analyse(task)
