"""``apate scan --ray``: the Ray backend against a real local cluster that this module starts and stops.

``ray start --head`` on 127.0.0.1 with two CPUs and its own temp folder, then: a scan through the command with two
Ray workers gives the rows of a local scan; a worker process killed mid-scan costs only the files it held (sent
again, every file gets its row); a file whose worker keeps dying becomes a failed row after two retries. Nothing
is mocked: each actor loads the shipped ``apate`` model and scores the files itself. Skipped, with Ray's reason,
only where ``ray start`` fails on the machine.
"""

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from apate_core.detect.pipeline import DetectParams
from apate_core.scan import FAILED, OK, ScanParams, plan_scan, run_scan
from apate_core.scan import executors as scan_executors
from apate_core.scan.local_processes import kill_processes_naming
from apate_core.scan.ray_executor import IN_FLIGHT_PER_WORKER, MAX_RETRIES, RayExecutor, ray_session
from tests.media_factory import make_video
from tests.test_scan import MODEL, _comparable, by_name, make_folder, scan_settings

SLOW = "a_slow.mp4"  # sorted first, so given out first; about a second of frames, so a kill lands mid-file
START_TIMEOUT_S = 120


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ray_cli() -> list[str]:
    here = Path(sys.executable).with_name("ray")
    return [str(here)] if here.exists() else [sys.executable, "-m", "ray.scripts.scripts"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A local Ray cluster: a head bound to 127.0.0.1 with 2 CPUs; yields its address, stopped afterwards."""
    temp_dir = str(tmp_path_factory.mktemp("ray"))
    port = _free_port()
    # Ray listens on every interface: token authentication, with a token of this run only (the driver in this
    # process reads the same variables), whatever ~/.ray/auth_token holds.
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    env = {**os.environ, **auth, "RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": "1"}
    command = _ray_cli() + ["start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
                            "--include-dashboard=false", f"--temp-dir={temp_dir}", "--disable-usage-stats"]
    try:
        started = subprocess.run(command, capture_output=True, text=True, env=env, timeout=START_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        kill_processes_naming(temp_dir)
        pytest.skip(f"Ray cannot start on this machine: `ray start` failed ({exc})")
    if started.returncode != 0:
        kill_processes_naming(temp_dir)
        tail = " / ".join((started.stderr or started.stdout).strip().splitlines()[-3:])
        pytest.skip(f"Ray cannot start on this machine: `ray start` exited {started.returncode} ({tail})")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in auth.items():
            patch.setenv(name, value)
        try:
            yield f"127.0.0.1:{port}"
        finally:
            import ray

            if ray.is_initialized():
                ray.shutdown()
            kill_processes_naming(temp_dir)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The folder of test_scan (good, bad and duplicate files) plus a longer clip, and its local scan's rows."""
    import torch

    root = tmp_path_factory.mktemp("scan-ray")
    folder = make_folder(root)
    make_video(folder / SLOW, "mp4", seconds=40, fps=2)  # 40 frames at 1 fps sampled
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        settings = scan_settings(root / "local")
        params = ScanParams(sources=(str(folder),), out_dir=root / "local" / "out", model=MODEL,
                            detect=DetectParams(cam=None))
        result = run_scan(plan_scan(params, settings), settings)
    finally:
        torch.set_num_threads(threads)
    assert by_name(result.rows)[SLOW].status == OK and by_name(result.rows)[SLOW].frames == 40
    return folder, result.rows


def _scan_with(executor: RayExecutor, folder: Path, root: Path, monkeypatch, on_row=lambda row: None):
    """A scan through the engine on this executor object, as `ray` (so the summary says ray)."""
    monkeypatch.setitem(scan_executors._EXECUTORS, "ray", lambda workers: executor)
    settings = scan_settings(root)
    params = ScanParams(sources=(str(folder),), out_dir=root / "out", workers=executor.workers, model=MODEL,
                        detect=DetectParams(cam=None), executor="ray")
    return run_scan(plan_scan(params, settings), settings, on_row=on_row)


def test_the_command_on_a_ray_cluster_gives_the_rows_of_a_local_scan(cluster, reference, tmp_path, monkeypatch,
                                                                     capsys):
    from apate_core.cli import main

    folder, local_rows = reference
    monkeypatch.setenv("APATE_CACHE_DIR", str(tmp_path / "cache"))  # a fresh store: the actors score every file
    out = tmp_path / "out"
    code = main(["scan", str(folder), "--out", str(out), "--model", MODEL, "--ray", cluster, "--workers", "2",
                 "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads(captured.out)
    assert summary["executor"] == "ray" and summary["workers"] == 2 and summary["files"] == len(local_rows)
    assert f"on 2 Ray workers (cluster {cluster}, 2 CPUs)" in captured.err
    rows = [json.loads(line) for line in (out / "scan.jsonl").read_text().splitlines()]
    from apate_core.scan import ScanRow

    assert _comparable([ScanRow(**row) for row in rows]) == _comparable(local_rows)

    import ray

    assert not ray.is_initialized()  # the command disconnected; the cluster itself is still up
    assert (tmp_path / "cache" / "store").is_dir()


def test_a_worker_killed_mid_scan_costs_only_the_files_it_held(cluster, reference, tmp_path, monkeypatch):
    folder, local_rows = reference
    executor = RayExecutor(workers=2)
    killed: dict = {}

    def kill_the_slow_files_worker(row):
        # Called between rows: the worker holding the long clip is killed as a crash or the OOM killer would.
        if killed:
            return
        for _actor, pid, paths in executor.in_flight():
            if pid and any(Path(p).name == SLOW for p in paths):
                killed.update(pid=pid, paths=set(paths))
                os.kill(pid, signal.SIGKILL)

    with ray_session(cluster):
        result = _scan_with(executor, folder, tmp_path, monkeypatch, on_row=kill_the_slow_files_worker)
    assert killed, "the clip was never seen in flight on a ready worker"
    assert executor.lost_workers == 1
    assert set(executor.retries) <= killed["paths"] and str(folder / SLOW) in executor.retries
    assert set(executor.retries.values()) == {1}  # sent again once, and done the second time
    assert _comparable(result.rows) == _comparable(local_rows)  # every file has its row, as a local scan's
    assert all(row.status != FAILED for row in result.rows) and result.summary.executor == "ray"


def test_a_file_whose_worker_keeps_dying_is_a_failed_row_after_two_retries(cluster, reference, tmp_path,
                                                                          monkeypatch):
    import ray

    folder, local_rows = reference
    executor = RayExecutor(workers=2)
    kills: list[set] = []
    stop = threading.Event()

    def killer():
        # Whenever the long clip is in flight on a worker, kill that worker (ray.kill: its process ends).
        seen = set()
        while not stop.is_set():
            try:
                workers = executor.in_flight()
            except RuntimeError:  # changed while being read: look again
                continue
            for actor, _pid, paths in workers:
                if any(Path(p).name == SLOW for p in paths) and actor not in seen:
                    seen.add(actor)
                    kills.append(set(paths))
                    ray.kill(actor, no_restart=True)
            time.sleep(0.01)

    thread = threading.Thread(target=killer, daemon=True)
    with ray_session(cluster):
        thread.start()
        try:
            result = _scan_with(executor, folder, tmp_path, monkeypatch)
        finally:
            stop.set()
            thread.join(10)
    rows = by_name(result.rows)
    assert rows[SLOW].status == FAILED and f"lost {MAX_RETRIES + 1} times" in rows[SLOW].error
    assert len(kills) == MAX_RETRIES + 1 and executor.lost_workers == MAX_RETRIES + 1
    assert all(kill == {str(folder / SLOW)} for kill in kills[1:])  # a retried file runs alone on its worker
    assert executor.retries[str(folder / SLOW)] == MAX_RETRIES
    # only what the first lost worker held: the slow clip and at most one file beside it (two in flight per
    # actor); which one is a race with the killer's snapshot, so only the count is checked
    assert len(executor.retries) <= IN_FLIGHT_PER_WORKER
    assert all(n == 1 for path, n in executor.retries.items() if Path(path).name != SLOW)
    others = [row for row in result.rows if row.name != SLOW]
    assert _comparable(others) == _comparable([row for row in local_rows if row.name != SLOW])
    assert result.summary.failed == 1


def test_the_ray_backend_is_imported_only_when_asked_for_and_ray_only_when_it_runs():
    code = ("import sys, apate_core.scan, apate_core.commands.scan; "
            "assert 'apate_core.scan.ray_executor' not in sys.modules; "
            "from apate_core.scan import get_executor; e = get_executor('ray', 3); "
            "print(type(e).__name__, e.workers, 'ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "RayExecutor 3 False"


def test_actors_reserve_their_threads_or_a_fair_share_of_a_small_cluster():
    from apate_core.scan.ray_executor import actor_cpus

    assert actor_cpus(4, 2, 16.0) == (2.0, 2)  # room: two CPUs, two torch threads each
    assert actor_cpus(2, 2, 2.0) == (1.0, 1)  # two actors asked of two CPUs: one each
    assert actor_cpus(8, 2, 2.0) == (0.25, 1)  # more actors than CPUs: a fraction each, all placed
