"""End-to-end Detect pipeline against its floor, on a 60 s 1280x720 H.264 clip at 1 fps with Grad-CAM on CPU.

Usage::

    APATE_TESTDATA=../shared/testdata python benchmarks/bench_detect.py [--model NAME] [--repeat 2] [--clip PATH]

The clip is ``$APATE_TESTDATA/real/cockatoo.mp4`` (14 s, 1280x720, 20 fps) looped to 60 s and re-encoded with
libx264 (made once, kept in the temp folder). Figures, all measured in this one run:

* end to end: ``analyse_path`` (intake + sha256, probe, decode, batched scoring, Grad-CAM, provenance, store write)
  with heatmaps for every frame (``all``) and for the top-8 only (``top_k``): wall time and frames/s;
* the floor: decoding the same sampled frames (``iter_frames``, same strategy) plus one batched forward + backward
  of the model on them (what a Grad-CAM of every frame cannot avoid); ratio = end to end / floor;
* re-opening the same input + model + parameters from the result store (with and without intake);
* peak RSS of the process after the end-to-end runs (resource.getrusage).

Targets: ratio <= 1.3, re-open <= 0.1 s, peak RSS <= 2 GB. Each timing is the best of ``--repeat`` runs (shared
machine). Before timing, one warm-up pass loads the libraries and hashes the weights.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from apate_core.detect import create_detector  # noqa: E402
from apate_core.detect.pipeline import DetectParams, analyse_media, analyse_path, default_detector_name  # noqa: E402
from apate_core.media.intake import intake_file  # noqa: E402
from apate_core.media.video import iter_frames, probe_video  # noqa: E402
from apate_core.settings import load_settings  # noqa: E402
from apate_core.store import ResultStore  # noqa: E402

SECONDS, SIZE = 60, (1280, 720)
TARGETS = {"ratio": 1.3, "reopen_s": 0.1, "rss_gb": 2.0}


def make_clip(path: Path, source: Path) -> Path:
    """Loop the source's frames (resized to 1280x720) until SECONDS of H.264 are written."""
    import av

    info = probe_video(source)
    rate = Fraction(info.fps).limit_denominator(1000)
    needed = int(round(SECONDS * rate))
    tmp = path.with_suffix(".part.mp4")
    with av.open(str(tmp), "w") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23"}
        written = 0
        while written < needed:
            with av.open(str(source)) as src:
                for frame in src.decode(video=0):
                    if written >= needed:
                        break
                    image = frame.reformat(width=SIZE[0], height=SIZE[1], format="yuv420p")
                    image.pts, image.time_base = written, 1 / rate
                    for packet in stream.encode(image):
                        out.mux(packet)
                    written += 1
        for packet in stream.encode(None):
            out.mux(packet)
    tmp.rename(path)
    return path


