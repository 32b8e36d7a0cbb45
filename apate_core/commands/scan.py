"""``apate scan SOURCE... [--out DIR] [--workers N] [--ray auto|ADDRESS] [--model NAME|PATH] [--heatmaps] [--json]``.

Scans files, folders (recursive), glob patterns or ``@LIST`` files like ``apate detect`` would, without heatmaps
unless asked. Writes DIR/scan.jsonl (a row per file as it finishes), scan.csv, summary.json and index.html
(default DIR ``./apate-scan``). Running the same command again skips finished files, so an interrupted scan
resumes where it stopped. ``--ray`` runs the files on Ray actors (``apate_core.scan.ray_executor``, the only
place that imports ray) instead of local worker processes.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
from pathlib import Path

from ..settings import load_settings
from ._output import band_arg, print_json

SHOWN = 10  # most suspicious and unreadable files printed; index.html lists them all


class _FileBar:
    """A tqdm bar of files on stderr: count, rate (files/s) and ETA."""

    def __init__(self, total: int, enabled: bool):
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc="scan", unit="file", file=sys.stderr, disable=not enabled,
                        dynamic_ncols=True, smoothing=0.1)
        self.problems = 0

    def __call__(self, row) -> None:
        if row.status != "ok":
            self.problems += 1
        postfix = f"{row.name[:30]}" + (f", {self.problems} unreadable" if self.problems else "")
        self.bar.set_postfix_str(postfix, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def _human(result) -> None:
    from ..detect.verdict import display_label

    s = result.summary
    speed = f", {s.files_per_s:g} files/s" if s.files_per_s else ""
    print(f"scanned {s.files} files: {s.new} in this run in {s.seconds:.1f} s{speed} "
          f"({s.from_store} from the result store), {s.reused} kept from an earlier run")
    counts = ", ".join(f"{display_label(k)} {v}" for k, v in s.labels.items() if v) or "none analysed"
    extra = "".join(f", {name} {n}" for name, n in (("unreadable", s.unreadable), ("failed", s.failed)) if n)
    dupes = f", {s.duplicates} duplicate{'s' if s.duplicates != 1 else ''}" if s.duplicates else ""
    print(f"labels: {counts}{extra}{dupes}")
    if s.most_suspicious:
        print("most suspicious:")
        for item in s.most_suspicious[:SHOWN]:
            score = "n/a" if item["score"] is None else f"{item['score']:.3f}"
            print(f"  {score}  {display_label(item['label']):<18} {item['path']}")
    if s.unreadable_files:
        print("unreadable:")
        for item in s.unreadable_files[:SHOWN]:
            print(f"  {item['path']}: {item['error']}")
        if len(s.unreadable_files) > SHOWN:
            print(f"  ... and {len(s.unreadable_files) - SHOWN} more (see index.html)")
    print(f"written: {result.paths['html']}, {result.paths['csv']}, {result.paths['jsonl']}, "
          f"{result.paths['summary']}")


def run(args: argparse.Namespace) -> int:
    from ..detect.pipeline import DetectParams
    from ..scan import ScanParams, plan_scan, run_scan

    settings = load_settings()
    detect = DetectParams(fps=args.fps or settings.sample_fps, cam=args.cam if args.heatmaps else None,
                          top_k=args.top_k, faces=args.faces, face_evidence=not args.no_face_check,
                          band=(args.band[0], args.band[1]))
    params = ScanParams(sources=tuple(args.sources), out_dir=args.out, workers=args.workers or 1, model=args.model,
                        detect=detect, executor="ray" if args.ray else "local")
    plan = plan_scan(params, settings)  # refuses bad sources, models and options before any model loads
    with _ray_cluster(args.ray):
        where = "worker"
        if args.ray:  # connected: the actor count defaults to what the cluster has room for
            from ..scan.ray_executor import cluster_cpus, default_workers

            plan.params = dataclasses.replace(plan.params, workers=args.workers or default_workers())
            where = f"Ray worker (cluster {args.ray}, {cluster_cpus():g} CPUs)"
        workers = plan.params.workers
        show = not args.quiet
        if show:
            where = where.replace("worker", "workers", 1) if workers != 1 else where
            print(f"scan: {plan.total} files, {len(plan.reused)} done in an earlier run, {len(plan.todo)} to analyse "
                  f"with {plan.model} on {workers} {where} -> {args.out}", file=sys.stderr)
        bar = _FileBar(len(plan.todo), show)
        try:
            result = run_scan(plan, settings, on_row=bar)
        except KeyboardInterrupt:
            print(f"scan interrupted: finished files are kept in {args.out / 'scan.jsonl'}; run the same command "
                  "again to resume", file=sys.stderr)
            raise
        finally:
            bar.close()
    if args.json:
        print_json({**result.summary.to_dict(), "outputs": {k: str(v) for k, v in result.paths.items()}})
    else:
        _human(result)
    return 0


def _ray_cluster(address):
    """Connected to Ray for the scan with --ray (imported only then); nothing otherwise."""
    if not address:
        return contextlib.nullcontext()
    from ..scan.ray_executor import ray_session

    return ray_session(address)


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of processes, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("at least 1 worker")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("scan", help="scan many files, folders or globs (resumable), with a CSV and an overview",
                            description="Analyse every file under SOURCE like `apate detect` (without heatmaps "
                                        "unless asked); a re-run skips finished files, so an interrupted scan "
                                        "resumes. Unreadable files are listed with their reason.")
    parser.add_argument("sources", metavar="SOURCE", nargs="+",
                        help="a file, a folder (recursive; hidden names skipped), a glob such as 'dir/**/*.jpg', "
                             "or @LIST: a text file with one of these per line")
    parser.add_argument("--out", type=Path, default=Path("apate-scan"), metavar="DIR",
                        help="output folder: scan.jsonl, scan.csv, summary.json, index.html (default ./apate-scan)")
    parser.add_argument("--workers", type=_workers, default=None, metavar="N",
                        help="worker processes, each with its own model (default 1: in this process); with --ray, "
                             "Ray actors (default: the cluster's CPUs / 2)")
    parser.add_argument("--ray", default=None, metavar="auto|ADDRESS",
                        help="run the files on a Ray cluster instead of local processes: `auto` joins RAY_ADDRESS "
                             "or a Ray instance running here, else starts one; ADDRESS (HOST:PORT of the head, or "
                             "ray://HOST:10001) joins that cluster. Every node must see the files at the same paths")
    parser.add_argument("--model", default=None, metavar="NAME|PATH",
                        help="registered detector or checkpoint path (default: as apate detect)")
    parser.add_argument("--fps", type=float, default=None, help="frames sampled per second (default APATE_SAMPLE_FPS)")
    parser.add_argument("--faces", action="store_true", help="score face crops (per face, per frame)")
    parser.add_argument("--no-face-check", action="store_true",
                        help="skip the face-swap check (every sampled frame searched for faces by default)")
    parser.add_argument("--heatmaps", action="store_true",
                        help="also make heatmaps of the top-k frames and write DIR/results/<file>-<sha>/ per file "
                             "(result.json, PNGs); off by default")
    parser.add_argument("--cam", default="gradcam", metavar="METHOD", help="heatmap method with --heatmaps "
                                                                           "(default gradcam)")
    parser.add_argument("--top-k", type=int, default=8, help="most suspicious frames kept per file (default 8)")
    parser.add_argument("--band", type=band_arg, default=(0.4, 0.6), metavar="LOW,HIGH",
                        help="uncertain band: real <= LOW, fake >= HIGH (default 0.4,0.6)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)
