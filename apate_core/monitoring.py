"""Prometheus metrics and structured job logs, both off unless configured.

``APATE_METRICS_PORT`` serves ``/metrics`` (prometheus-client's own HTTP server, on ``APATE_METRICS_HOST``,
127.0.0.1 by default): jobs queued and running now and finished by kind and state, job and model-load
durations, the result store's size, limit and hit rate, and the models loaded in this process. ``APATE_JOB_LOG``
writes one JSON line per job event (queued, started, finished) to a file or stderr.

The numbers are read from the queue and the store when Prometheus scrapes (a collector), so nothing here sits
on a job's path except two histogram observations and a log line.
"""

from __future__ import annotations

import collections
import json
import sys
import threading
import time
import weakref
from typing import Any, Iterator, Optional, TextIO

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .jobs import Job, JobQueue, JobState

DURATION_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800)

_loaded: "weakref.WeakValueDictionary[int, Any]" = weakref.WeakValueDictionary()
_loaded_names: dict[int, str] = {}
_load_seconds: list[tuple[str, float]] = []  # model loads before monitoring was installed


def model_loaded(name: str, model: Any, seconds: float) -> None:
    """Called by the engine after it builds a model: counted while the object lives."""
    key = id(model)
    try:
        _loaded[key] = model
        _loaded_names[key] = name
    except TypeError:  # not weak-referenceable: counted as a load only
        pass
    if _installed is not None:
        _installed.model_load.labels(model=name).observe(seconds)
    else:
        _load_seconds.append((name, seconds))


def loaded_models() -> list[str]:
    return sorted(_loaded_names[k] for k in list(_loaded.keys()) if k in _loaded_names)


class _StateCollector(Collector):
    """Gauges read at scrape time from the queue, the store and the loaded models."""

    def __init__(self, queue: JobQueue, store=None):
        self.queue, self.store = queue, store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = GaugeMetricFamily("apate_jobs", "Jobs waiting or running now", labels=["kind", "state"])
        counts: dict[tuple[str, str], int] = {}
        for job in self.queue.jobs():
            if job.state in (JobState.QUEUED, JobState.RUNNING):
                counts[(job.kind, job.state.value)] = counts.get((job.kind, job.state.value), 0) + 1
        for (kind, state), n in sorted(counts.items()):
            now.add_metric([kind, state], n)
        yield now
        models = GaugeMetricFamily("apate_models_loaded", "Models loaded in this process", labels=["model"])
        for name, n in collections.Counter(loaded_models()).items():
            models.add_metric([name], n)
        yield models
        if self.store is not None:
            usage = self.store.usage()
            yield GaugeMetricFamily("apate_store_bytes", "Result store size on disk", value=usage.bytes_used)
            yield GaugeMetricFamily("apate_store_limit_bytes", "Result store size limit", value=usage.bytes_limit)
            yield GaugeMetricFamily("apate_store_entries", "Result store entries", value=usage.entries)
            lookups = self.store.hits + self.store.misses
            yield GaugeMetricFamily("apate_store_hit_ratio", "Share of result lookups served from the store",
                                    value=self.store.hits / lookups if lookups else 0.0)


class Monitoring:
    """The metrics registry and job log of one process, fed by the job queue's events."""

    def __init__(self, queue: JobQueue, store=None, log: Optional[TextIO] = None):
        self.registry = CollectorRegistry()
        self.jobs_finished = Counter("apate_jobs_finished", "Jobs finished, by kind and final state",
                                     ["kind", "state"], registry=self.registry)
        self.job_duration = Histogram("apate_job_duration_seconds", "Time a job ran (not its wait)", ["kind"],
                                      buckets=DURATION_BUCKETS, registry=self.registry)
        self.job_wait = Histogram("apate_job_wait_seconds", "Time a job waited in the queue", ["kind"],
                                  buckets=DURATION_BUCKETS, registry=self.registry)
        self.model_load = Histogram("apate_model_load_seconds", "Time to build a model", ["model"],
                                    buckets=DURATION_BUCKETS, registry=self.registry)
        self.registry.register(_StateCollector(queue, store))
        self._log, self._log_lock = log, threading.Lock()
        queue.subscribe(self.on_job)

    def on_job(self, event: str, job: Job) -> None:
        if event == "started" and job.started is not None:
            self.job_wait.labels(kind=job.kind).observe(max(0.0, job.started - job.submitted))
        elif event == "finished":
            self.jobs_finished.labels(kind=job.kind, state=job.state.value).inc()
            if job.seconds is not None:
                self.job_duration.labels(kind=job.kind).observe(job.seconds)
        if self._log is not None:
            self._write(event, job)

    def _write(self, event: str, job: Job) -> None:
        record = {"ts": round(time.time(), 3), "event": event, "job": job.id, "kind": job.kind,
                  "device": job.device, "state": job.state.value}
        if event == "finished":
            record["seconds"] = None if job.seconds is None else round(job.seconds, 3)
            if job.error is not None:
                record["error"] = f"{type(job.error).__name__}: {job.error}"
        with self._log_lock:
            self._log.write(json.dumps(record) + "\n")
            self._log.flush()

    def render(self) -> bytes:
        """The metrics in Prometheus's text format (what /metrics serves)."""
        return generate_latest(self.registry)


_installed: Optional[Monitoring] = None
_install_lock = threading.Lock()


def install(settings, queue: JobQueue, store=None) -> Optional[Monitoring]:
    """Once per process: metrics (and their HTTP server when a port is set) and the job log, as configured.
    None when both are off."""
    global _installed
    with _install_lock:
        if _installed is not None or not (settings.metrics_port or settings.job_log):
            return _installed
        log = None
        if settings.job_log == "stderr":
            log = sys.stderr
        elif settings.job_log:
            log = open(settings.job_log, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the process
        _installed = Monitoring(queue, store, log)
        for name, seconds in _load_seconds:
            _installed.model_load.labels(model=name).observe(seconds)
        _load_seconds.clear()
        if settings.metrics_port:
            start_http_server(settings.metrics_port, addr=settings.metrics_host, registry=_installed.registry)
        return _installed
