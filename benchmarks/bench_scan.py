"""``apate scan`` throughput: files/s with 1 and 2 local workers, and a re-run that finds everything done.

Usage::

    python benchmarks/bench_scan.py [--files 40] [--workers 1,2] [--model NAME|PATH] [--folder DIR] [--json PATH]
                                    [--ray local|auto|ADDRESS [--ray-workers 1,2]]

Without ``--folder`` it writes ``--files`` distinct JPEGs (random crops of the sample photos and frames of the
sample clip, 640x480, so that no two share content and the result store cannot help) into a temporary folder.
Each worker count scans that folder with a fresh result store and a fresh output folder, so every file is
really analysed; the model defaults to what ``apate scan`` uses (``default_detector_name()``). Figures:

* wall files/s: files / the whole run_scan (worker start-up and model loading included -- what a person waits);
* steady files/s: files after the first / time from the first finished file to the last (start-up excluded);
* ratio: each worker count's figures over one worker's;
* resume: the same command again into the same folder (every file kept from scan.jsonl, nothing analysed);
* store only: the same files into a new output folder with the warm store (intake + hash + a store read per file);
* with ``--ray``, the same scan on Ray actors (``apate scan --ray``) for each of ``--ray-workers``: ``local`` starts
  a cluster on this machine for the benchmark (``ray start --head`` on 127.0.0.1 with every core, token
  authentication, its own temp folder) and stops it afterwards; ``auto`` or an address is passed to ``--ray``.
  The connection is made before the clock starts; actor start-up and model loading are inside wall files/s.

The machine's load matters: run it on an idle machine for figures worth quoting.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SAMPLES = ROOT / "assets" / "samples"
SIZE = (640, 480)


def make_images(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """``count`` distinct JPEGs: random crops of the sample stills and of the sample clip's frames, resized."""
    import numpy as np
    from PIL import Image

    from apate_core.media.video import iter_frames

    sources = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(SAMPLES.glob("*.jpg"))]
    sources += [np.asarray(Image.open(p).convert("RGB")) for p in sorted(SAMPLES.glob("*.png"))]
    for clip in sorted(SAMPLES.glob("*.mp4")):
        sources += [frame.image for frame in iter_frames(clip, 1.0)]
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(count):
        image = sources[n % len(sources)]
        height, width = image.shape[:2]
        side_h, side_w = int(height * rng.uniform(0.5, 0.9)), int(width * rng.uniform(0.5, 0.9))
        y, x = rng.integers(0, height - side_h + 1), rng.integers(0, width - side_w + 1)
        crop = Image.fromarray(np.ascontiguousarray(image[y:y + side_h, x:x + side_w])).resize(SIZE)
        path = folder / f"image_{n:04d}.jpg"
        crop.save(path, quality=int(rng.integers(80, 96)))
        paths.append(path)
    return paths


