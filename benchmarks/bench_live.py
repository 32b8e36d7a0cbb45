"""Live page throughput and latency on this machine, with the default model.

Usage::

    python benchmarks/bench_live.py [--seconds 10] [--camera-fps 30] [--size 320x240] [--model NAME] [--threads N]

A simulated 640x480 camera at ``--camera-fps`` feeds ``LiveProcessor.process`` exactly as the WebRTC
callback does (mailbox, worker thread, overlay drawn on every returned frame), with the target rate
unlimited so the model runs as often as it can. Per configuration (no heatmap, heatmap, and face
mode on a real face with ``--faces``) it prints:

* processed fps: results per second the worker produced;
* latency: capture of a frame -> its result ready (median and 90th percentile); what a viewer sees
  is this plus up to one camera frame interval until the next outgoing frame carries it;
* callback ms: time ``process`` took per camera frame (median / worst): it must stay far below the
  camera interval, whatever inference costs;
* dropped: camera frames the worker never analysed (overwritten in the one-slot mailbox).

First it prints the time the model alone takes to score one frame at that size: the host's ceiling, which
moves between machines (28 ms on one 2-core host, 55 ms on another, the same day).

The figures depend on the cores free: the load average is printed with them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from apate_core.detect.pipeline import default_detector_name, load_detector  # noqa: E402  (the one default)
from apate_core.live import PROCESSING_SIZES, LiveOptions, LiveProcessor  # noqa: E402

GOAL_FPS, GOAL_SIZE = 15.0, "320x240"  # processed frames/s the Live page must reach at this size


def camera_frames(width: int = 640, height: int = 480, count: int = 30) -> list[np.ndarray]:
    """A moving synthetic scene (noise texture + a sliding bar), like Chromium's fake camera."""
    rng = np.random.default_rng(0)
    base = rng.integers(40, 200, (height, width, 3), dtype=np.uint8)
    frames = []
    for i in range(count):
        frame = base.copy()
        x = (i * 20) % (width - 40)
        frame[:, x:x + 40] = (230, 230, 230)
        frames.append(frame)
    return frames


def face_frames(width: int = 640, height: int = 480) -> list[np.ndarray]:
    import cv2
    import skimage.data

    face = cv2.resize(skimage.data.astronaut(), (height, height))
    canvas = np.zeros((height, width, 3), np.uint8)
    canvas[:, (width - height) // 2:(width - height) // 2 + height] = face
    return [canvas]


def scoring_ms(detector, size: tuple[int, int], repeats: int = 20) -> float:
    """Median ms to score one frame of ``size`` (w, h) with the detector alone: the host's own ceiling,
    so a low Live figure can be told apart from a slow machine."""
    frame = camera_frames(*size, count=1)[0]
    detector.logits([frame])  # warm-up
    times = []
    for _ in range(repeats):
        tick = time.perf_counter()
        detector.logits([frame])
        times.append(time.perf_counter() - tick)
    return float(np.median(times) * 1000.0)


def run(processor: LiveProcessor, frames: list[np.ndarray], seconds: float, camera_fps: float) -> dict:
    processor.reset()
    callback_s = []
    interval = 1.0 / camera_fps
    start = time.perf_counter()
    n = 0
    while time.perf_counter() - start < seconds:
        tick = time.perf_counter()
        processor.process(frames[n % len(frames)])
        callback_s.append(time.perf_counter() - tick)
        n += 1
        time.sleep(max(0.0, start + n * interval - time.perf_counter()))
    elapsed = time.perf_counter() - start
    stats = processor.stats()
    processor.stop()
    with processor._cond:
        history = list(processor._history)
    latencies = np.array([r.latency_s for r in history]) * 1000.0
    return {
        "processed_fps": len(history) / elapsed,
        "camera_fps": n / elapsed,
        "latency_ms": float(np.median(latencies)) if len(latencies) else float("nan"),
        "latency_p90_ms": float(np.percentile(latencies, 90)) if len(latencies) else float("nan"),
        "callback_ms": float(np.median(callback_s) * 1000.0),
        "callback_max_ms": float(np.max(callback_s) * 1000.0),
        "processed": len(history),
        "dropped": stats.dropped,
        "received": stats.received,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--camera-fps", type=float, default=30.0)
    parser.add_argument("--size", default="320x240", choices=list(PROCESSING_SIZES))
    parser.add_argument("--model", default=None, help="default: the dashboard's default detector")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--faces", action="store_true", help="also measure face mode on a real face")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    name = args.model or default_detector_name()
    detector = load_detector(name)
    size = PROCESSING_SIZES[args.size]
    load = os.getloadavg()
    print(f"model {detector.name} ({detector.architecture}, input {detector.config.input_size}), processing {args.size}, "
          f"camera 640x480 @ {args.camera_fps:g} fps, {args.seconds:g} s each, torch threads {torch.get_num_threads()}, "
          f"{os.cpu_count()} CPUs, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")
    alone = scoring_ms(detector, size)
    print(f"scoring one {args.size} frame with the model alone: {alone:.0f} ms median "
          f"(this host's ceiling about {1000.0 / alone:.0f} frames/s)")
    processor = LiveProcessor(detector)
    warm = camera_frames(count=2)
    for heat in (False, True):  # warm-up: first calls allocate
        processor.analyse(warm[0], options=LiveOptions(size=size, heatmap=heat))

    configs = [("whole frame, no heatmap", LiveOptions(size=size, target_fps=0), camera_frames()),
               ("whole frame, heatmap", LiveOptions(size=size, heatmap=True, target_fps=0), camera_frames())]
    if args.faces:
        configs += [("face mode, no heatmap", LiveOptions(size=size, face_mode=True, target_fps=0), face_frames()),
                    ("face mode, heatmap", LiveOptions(size=size, face_mode=True, heatmap=True, target_fps=0),
                     face_frames())]
    print(f"{'configuration':<26}{'processed fps':>14}{'latency ms (p50/p90)':>22}{'callback ms (p50/max)':>23}"
          f"{'dropped':>14}" + (f"  goal >= {GOAL_FPS:g} fps" if args.size == GOAL_SIZE else ""))
    for label, options, frames in configs:
        processor.configure(options=options)
        r = run(processor, frames, args.seconds, args.camera_fps)
        print(f"{label:<26}{r['processed_fps']:>14.1f}{r['latency_ms']:>13.0f} / {r['latency_p90_ms']:<6.0f}"
              f"{r['callback_ms']:>14.1f} / {r['callback_max_ms']:<6.1f}{r['dropped']:>7d} of {r['received']}"
              + (f"  {'ok' if r['processed_fps'] >= GOAL_FPS else 'UNDER'}" if args.size == GOAL_SIZE else ""))
    load = os.getloadavg()
    print(f"load average after: {load[0]:.1f}")


if __name__ == "__main__":
    main()
