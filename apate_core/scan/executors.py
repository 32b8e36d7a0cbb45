"""Who runs a scan's files: a small :class:`Executor` protocol and a registry of named backends.

The embedded default is ``local``: in this process for one worker (simple to debug, cancellable mid-file),
otherwise a pool of ``spawn``-ed processes (forking a process that has loaded torch is unsafe), each loading the
detector once and opening its own handle on the process-safe result store. Another backend (a cluster, say)
registers itself with :func:`register_executor` and receives the same picklable :class:`ScanJob` and tasks.
``ray`` (:mod:`.ray_executor`, ``apate scan --ray``) is registered here but imported only when asked for by
name: nothing else imports ray.
"""

from __future__ import annotations

import collections
import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Callable, Iterator, Optional, Protocol, Sequence

from ..errors import ApateError, InputRefused
from ..progress import CancelToken, check_cancelled
from .rows import FAILED, ScanRow, ScanTask
from .worker import FileAnalyser, ScanJob, analyse_in_worker, init_worker

MAX_WORKERS = 64
# A pool that breaks this many times in a row without finishing a file is not a bad file: it is the machine.
MAX_CONSECUTIVE_CRASHES = 3


class Executor(Protocol):
    """Runs a scan's tasks and yields one row per task, in completion order.

    On cancellation an executor starts no new file, yields the rows of the files already in flight, then raises
    Cancelled. A per-file problem is a row (see FileAnalyser.analyse), never an exception; an exception means the
    whole scan cannot go on (a model that cannot be loaded, say).
    """

    name: str
    workers: int

    def run(self, job: ScanJob, tasks: Sequence[ScanTask], cancel: Optional[CancelToken] = None) -> Iterator[ScanRow]:
        ...


ExecutorFactory = Callable[[int], Executor]
_EXECUTORS: dict[str, ExecutorFactory] = {}


def register_executor(name: str, factory: ExecutorFactory) -> None:
    """Make a backend available as ``name``; ``factory(workers)`` builds it."""
    _EXECUTORS[name] = factory


def list_executors() -> list[str]:
    return sorted(_EXECUTORS)


def get_executor(name: str, workers: int) -> Executor:
    if name not in _EXECUTORS:
        raise InputRefused(f"Unknown scan executor {name!r}", accepted=", ".join(list_executors()))
    if not 1 <= workers <= MAX_WORKERS:
        raise InputRefused(f"{workers} workers", accepted=f"1 to {MAX_WORKERS} worker processes")
    return _EXECUTORS[name](workers)


class LocalExecutor:
    """This machine: in-process for one worker, a spawn process pool for more."""

    name = "local"

    # What a pool worker runs per file: a module-level function, which a spawned process can import by name.
    work: Callable[[ScanTask], ScanRow] = staticmethod(analyse_in_worker)

    def __init__(self, workers: int = 1):
        self.workers = workers

    def run(self, job: ScanJob, tasks: Sequence[ScanTask], cancel: Optional[CancelToken] = None) -> Iterator[ScanRow]:
        if self.workers == 1:
            return self._in_process(job, tasks, cancel)
        return self._in_pool(job, tasks, cancel)

    # ---- one worker: this process
    def _in_process(self, job: ScanJob, tasks: Sequence[ScanTask], cancel: Optional[CancelToken]) -> Iterator[ScanRow]:
        analyser = FileAnalyser(job)
        try:
            for task in tasks:
                check_cancelled(cancel)
                yield analyser.analyse(task, cancel=cancel)
        finally:
            analyser.close()

    # ---- several workers: spawned processes
    def _pool(self, job: ScanJob) -> ProcessPoolExecutor:
        threads = max(1, (os.cpu_count() or 1) // self.workers)
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=init_worker, initargs=(job, threads))

    def _in_pool(self, job: ScanJob, tasks: Sequence[ScanTask], cancel: Optional[CancelToken]) -> Iterator[ScanRow]:
        pending = collections.deque(tasks)
        in_flight: dict[Future, ScanTask] = {}
        # Two files per worker keep every worker busy and bound what a crash or a cancel leaves in the air.
        limit = 2 * self.workers
        # Files in flight when a worker died: run again one at a time, so that a crash names its file.
        suspects: set[str] = set()
        crashes = 0  # pool deaths since a file last finished normally
        pool = self._pool(job)
        finished = False
        try:
            while in_flight or (pending and not _cancelled(cancel)):
                while pending and len(in_flight) < (1 if suspects else limit) and not _cancelled(cancel):
                    task = pending.popleft()
                    in_flight[pool.submit(self.work, task)] = task
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                broken = False
                for future in done:
                    if isinstance(future.exception(), BrokenProcessPool):
                        broken = True  # its task stays in in_flight, with the others the dead pool lost
                        continue
                    task = in_flight.pop(future)
                    row = future.result()  # a whole-scan error (the model cannot load) propagates from here
                    suspects.discard(task.path)
                    crashes = 0
                    yield row
                if not broken:
                    continue
                crashes += 1
                if crashes >= MAX_CONSECUTIVE_CRASHES:
                    raise ApateError(f"the scan's worker processes died {crashes} times in a row without finishing "
                                     "a file; rerun with --workers 1 to see why")
                lost = list(in_flight.values())
                in_flight.clear()
                _stop(pool)
                if len(lost) == 1:  # alone in flight: this file killed its worker
                    suspects.discard(lost[0].path)
                    yield _crashed_row(lost[0], job)
                else:
                    suspects.update(task.path for task in lost)
                    pending.extendleft(reversed(lost))
                pool = self._pool(job)
            check_cancelled(cancel)
            finished = True
        finally:
            if finished:
                pool.shutdown(wait=True)
            else:  # interrupted, cancelled or failed: do not wait for long videos in flight
                _stop(pool)


def _cancelled(cancel: Optional[CancelToken]) -> bool:
    return cancel is not None and cancel.cancelled


def _stop(pool: ProcessPoolExecutor) -> None:
    """Shut a pool down now: drop queued files and end the workers (they hold nothing that needs a clean exit:
    a row is written by the parent, and the store's SQLite survives a killed writer). Without this, the
    interpreter's exit would wait for every file in flight, a long video included."""
    terminate = getattr(pool, "terminate_workers", None)  # Python 3.14+
    if terminate is not None:
        terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        return
    processes = list((getattr(pool, "_processes", None) or {}).values())  # shutdown() forgets them: take them first
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()


def _crashed_row(task: ScanTask, job: ScanJob) -> ScanRow:
    return ScanRow(path=task.path, name=Path(task.path).name, status=FAILED, size_bytes=task.size_bytes,
                   mtime_ns=task.mtime_ns, scan_key=job.scan_key,
                   error="a worker process died while analysing this file (a crash in a decoder or the model); "
                         "it is retried on resume")


register_executor("local", LocalExecutor)


def _ray_executor(workers: int) -> Executor:
    """``apate scan --ray``: imported only when asked for by name, so that nothing else imports ray."""
    from .ray_executor import RayExecutor

    return RayExecutor(workers)


register_executor("ray", _ray_executor)
