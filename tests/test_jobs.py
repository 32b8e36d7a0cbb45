"""The process-wide job queue: order, slots, per-session limits, cancellation, isolation and estimates."""

from __future__ import annotations

import threading
import time

import pytest

from apate_core.errors import Cancelled
from apate_core.jobs import JobQueue, JobState, QueueLimit, default_slots
from apate_core.progress import check_cancelled


class Gate:
    """Work that records when it ran and blocks until released (or cancelled)."""

    def __init__(self, log: list, name: str, hold: bool = True):
        self.log, self.name = log, name
        self.release = threading.Event()
        self.started = threading.Event()
        if not hold:
            self.release.set()

    def __call__(self, progress, cancel):
        self.log.append(self.name)
        self.started.set()
        progress(0.5, f"{self.name} halfway")
        while not self.release.wait(0.01):
            check_cancelled(cancel)
        return self.name.upper()


@pytest.fixture
def queue():
    q = JobQueue(slots=1, per_session=3)
    yield q
    q.shutdown()


def test_first_come_first_served_with_one_slot(queue):
    log: list[str] = []
    gates = [Gate(log, n) for n in "abc"]
    jobs = [queue.submit("detect", g, session=f"s{n}") for n, g in enumerate(gates)]
    assert gates[0].started.wait(5)
    assert [queue.status(j).position for j in jobs] == [0, 1, 2]  # a runs; b is next; c waits behind b
    assert jobs[0].state is JobState.RUNNING and jobs[0].message == "a halfway"
    for gate, job in zip(gates, jobs):
        gate.release.set()
        assert job.wait(5)
    assert log == ["a", "b", "c"]
    assert [j.result for j in jobs] == ["A", "B", "C"] and all(j.state is JobState.SUCCEEDED for j in jobs)


def test_two_slots_run_two_jobs_at_once():
    q = JobQueue(slots={"cpu": 2}, per_session=5)
    log: list[str] = []
    gates = [Gate(log, n) for n in "abc"]
    jobs = [q.submit("detect", g, session="s") for g in gates]
    assert gates[0].started.wait(5) and gates[1].started.wait(5)
    assert not gates[2].started.is_set() and q.status(jobs[2]).position == 1
    assert q.counts()["running"] == 2 and q.counts()["queued"] == 1
    for g in gates:
        g.release.set()
    assert all(j.wait(5) for j in jobs)
    q.shutdown()


def test_per_session_limit_is_a_clear_refusal_and_frees_up(queue):
    log: list[str] = []
    gates = [Gate(log, n) for n in "abc"]
    jobs = [queue.submit("protect", g, session="alice") for g in gates]
    with pytest.raises(QueueLimit, match=r"3 jobs waiting or running.*Limit: 3 per session"):
        queue.submit("protect", Gate(log, "d"), session="alice")
    other = queue.submit("protect", Gate(log, "e", hold=False), session="bob")  # another session is not limited
    queue.cancel(jobs[2])
    fourth = queue.submit("protect", Gate(log, "f", hold=False), session="alice")  # a slot of alice's was freed
    for g in gates:
        g.release.set()
    assert other.wait(5) and fourth.wait(5)


def test_a_cancelled_waiting_job_never_starts(queue):
    log: list[str] = []
    first, second = Gate(log, "a"), Gate(log, "b", hold=False)
    running = queue.submit("detect", first, session="s")
    waiting = queue.submit("detect", second, session="s")
    assert first.started.wait(5)
    queue.cancel(waiting)
    assert waiting.state is JobState.CANCELLED and waiting.wait(0)
    first.release.set()
    assert running.wait(5)
    time.sleep(0.1)
    assert log == ["a"]


def test_a_running_job_stops_at_its_next_checkpoint(queue):
    gate = Gate([], "a")
    job = queue.submit("detect", gate, session="s")
    assert gate.started.wait(5)
    queue.cancel(job)
    assert job.wait(5)
    assert job.state is JobState.CANCELLED and job.result is None


def test_a_failing_job_keeps_its_error_and_the_queue_goes_on(queue):
    def broken(progress, cancel):
        raise ValueError("bad frame")

    failed = queue.submit("detect", broken, session="s")
    after = queue.submit("detect", Gate([], "b", hold=False), session="s")
    assert failed.wait(5) and after.wait(5)
    assert failed.state is JobState.FAILED and str(failed.error) == "bad frame"
    assert after.state is JobState.SUCCEEDED


def test_a_job_is_only_visible_to_its_own_session(queue):
    job = queue.submit("detect", Gate([], "a", hold=False), session="alice")
    assert job.wait(5)
    assert queue.get(job.id, "alice") is job
    assert queue.get(job.id, "bob") is None
    assert queue.jobs("bob") == [] and queue.jobs("alice") == [job]


def test_estimate_grows_with_the_work_ahead(queue):
    warm = Gate([], "warm")
    done = queue.submit("detect", warm, session="s0")
    time.sleep(0.2)  # one finished detect of about 0.2 s makes the estimate
    warm.release.set()
    assert done.wait(5)
    gates = [Gate([], n) for n in "abc"]
    jobs = [queue.submit("detect", g, session=f"s{n}") for n, g in enumerate(gates)]
    assert gates[0].started.wait(5)
    second, third = queue.status(jobs[1]), queue.status(jobs[2])
    assert second.position == 1 and third.position == 2
    assert 0 < second.estimate_s < third.estimate_s
    assert third.estimate_s - second.estimate_s == pytest.approx(done.seconds, abs=0.02)  # one more detect ahead
    for g in gates:
        g.release.set()
    assert all(j.wait(5) for j in jobs)


def test_no_estimate_before_any_job_finished(queue):
    gates = [Gate([], n) for n in "ab"]
    jobs = [queue.submit("detect", g, session="s") for g in gates]
    assert gates[0].started.wait(5)
    assert queue.status(jobs[1]).estimate_s is None
    for g in gates:
        g.release.set()
    assert all(j.wait(5) for j in jobs)


def test_cancelled_exception_inside_work_counts_as_cancelled(queue):
    def stops(progress, cancel):
        raise Cancelled()

    job = queue.submit("detect", stops, session="s")
    assert job.wait(5) and job.state is JobState.CANCELLED


def test_default_slots_follow_the_machine():
    assert default_slots("cpu", 2) == 1 and default_slots("cpu", 16) == 4 and default_slots("cuda") == 2
