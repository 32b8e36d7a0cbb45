"""``apate scan``: thousands of files on one machine, each analysed like ``apate detect``, resumable.

* :mod:`.sources` -- what SOURCE means (files, folders, globs, @LIST) and how it expands;
* :mod:`.rows` -- one :class:`ScanRow` per file, the scan.jsonl journal and scan.csv;
* :mod:`.worker` -- one file through intake, the detector and the result store;
* :mod:`.executors` -- who runs the files: the :class:`Executor` protocol and its registry (``local``);
* :mod:`.engine` -- :func:`plan_scan` and :func:`run_scan`, resume, the summary;
* :mod:`.overview` -- index.html.

Outputs under OUT: ``scan.jsonl`` (the journal, a row per line as each file finishes), ``scan.csv``,
``summary.json`` and ``index.html`` (rewritten at the end of every run, most suspicious first).
"""

from .engine import DEFAULT_OUT, FILE_NAMES, ScanParams, ScanPlan, ScanResult, ScanSummary, plan_scan, run_scan
from .executors import Executor, LocalExecutor, get_executor, list_executors, register_executor
from .rows import COLUMNS, FAILED, OK, UNREADABLE, ScanRow, ScanTask, read_jsonl
from .sources import expand_sources

__all__ = [
    "COLUMNS", "DEFAULT_OUT", "Executor", "FAILED", "FILE_NAMES", "LocalExecutor", "OK", "UNREADABLE", "ScanParams",
    "ScanPlan", "ScanResult", "ScanRow", "ScanSummary", "ScanTask", "expand_sources", "get_executor",
    "list_executors", "plan_scan", "read_jsonl", "register_executor", "run_scan",
]
