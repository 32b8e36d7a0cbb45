"""Prometheus metrics and the structured job log, fed by real jobs on a real queue and a real store."""

from __future__ import annotations

import io
import json
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from apate_core import monitoring
from apate_core.jobs import JobQueue
from apate_core.settings import load_settings
from apate_core.store import ResultStore


def _samples(text: bytes) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


@pytest.fixture
def queue():
    q = JobQueue(slots=1, per_session=5)
    yield q
    q.shutdown()


def test_metrics_count_jobs_durations_store_and_models(queue, tmp_path):
    store = ResultStore(tmp_path / "store", 10 * 2**20)
    log = io.StringIO()
    mon = monitoring.Monitoring(queue, store, log)
    store.put("k", {"a": 1})
    assert store.get("k") is not None and store.get("missing") is None

    def boom(progress, cancel):
        raise RuntimeError("no frames")

    ok = queue.submit("detect", lambda p, c: 42, session="s")
    bad = queue.submit("protect", boom, session="s")
    assert ok.wait(5) and bad.wait(5)

    class Model:
        pass

    model = Model()
    monitoring.model_loaded("tiny", model, 0.25)
    samples = _samples(mon.render())
    assert samples[("apate_jobs_finished_total", (("kind", "detect"), ("state", "succeeded")))] == 1
    assert samples[("apate_jobs_finished_total", (("kind", "protect"), ("state", "failed")))] == 1
    assert samples[("apate_job_duration_seconds_count", (("kind", "detect"),))] == 1
    assert samples[("apate_job_wait_seconds_count", (("kind", "protect"),))] == 1
    assert samples[("apate_store_entries", ())] == 1
    assert samples[("apate_store_limit_bytes", ())] == 10 * 2**20
    assert samples[("apate_store_hit_ratio", ())] == 0.5
    assert samples[("apate_models_loaded", (("model", "tiny"),))] == 1
    del model  # unloaded models drop out of the gauge
    assert ("apate_models_loaded", (("model", "tiny"),)) not in _samples(mon.render())

    events = [json.loads(line) for line in log.getvalue().splitlines()]
    assert [(e["kind"], e["event"]) for e in events if e["job"] == bad.id] == [
        ("protect", "queued"), ("protect", "started"), ("protect", "finished")]
    last = [e for e in events if e["job"] == bad.id][-1]
    assert last["state"] == "failed" and last["error"] == "RuntimeError: no frames" and last["seconds"] >= 0
    store.close()


def test_waiting_and_running_jobs_show_as_gauges(queue):
    import threading

    mon = monitoring.Monitoring(queue)
    release = threading.Event()
    jobs = [queue.submit("detect", lambda p, c: release.wait(5), session="s") for _ in range(3)]
    try:
        import time

        deadline = time.monotonic() + 5
        while jobs[0].started is None and time.monotonic() < deadline:
            time.sleep(0.01)
        samples = _samples(mon.render())
        assert samples[("apate_jobs", (("kind", "detect"), ("state", "running")))] == 1
        assert samples[("apate_jobs", (("kind", "detect"), ("state", "queued")))] == 2
    finally:
        release.set()
        assert all(j.wait(5) for j in jobs)


def test_install_is_off_by_default_and_serves_http_when_a_port_is_set(queue, tmp_path, monkeypatch):
    monkeypatch.setattr(monitoring, "_installed", None)
    assert monitoring.install(load_settings({}), queue) is None
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log_path = tmp_path / "jobs.jsonl"
    settings = load_settings({"APATE_METRICS_PORT": str(port), "APATE_JOB_LOG": str(log_path)})
    mon = monitoring.install(settings, queue)
    assert mon is not None and monitoring.install(settings, queue) is mon  # once per process
    assert queue.submit("detect", lambda p, c: None, session="s").wait(5)
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    assert _samples(body)[("apate_jobs_finished_total", (("kind", "detect"), ("state", "succeeded")))] == 1
    assert [json.loads(line)["event"] for line in log_path.read_text().splitlines()] == ["queued", "started",
                                                                                          "finished"]
