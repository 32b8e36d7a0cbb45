"""What every route shares: settings, the one job queue, the result store, models, the key guard."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from fastapi import HTTPException

from ..errors import ApateError
from ..jobs import Job, JobQueue, JobState
from ..media.upload_area import uploads_root
from ..monitoring import Monitoring
from ..settings import Settings
from ..store import ResultStore
from .registry import ModelRegistry
from .security import Client, Guard

log = logging.getLogger("apate.api")


def public_error(exc: Optional[BaseException]) -> Optional[str]:
    """A job's error as a client may see it: refusals as they are, anything else by type only (details in the
    server log, never a traceback or an internal message in a response)."""
    if exc is None:
        return None
    if isinstance(exc, ApateError):
        return str(exc)
    return f"internal error ({type(exc).__name__}); the server log has the details"


@dataclass
class ApiState:
    settings: Settings
    queue: JobQueue
    store: ResultStore
    monitor: Monitoring
    models: ModelRegistry
    guard: Guard
    device: str
    _owned: set[str] = field(default_factory=set, repr=False)  # ids of jobs this API submitted
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.queue.subscribe(self._on_job)

    @property
    def uploads(self) -> Path:
        return uploads_root(self.settings)

    @property
    def downloads(self) -> Path:
        path = self.settings.cache_path / "downloads"
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    def submit(self, kind: str, work: Any, client: Client) -> Job:
        """Queue heavy work for the caller's session (QueueLimit, a refusal, past its share: answered 429)."""
        job = self.queue.submit(kind, work, session=client.session, device=self.device)
        with self._lock:
            self._owned.add(job.id)
        return job

    def _on_job(self, event: str, job: Job) -> None:
        if event != "finished":
            return
        with self._lock:
            if job.id not in self._owned:
                return
            self._owned.discard(job.id)
        exc = job.error
        if exc is not None and not isinstance(exc, ApateError):  # a bug: keep the traceback, in the log only
            log.error("API job %s failed", job.id, exc_info=(type(exc), exc, exc.__traceback__))

    def job(self, job_id: str, client: Client, kinds: tuple[str, ...]) -> Job:
        """The caller's job of one of ``kinds``; 404 for anything else, including another session's job."""
        job = self.queue.get(job_id, client.session)
        if job is None or job.kind not in kinds:
            raise HTTPException(404, detail=f"No job {job_id!r} for this caller (unknown, expired or another "
                                            "key's).")
        return job

    def finished(self, job: Job) -> Any:
        """A succeeded job's result; 409 while it waits or runs or when it did not succeed."""
        if job.state is JobState.SUCCEEDED:
            return job.result
        if job.state is JobState.FAILED:
            raise HTTPException(409, detail=f"The job failed: {public_error(job.error)}")
        raise HTTPException(409, detail=f"The job has no result: it is {job.state.value}.")

    def status(self, job: Job, links: dict[str, str]) -> dict[str, Any]:
        where = self.queue.status(job)
        out: dict[str, Any] = {
            "job_id": job.id, "kind": job.kind, "status": job.state.value, "progress": round(job.fraction, 4),
            "message": job.message, "position": where.position, "jobs_ahead": where.ahead,
            "estimate_s": None if where.estimate_s is None else round(where.estimate_s, 1),
            "seconds": None if job.seconds is None else round(job.seconds, 3),
            "error": public_error(job.error),
        }
        if job.state is JobState.SUCCEEDED:
            out["links"] = links
        return out