def timed_scan(folder: Path, out: Path, cache: Path, workers: int, model: str, executor: str = "local") -> dict:
    from apate_core.scan import ScanParams, plan_scan, run_scan
    from apate_core.settings import load_settings

    settings = load_settings(cache_dir=str(cache))
    params = ScanParams(sources=(str(folder),), out_dir=out, workers=workers, model=model, executor=executor)
    finished: list[float] = []
    started = time.perf_counter()
    plan = plan_scan(params, settings)
    result = run_scan(plan, settings, on_row=lambda row: finished.append(time.perf_counter()))
    wall = time.perf_counter() - started
    new = len(finished)
    steady = (new - 1) / (finished[-1] - finished[0]) if new > 2 and finished[-1] > finished[0] else None
    summary = result.summary
    return {"workers": workers, "executor": executor, "files": summary.files, "analysed_now": new,
            "from_store": summary.from_store,
            "reused": summary.reused, "unreadable": summary.unreadable, "failed": summary.failed,
            "wall_s": round(wall, 3), "wall_files_per_s": round(summary.files / wall, 3),
            "steady_files_per_s": round(steady, 3) if steady else None, "labels": summary.labels}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=40, help="images to generate (default 40)")
    parser.add_argument("--folder", type=Path, default=None, help="scan this folder instead of generated images")
    parser.add_argument("--workers", default="1,2", help="worker counts to compare (default 1,2)")
    parser.add_argument("--model", default=None, help="detector (default: apate scan's default)")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the figures as JSON ('-': stdout)")
    parser.add_argument("--ray", default=None, metavar="local|auto|ADDRESS",
                        help="also scan on Ray actors: local = a cluster started (and stopped) here for the run")
    parser.add_argument("--ray-workers", default="1,2", help="Ray actor counts to measure (default 1,2)")
    args = parser.parse_args(argv)

    import torch

    from apate_core.detect.pipeline import default_detector_name

    model = args.model or default_detector_name()
    counts = [int(n) for n in args.workers.split(",")]
    work = Path(tempfile.mkdtemp(prefix="apate-bench-scan-"))
    try:
        folder = args.folder or work / "images"
        if args.folder is None:
            make_images(folder, args.files)
        n_files = sum(1 for _ in folder.rglob("*") if _.is_file())
        print(f"{n_files} files in {folder}; model {model}; {os.cpu_count()} CPU cores, torch threads "
              f"{torch.get_num_threads()} in-process (workers get cores // workers)")
        runs = []
        for workers in counts:
            runs.append(timed_scan(folder, work / f"out-{workers}", work / f"cache-{workers}", workers, model))
        first = counts[0]
        resume = timed_scan(folder, work / f"out-{first}", work / f"cache-{first}", first, model)
        store_only = timed_scan(folder, work / f"out-{first}-again", work / f"cache-{first}", first, model)
        if args.ray:
            with ray_cluster(args.ray, work / "ray") as address:
                from apate_core.scan.ray_executor import cluster_cpus, ray_session

                with ray_session(address):
                    print(f"Ray: {address}, {cluster_cpus():g} CPUs")
                    for workers in (int(n) for n in args.ray_workers.split(",")):
                        runs.append(timed_scan(folder, work / f"out-ray-{workers}", work / f"cache-ray-{workers}",
                                               workers, model, executor="ray"))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    base = runs[0]
    header = f"{'run':<22}{'files':>6}{'wall s':>9}{'wall files/s':>14}{'steady files/s':>16}"
    print(f"\n{header}{'ratio (wall/steady)':>22}")
    for run in runs:
        ratio_wall = run["wall_files_per_s"] / base["wall_files_per_s"]
        ratio_steady = (run["steady_files_per_s"] / base["steady_files_per_s"]
                        if run["steady_files_per_s"] and base["steady_files_per_s"] else None)
        run["ratio_wall"] = round(ratio_wall, 3)
        run["ratio_steady"] = round(ratio_steady, 3) if ratio_steady else None
        steady = f"{run['steady_files_per_s']:.2f}" if run["steady_files_per_s"] else "n/a"
        ratio = f"{ratio_wall:.2f} / " + (f"{ratio_steady:.2f}" if ratio_steady else "n/a")
        name = ("Ray, " if run["executor"] == "ray" else "") + f"{run['workers']} worker(s)"
        print(f"{name:<22}{run['files']:>6}{run['wall_s']:>9.2f}"
              f"{run['wall_files_per_s']:>14.2f}{steady:>16}{ratio:>22}")
    for name, run in (("resume (journal)", resume), ("store only", store_only)):
        print(f"{name:<22}{run['files']:>6}{run['wall_s']:>9.2f}{run['wall_files_per_s']:>14.2f}")
    print(f"\nresume: {resume['reused']} of {resume['files']} files kept from scan.jsonl, "
          f"{resume['analysed_now']} analysed; store only: {store_only['from_store']} of {store_only['analysed_now']} "
          f"re-opened from the result store")
    figures = {"model": model, "cpu_count": os.cpu_count(), "files": n_files, "runs": runs, "resume": resume,
               "store_only": store_only}
    if args.json == "-":
        print(json.dumps(figures, indent=2))
    elif args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


@contextlib.contextmanager
def ray_cluster(spec: str, temp_dir: Path):
    """The address to scan on: ``local`` starts a head on 127.0.0.1 with every core (token authentication with a
    token of this run; Ray listens on every interface) and kills it afterwards; anything else is used as is."""
    from apate_core.scan.local_processes import kill_processes_naming

    if spec != "local":
        yield spec
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    temp_dir.mkdir(parents=True, exist_ok=True)
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    ray = Path(sys.executable).with_name("ray")
    subprocess.run([str(ray), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
                    f"--num-cpus={os.cpu_count()}", "--include-dashboard=false", f"--temp-dir={temp_dir}",
                    "--disable-usage-stats"], check=True, capture_output=True, env={**os.environ, **auth})
    saved = {name: os.environ.get(name) for name in auth}
    os.environ.update(auth)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        kill_processes_naming(str(temp_dir))


if __name__ == "__main__":
    sys.exit(main())
