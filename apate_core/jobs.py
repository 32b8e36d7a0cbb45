"""One process-wide queue for heavy jobs (Detect, Protect, batches), shared by every browser session.

A 2-core server that runs two analyses at once runs each at half speed and doubles both waits; a fair queue runs
``slots`` jobs per device at a time, first come first served, and tells everyone else where they stand. Each
session may have at most ``per_session`` jobs queued or running, so one analyst cannot fill the queue.

A job is ``work(progress, cancel) -> result``: the same engine calls the CLI makes. The queue gives it a
progress callback and a CancelToken; a queued job that is cancelled never starts, a running one stops at the
engine's next checkpoint. A job is looked up by id *and* session, so no session sees another's result.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import statistics
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, Iterator, Optional

from .errors import ApateError, Cancelled, InputRefused
from .progress import CancelToken, ProgressCallback

Work = Callable[[ProgressCallback, CancelToken], Any]
Listener = Callable[[str, "Job"], None]  # (event: "queued" | "started" | "finished", job); metrics and job logs
log = logging.getLogger(__name__)
RECENT = 20  # finished jobs per kind whose durations make the wait estimate


class QueueLimit(InputRefused):
    """A session already has as many jobs waiting or running as it may."""


class JobState(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


@dataclass
class Job:
    """A unit of heavy work and everything a page or API needs to show about it."""

    id: str
    kind: str  # "detect", "protect", "batch", ... (free text; estimates are kept per kind)
    session: str
    device: str
    work: Work = field(repr=False)
    token: CancelToken = field(default_factory=CancelToken, repr=False)
    state: JobState = JobState.QUEUED
    fraction: float = 0.0
    message: str = "waiting in the queue"
    result: Any = field(default=None, repr=False)
    error: Optional[BaseException] = field(default=None, repr=False)
    submitted: float = field(default_factory=time.monotonic)
    started: Optional[float] = None
    finished: Optional[float] = None
    _done: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def done(self) -> bool:
        return self.state.finished

    def progress(self, fraction: float, message: str) -> None:
        self.fraction, self.message = min(max(float(fraction), 0.0), 1.0), message

    def wait(self, timeout: Optional[float] = None) -> bool:
        """True once the job has finished (in any state)."""
        return self._done.wait(timeout)

    @property
    def seconds(self) -> Optional[float]:
        if self.started is None:
            return None
        return (self.finished or time.monotonic()) - self.started


@dataclass(frozen=True)
class QueueStatus:
    """Where a job stands: position 1 is next to start (0 once it runs); estimate in seconds, None when unknown."""

    state: JobState
    position: int
    ahead: int
    estimate_s: Optional[float]


class JobQueue:
    """FIFO per device with ``slots[device]`` jobs running at once (worker threads, started lazily)."""

    def __init__(self, slots: dict[str, int] | int = 1, per_session: int = 3, keep_finished: int = 200):
        if per_session < 1:
            raise ValueError("per_session must be at least 1")
        self._slots = slots
        self.per_session = per_session
        self._lock = threading.Condition()
        self._waiting: dict[str, deque[Job]] = defaultdict(deque)
        self._running: dict[str, int] = defaultdict(int)
        self._workers: dict[str, list[threading.Thread]] = {}
        self._jobs: dict[str, Job] = {}
        self._finished: deque[str] = deque()
        self._keep = keep_finished
        self._durations: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=RECENT))
        self._ids = itertools.count(1)
        self._closed = False
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(event, job)`` on every job event (outside the queue's lock; keep it quick)."""
        self._listeners.append(listener)

    def _emit(self, event: str, job: Job) -> None:
        for listener in list(self._listeners):
            try:
                listener(event, job)
            except Exception:  # noqa: BLE001 - observing must never break a job
                log.exception("job listener failed on %s %s", event, job.id)

    def slots(self, device: str) -> int:
        n = self._slots if isinstance(self._slots, int) else self._slots.get(device, 1)
        return max(1, int(n))

    # ---------------------------------------------------------------- submitting and looking up

    def submit(self, kind: str, work: Work, *, session: str, device: str = "cpu") -> Job:
        with self._lock:
            if self._closed:
                raise ApateError("The job queue is shut down; restart the server.")
            mine = sum(1 for j in self._jobs.values() if j.session == session and not j.done)
            if mine >= self.per_session:
                raise QueueLimit(f"You already have {mine} jobs waiting or running",
                                 limit=f"{self.per_session} per session; wait for one to finish or cancel it")
            job = Job(f"{kind}-{next(self._ids)}-{os.urandom(4).hex()}", kind, session, device, work)
            self._jobs[job.id] = job
            self._waiting[device].append(job)
            self._ensure_workers(device)
            self._lock.notify_all()
        self._emit("queued", job)
        return job

    def get(self, job_id: str, session: str) -> Optional[Job]:
        """The job, only for the session that submitted it."""
        job = self._jobs.get(job_id)
        return job if job is not None and job.session == session else None

    def jobs(self, session: Optional[str] = None) -> list[Job]:
        with self._lock:
            return [j for j in self._jobs.values() if session is None or j.session == session]

    def counts(self) -> dict[str, int]:
        """Jobs by state (for health pages and metrics)."""
        with self._lock:
            out = {s.value: 0 for s in JobState}
            for j in self._jobs.values():
                out[j.state.value] += 1
            return out

    # ---------------------------------------------------------------- where a job stands

    def status(self, job: Job) -> QueueStatus:
        with self._lock:
            if job.state is not JobState.QUEUED:
                return QueueStatus(job.state, 0, 0, None)
            line = list(self._waiting[job.device])
            ahead = line.index(job) if job in line else 0
            return QueueStatus(job.state, ahead + 1, ahead, self._estimate(job, line[:ahead]))

    def _estimate(self, job: Job, ahead: list[Job]) -> Optional[float]:
        """Seconds until the job starts: the work ahead of it (queued and still running), spread over the slots."""
        typical = {k: statistics.median(d) for k, d in self._durations.items() if d}
        if not typical:
            return None
        fallback = statistics.median(typical.values())
        running = [j for j in self._jobs.values() if j.device == job.device and j.state is JobState.RUNNING]
        left = sum(max(0.0, typical.get(j.kind, fallback) - (j.seconds or 0.0)) for j in running)
        left += sum(typical.get(j.kind, fallback) for j in ahead)
        return left / self.slots(job.device)

    # ---------------------------------------------------------------- holding a slot

    @contextlib.contextmanager
    def hold(self, kind: str, *, session: str, device: str = "cpu", stop: Optional[threading.Event] = None,
             on_queued: Optional[Callable[[Job], None]] = None) -> Iterator[Job]:
        """A slot for work that runs elsewhere (the Live page's stream worker): queued like any job (``on_queued``
        gets it at once, to show its place), entered once the slot is free (or when ``stop`` is set first: check
        the job's state), released on leaving."""
        admitted, release = threading.Event(), threading.Event()

        def occupy(progress: ProgressCallback, cancel: CancelToken) -> None:
            admitted.set()
            progress(0.0, "in use")
            while not release.wait(0.2):
                cancel.raise_if_cancelled()

        job = self.submit(kind, occupy, session=session, device=device)
        if on_queued is not None:
            on_queued(job)
        try:
            while not admitted.wait(0.1) and not job.done and not (stop is not None and stop.is_set()):
                pass
            yield job
        finally:
            release.set()
            if job.state is JobState.QUEUED:
                self.cancel(job)

    # ---------------------------------------------------------------- cancelling and closing

    def cancel(self, job: Job) -> None:
        """A waiting job is removed and never starts; a running one stops at its next checkpoint."""
        job.token.cancel()
        with self._lock:
            dropped = job.state is JobState.QUEUED and job in self._waiting[job.device]
            if dropped:
                self._waiting[job.device].remove(job)
                self._finish(job, JobState.CANCELLED)
            elif job.state is JobState.RUNNING:
                job.message = "cancelling…"
        if dropped:
            self._emit("finished", job)

    def shutdown(self, timeout: float = 5.0) -> None:
        with self._lock:
            self._closed = True
            dropped = [line.popleft() for line in self._waiting.values() for _ in range(len(line))]
            for job in dropped:
                self._finish(job, JobState.CANCELLED)
            self._lock.notify_all()
            workers = [t for ts in self._workers.values() for t in ts]
        for job in dropped:
            self._emit("finished", job)
        for t in workers:
            t.join(timeout)

    # ---------------------------------------------------------------- workers

    def _ensure_workers(self, device: str) -> None:
        workers = self._workers.setdefault(device, [])
        while len(workers) < self.slots(device):
            t = threading.Thread(target=self._serve, args=(device,), name=f"apate-jobs-{device}-{len(workers)}",
                                 daemon=True)
            workers.append(t)
            t.start()

    def _next(self, device: str) -> Optional[Job]:
        with self._lock:
            while not self._waiting[device] and not self._closed:
                self._lock.wait()
            if self._closed:
                return None
            job = self._waiting[device].popleft()
            job.state, job.started, job.message = JobState.RUNNING, time.monotonic(), "starting"
            self._running[device] += 1
            return job

    def _serve(self, device: str) -> None:
        while (job := self._next(device)) is not None:
            self._emit("started", job)
            state = JobState.SUCCEEDED
            try:
                job.result = job.work(job.progress, job.token)
            except Cancelled:
                state = JobState.CANCELLED
            except BaseException as exc:  # noqa: BLE001 - kept on the job; the page or API reports it
                job.error, state = exc, JobState.FAILED
            with self._lock:
                self._running[device] -= 1
                if state is JobState.SUCCEEDED:
                    self._durations[job.kind].append(time.monotonic() - job.started)
                self._finish(job, state)
            self._emit("finished", job)

    def _finish(self, job: Job, state: JobState) -> None:
        """Under the lock: mark the job finished and forget the oldest finished jobs past ``keep_finished``."""
        job.state, job.finished = state, time.monotonic()
        if state is JobState.CANCELLED:
            job.message = "cancelled"
        job._done.set()
        self._finished.append(job.id)
        while len(self._finished) > self._keep:
            self._jobs.pop(self._finished.popleft(), None)


def default_slots(device: str, cpu_count: Optional[int] = None) -> int:
    """Heavy jobs at once: on a CPU, one per four cores (a job uses several threads itself); two on a GPU."""
    if device.startswith("cuda"):
        return 2
    return max(1, (cpu_count or os.cpu_count() or 1) // 4)


_shared: Optional[JobQueue] = None
_shared_lock = threading.Lock()


def shared_queue(settings=None) -> JobQueue:
    """The process-wide queue (created on first use from the settings)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            from .settings import load_settings

            s = settings or load_settings()
            device = s.resolved_device()
            slots = s.job_slots or default_slots(device)
            _shared = JobQueue({device: slots, "cpu": s.job_slots or default_slots("cpu")},
                               per_session=s.jobs_per_session)
        return _shared
