"""The Ray backend of ``apate scan`` (``--ray auto|ADDRESS``): a scan's files spread over actors on a Ray cluster.

Registered as ``ray`` by :mod:`.executors`, which imports this module only when that backend is asked for; this
module imports ray only inside its functions, so ``import apate_core.scan`` never imports ray.

* Connecting (:func:`connect`, :func:`ray_session`): ``auto`` joins the cluster named by ``RAY_ADDRESS`` or a Ray
  instance already running on this machine, and otherwise starts one inside this process (no dashboard, no usage
  statistics); an address -- ``HOST:PORT`` of a head node, or ``ray://HOST:10001`` through Ray Client -- joins
  that cluster. Ray's connection belongs to the process: an executor that finds one already made uses it, so a
  caller (``apate scan --ray``) connects first and the executor built by name runs on that cluster.
* Workers: N actors, each reserving ``threads`` CPUs and building one :class:`FileAnalyser` (one detector, one
  result-store handle) before its first file. Files go to actors as they free up, at most two in flight per
  actor, and rows come back in order of completion.
* A lost worker (its process killed, its node gone) costs only the files in flight on it: each is sent again, on
  its own, to a fresh actor, so that a file which kills its worker is named; a file whose worker is lost
  ``MAX_RETRIES + 1`` times becomes a ``failed`` row (retried on resume, like any failed row).
* Paths: a worker opens each file by its path on its own node, so on a real cluster the files must be on storage
  every node mounts at the same path. The result store is opened at the scan's ``cache_dir`` (APATE_CACHE_DIR of
  the command) on each worker's node: one store per node unless that folder is shared.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import math
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

from ..errors import ApateError
from ..progress import CancelToken, check_cancelled
from .executors import MAX_WORKERS
from .rows import FAILED, ScanRow, ScanTask
from .worker import FileAnalyser, ScanJob

RAY_VERSION = "2.60.0"  # the release pinned in requirements.txt; the cluster must run the same one
THREADS_PER_WORKER = 2  # torch threads (and CPUs reserved) per actor when the cluster has room
IN_FLIGHT_PER_WORKER = 2  # files given to one actor at once: keeps it busy, bounds what its loss costs
MAX_RETRIES = 2  # times a file is sent again after its worker was lost; then a failed row
WAIT_S = 1.0  # longest blocking wait for a row, so that cancellation is seen between files


def _ray():
    try:
        import ray
    except ImportError:
        raise ApateError(f"--ray needs Ray on this machine and on the cluster: pip install ray=={RAY_VERSION} "
                         f"(\"ray[client]=={RAY_VERSION}\" for ray:// addresses)") from None
    return ray


# --------------------------------------------------------------------------------------------
# The connection
# --------------------------------------------------------------------------------------------


def connect(address: Optional[str] = "auto") -> bool:
    """Connect this process to Ray; True when this call made the connection (False: one was already made).

    ``auto`` (or None): the cluster named by RAY_ADDRESS when set, else a Ray instance running on this machine,
    else a new local instance started here. Anything else is a cluster address passed to ``ray.init``.
    """
    ray = _ray()
    if ray.is_initialized():
        return False
    address = (address or "auto").strip()
    options: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address == "auto" and os.environ.get("RAY_ADDRESS"):
        address = os.environ["RAY_ADDRESS"]  # named explicitly: never fall back to a private local instance
    try:
        if address != "auto":
            ray.init(address=address, **options)
            return True
        try:
            ray.init(address="auto", **options)  # a running local instance (`ray start --head` on this machine)
        except ConnectionError:
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            ray.init(include_dashboard=False, **options)
    except ApateError:
        raise
    except Exception as exc:  # noqa: BLE001 - ray raises ConnectionError, RuntimeError, ValueError, ...
        raise ApateError(f"Cannot connect to Ray at {address} ({_first_line(exc)}); a cluster with token "
                         "authentication also needs RAY_AUTH_MODE=token and its token in RAY_AUTH_TOKEN or "
                         "~/.ray/auth_token") from None
    return True


@contextlib.contextmanager
def ray_session(address: Optional[str] = "auto") -> Iterator[None]:
    """Connected to Ray for the block (see :func:`connect`); disconnects at the end if it connected."""
    made = connect(address)
    try:
        yield
    finally:
        if made:
            _ray().shutdown()


def cluster_cpus() -> float:
    return float(_ray().cluster_resources().get("CPU", 0.0))


def default_workers(threads: int = THREADS_PER_WORKER) -> int:
    """Actors for a connected cluster: its CPUs // threads per actor, at least 1, at most MAX_WORKERS."""
    return max(1, min(MAX_WORKERS, int(cluster_cpus() // max(1, threads))))


def actor_cpus(workers: int, threads: int, cpus: float) -> tuple[float, int]:
    """(CPUs each actor reserves, torch threads in it): ``threads``, or a fair share when more actors are asked
    for than the cluster has room for at that size (a fraction below one CPU), so that every actor is placed."""
    share = cpus / workers if cpus > 0 else float(threads)
    if share >= 1:
        reserved = float(min(threads, int(share)))
    else:
        reserved = max(0.01, math.floor(share * 100) / 100)
    return reserved, max(1, int(reserved))


# --------------------------------------------------------------------------------------------
# The actor: one per worker, on whichever node Ray places it
# --------------------------------------------------------------------------------------------


class ScanActor:
    """One detector and one store handle, made once; then one file per call. Made a Ray actor by RayExecutor."""

    def __init__(self, job: ScanJob, threads: int):
        import torch

        torch.set_num_threads(max(1, threads))
        self.analyser = FileAnalyser(job)

    def prepare(self) -> dict:
        """Load the model and open the store before the first file; an error here stops the scan."""
        import torch

        self.analyser.detector  # noqa: B018 - a model that cannot load on this node is the scan's problem
        try:
            self.analyser.store  # noqa: B018
        except OSError as exc:
            raise ApateError(f"The result store cannot be opened at {self.analyser.job.settings.cache_path} on "
                             f"{socket.gethostname()} ({exc.strerror or exc}); set APATE_CACHE_DIR to a folder "
                             "every worker node can write") from None
        return {"pid": os.getpid(), "host": socket.gethostname(), "threads": torch.get_num_threads()}

    def analyse(self, task: ScanTask) -> ScanRow:
        return self.analyser.analyse(task)

    def close(self) -> None:
        self.analyser.close()


@dataclass(eq=False)
class _Worker:
    actor: Any  # the actor handle
    ready: Any  # ObjectRef of prepare(), None once it answered
    in_flight: dict = field(default_factory=dict)  # ObjectRef -> ScanTask
    info: dict = field(default_factory=dict)  # what prepare() answered: pid, host, threads
    alone: bool = False  # running a retried file, and nothing else until it is back


class RayExecutor:
    """Ray actors on the connected cluster (or ``address``); see the module's documentation."""

    name = "ray"
    actor_class = ScanActor

    def __init__(self, workers: int = 1, address: Optional[str] = None, threads: int = THREADS_PER_WORKER):
        self.workers = workers
        self.address = address
        self.threads = threads
        self.retries: dict[str, int] = {}  # path -> times sent again after its worker was lost
        self.lost_workers = 0
        self._workers: list[_Worker] = []
        self._refs: dict[Any, tuple[_Worker, Optional[ScanTask]]] = {}  # ObjectRef -> (worker, task or None)

    def in_flight(self) -> list[tuple[Any, Optional[int], list[str]]]:
        """(actor handle, pid or None before it is ready, paths given and not returned) per live worker."""
        return [(w.actor, w.info.get("pid"), [t.path for t in list(w.in_flight.values())]) for w in list(self._workers)]

    def run(self, job: ScanJob, tasks: Sequence[ScanTask], cancel: Optional[CancelToken] = None) -> Iterator[ScanRow]:
        if not tasks:  # nothing to analyse: no cluster to join or start
            check_cancelled(cancel)
            return
        ray = _ray()
        made = connect(self.address)
        job = portable_job(job)
        pending = collections.deque(tasks)
        suspects: set[str] = set()  # retried files: one at a time on a worker, so that a crash names its file
        lost_in_a_row = 0  # workers lost since a file last finished
        reserved, threads = actor_cpus(self.workers, self.threads, cluster_cpus())
        actor = ray.remote(num_cpus=reserved, max_restarts=0, max_task_retries=0)(self.actor_class)
        job_ref = ray.put(job)
        finished = False
        try:
            self._workers = [self._start(actor, job_ref, threads) for _ in range(self.workers)]
            while True:
                self._dispatch(pending, suspects, cancel)
                if not self._refs:
                    break
                done, _ = ray.wait(list(self._refs), num_returns=1, timeout=WAIT_S)
                if not done:
                    continue
                ref = done[0]
                worker, task = self._refs.pop(ref)
                try:
                    value = ray.get(ref)
                except ray.exceptions.RayActorError as exc:
                    rows = list(self._lost(worker, ref, task, exc, job, pending, suspects))
                    lost_in_a_row += 1
                    if lost_in_a_row >= max(3, 3 * self.workers):
                        raise ApateError(f"Ray workers were lost {lost_in_a_row} times in a row without finishing a "
                                         f"file ({_first_line(exc)}); see `ray status` and the worker logs") from None
                    self._workers = [w for w in self._workers if w is not worker]
                    if pending:  # a fresh actor for the files sent again (none is needed for failed rows only)
                        self._workers.append(self._start(actor, job_ref, threads))
                    yield from rows
                    continue
                except ray.exceptions.RayTaskError as exc:
                    raise _cause(exc) from None  # a whole-scan error (the model cannot load), as in-process
                if task is None:  # prepare() answered
                    worker.ready, worker.info = None, value
                    continue
                del worker.in_flight[ref]
                worker.alone = worker.alone and bool(worker.in_flight)
                suspects.discard(task.path)
                lost_in_a_row = 0
                self._dispatch(pending, suspects, cancel)  # its next file first, then the row to the caller
                yield value
            check_cancelled(cancel)
            finished = True
        finally:
            self._stop(graceful=finished)
            if made:
                ray.shutdown()

    # ---- workers
    def _start(self, actor, job_ref, threads: int) -> _Worker:
        handle = actor.remote(job_ref, threads)
        worker = _Worker(actor=handle, ready=handle.prepare.remote())
        self._refs[worker.ready] = (worker, None)
        return worker

    def _dispatch(self, pending: collections.deque, suspects: set[str], cancel: Optional[CancelToken]) -> None:
        while pending and not (cancel is not None and cancel.cancelled):
            task = pending[0]
            alone = task.path in suspects
            free = [w for w in self._workers if not w.alone
                    and (not w.in_flight if alone else len(w.in_flight) < IN_FLIGHT_PER_WORKER)]
            if not free:
                return
            worker = min(free, key=lambda w: len(w.in_flight))
            pending.popleft()
            ref = worker.actor.analyse.remote(task)
            worker.in_flight[ref] = task
            worker.alone = alone
            self._refs[ref] = (worker, task)

    def _lost(self, worker: _Worker, ref, task: Optional[ScanTask], exc: Exception, job: ScanJob,
              pending: collections.deque, suspects: set[str]) -> Iterator[ScanRow]:
        """A worker is gone: rows it finished but that were not read yet still count; every other file in flight
        on it is sent again (first in line, alone on a fresh worker) or, after MAX_RETRIES, is a failed row."""
        ray = _ray()
        self.lost_workers += 1
        with contextlib.suppress(Exception):
            ray.kill(worker.actor, no_restart=True)
        held = dict(worker.in_flight)
        for other in [worker.ready, *held]:
            self._refs.pop(other, None)
        again = []
        for other, other_task in held.items():
            if other != ref and ray.wait([other], timeout=0)[0]:
                with contextlib.suppress(ray.exceptions.RayActorError):
                    yield ray.get(other)  # finished before the worker went: not lost
                    suspects.discard(other_task.path)
                    continue
            tries = self.retries.get(other_task.path, 0)
            if tries >= MAX_RETRIES:
                suspects.discard(other_task.path)
                yield _lost_row(other_task, job, tries + 1, exc)
                continue
            self.retries[other_task.path] = tries + 1
            suspects.add(other_task.path)
            again.append(other_task)
        pending.extendleft(reversed(again))
        worker.in_flight.clear()

    def _stop(self, graceful: bool) -> None:
        """End the actors: let them close their store handles after a clean run; otherwise kill them now (a long
        video in flight is not waited for; the store's SQLite survives a killed writer)."""
        ray = _ray()
        workers, self._workers = self._workers, []
        self._refs.clear()
        if graceful and workers:
            with contextlib.suppress(Exception):
                ray.wait([w.actor.close.remote() for w in workers], num_returns=len(workers), timeout=30)
        for worker in workers:
            with contextlib.suppress(Exception):
                ray.kill(worker.actor, no_restart=True)


def portable_job(job: ScanJob) -> ScanJob:
    """The job with the folders and the checkpoint path made absolute: a Ray worker does not run in this process's
    working directory (``~`` is left for each node to expand)."""
    settings = job.settings
    changes = {}
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if f.name.endswith("_dir") and isinstance(value, str) and value and not value.startswith("~") \
                and not Path(value).is_absolute():
            changes[f.name] = str(Path(value).resolve())
    model = job.model
    if not Path(model).is_absolute() and Path(model).exists():
        model = str(Path(model).resolve())
    return dataclasses.replace(job, settings=dataclasses.replace(settings, **changes) if changes else settings,
                               model=model)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def _cause(exc: Exception) -> BaseException:
    """The exception the actor raised, without Ray's wrapper (whose message is a remote traceback)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        return cause
    return ApateError(f"A Ray worker failed: {_first_line(exc)}")


def _lost_row(task: ScanTask, job: ScanJob, times: int, exc: Exception) -> ScanRow:
    return ScanRow(path=task.path, name=Path(task.path).name, status=FAILED, size_bytes=task.size_bytes,
                   mtime_ns=task.mtime_ns, scan_key=job.scan_key,
                   error=f"the Ray worker analysing this file was lost {times} times (its process died or its node "
                         f"left the cluster: a crash in a decoder or the model, or out of memory); it is retried on "
                         f"resume")