def floor_seconds(clip: Path, detector, fps: float, batch: int) -> tuple[float, float, float]:
    """(decode-only s, full forward+backward s, forward + backward from the CAM layer s) for the same frames."""
    import torch

    from apate_core.detect.pipeline import _grad_only_from

    from apate_core.detect.pipeline import _Scorer

    info = probe_video(clip)
    started = time.perf_counter()
    frames = [f.image for f in iter_frames(clip, fps, info=info)]
    decode = time.perf_counter() - started
    batch = _Scorer(detector, DetectParams(batch_size=batch), None).batch_for(frames[:1])  # same batches as the pipeline
    timings = []
    for tight in (False, True):
        started = time.perf_counter()
        with detector.lock, torch.enable_grad():
            if tight:
                with _grad_only_from(detector):
                    for i in range(0, len(frames), batch):
                        detector.module(detector.preprocess(frames[i:i + batch])).sum().backward()
            else:
                for i in range(0, len(frames), batch):
                    x = detector.preprocess(frames[i:i + batch]).requires_grad_(True)
                    detector.module(x).sum().backward()
        detector.module.zero_grad(set_to_none=True)
        timings.append(time.perf_counter() - started)
    return decode, timings[0], timings[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="detector (default: Apate's shipped model, else resnet18)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--clip", type=Path, default=None, help="use this clip instead of the looped cockatoo")
    parser.add_argument("--fps", type=float, default=1.0)
    args = parser.parse_args()

    clip = args.clip
    if clip is None:
        source = Path(os.environ.get("APATE_TESTDATA", ROOT.parent / "shared" / "testdata")) / "real" / "cockatoo.mp4"
        clip = Path(tempfile.gettempdir()) / "apate-bench-detect-60s-720p.mp4"
        if not clip.exists():
            started = time.perf_counter()
            make_clip(clip, source)
            print(f"made {clip} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    info = probe_video(clip)
    print(f"clip: {clip.name}, {info.display_width}x{info.display_height} {info.codec}, {info.duration:.1f} s at "
          f"{info.fps:g} fps, keyframe every {info.keyframe_interval or 0:.2f} s, {clip.stat().st_size / 1e6:.1f} MB")

    name = args.model or default_detector_name()
    detector = create_detector(name)
    import torch

    print(f"model: {detector.name} ({detector.architecture}), torch threads {torch.get_num_threads()}, "
          f"{os.cpu_count()} cores; fps {args.fps:g}; Grad-CAM")
    settings = load_settings({}, cache_dir=tempfile.mkdtemp(prefix="apate-bench-"))

    # warm-up: imports (pytorch-grad-cam pulls in matplotlib), weights hash, first-call allocations
    _ = detector.weights_sha256
    with tempfile.TemporaryDirectory() as tmp:
        analyse_path(clip, settings, detector, DetectParams(fps=args.fps, heatmaps="all"),
                     store=ResultStore(Path(tmp) / "s", 1 << 30), progress=lambda f, m: None)

    timings: dict[str, float] = {}
    frames = 0
    stores: dict[str, ResultStore] = {}
    for _ in range(args.repeat):
        for mode in ("all", "top_k"):
            stores[mode] = ResultStore(tempfile.mkdtemp(prefix="apate-bench-store-"), 1 << 30)
            started = time.perf_counter()
            result = analyse_path(clip, settings, detector, DetectParams(fps=args.fps, heatmaps=mode), store=stores[mode])
            elapsed = time.perf_counter() - started
            timings[mode] = min(timings.get(mode, float("inf")), elapsed)
            frames = len(result.frames)
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024  # Linux: KiB

    media = intake_file(clip, settings)
    reopen = min(_timed(lambda: analyse_media(media, detector, DetectParams(fps=args.fps, heatmaps="all"),
                                              store=stores["all"])) for _ in range(5))
    reopen_intake = min(_timed(lambda: analyse_path(clip, settings, detector, DetectParams(fps=args.fps, heatmaps="all"),
                                                    store=stores["all"])) for _ in range(3))
    hit = analyse_media(media, detector, DetectParams(fps=args.fps, heatmaps="all"), store=stores["all"])
    assert hit.from_store

    decode = fwd_bwd = tight_bwd = float("inf")
    for _ in range(args.repeat):
        d, f, t = floor_seconds(clip, detector, args.fps, DetectParams().batch_size)
        decode, fwd_bwd, tight_bwd = min(decode, d), min(fwd_bwd, f), min(tight_bwd, t)
    floor, tight = decode + fwd_bwd, decode + tight_bwd

    print(f"\nframes analysed: {frames}")
    print(f"floor: decode {decode:.2f} s + forward/backward {fwd_bwd:.2f} s = {floor:.2f} s")
    print(f"tight floor (backward from the CAM layer only, as the pipeline does): decode {decode:.2f} s + "
          f"{tight_bwd:.2f} s = {tight:.2f} s")
    for mode, label in (("all", "heatmaps for every frame"), ("top_k", "heatmaps for the top 8")):
        ratio = timings[mode] / floor
        ok = "ok" if ratio <= TARGETS["ratio"] else "OVER"
        print(f"end to end ({label}): {timings[mode]:.2f} s, {frames / timings[mode]:.2f} frames/s, "
              f"ratio to floor {ratio:.2f} (target <= {TARGETS['ratio']}: {ok}), to the tight floor "
              f"{timings[mode] / tight:.2f}")
    print(f"re-open from the store: {reopen * 1000:.1f} ms (target <= {TARGETS['reopen_s'] * 1000:.0f} ms: "
          f"{'ok' if reopen <= TARGETS['reopen_s'] else 'OVER'}); with intake (sha256 + probe): "
          f"{reopen_intake * 1000:.1f} ms")
    print(f"peak RSS: {peak_gb:.2f} GB (target <= {TARGETS['rss_gb']} GB: {'ok' if peak_gb <= TARGETS['rss_gb'] else 'OVER'})")


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
