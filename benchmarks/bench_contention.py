"""The CLIP encoder's time per image when other work shares the CPU, with onnxruntime's idle threads
busy-waiting (its default) or sleeping.

    python benchmarks/bench_contention.py [--images 24] [--busy 0 1 2]

Each load is 0, 1 or 2 extra processes spinning on the CPU, standing in for what else a busy server does at the
same time (other sessions' page runs, uploads, browsers on the same machine). Both encoders run alternately in one
process over the same images, so the ratios compare like with like. Prints median ms per image.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from apate_core.detect import backbones  # noqa: E402
from apate_core.detect.clip_vit import OnnxClipEncoder  # noqa: E402

LAST_BLOCK = 9  # the shipped probe reads blocks 3-9


def _spin(stop) -> None:
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


def _median_ms(encoder: OnnxClipEncoder, images: torch.Tensor) -> float:
    times = []
    for i in range(len(images)):
        start = time.perf_counter()
        encoder(images[i:i + 1], layers=(LAST_BLOCK,))
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--busy", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rounds", type=int, default=2, help="alternations of the two encoders per load")
    args = parser.parse_args()

    path = backbones.original_path("clip_vit_b16")
    if not path.is_file():
        sys.exit(f"{path} is missing: run `python -m apate_core.detect.backbones` first")
    encoders = {spinning: OnnxClipEncoder(str(path), last_block=LAST_BLOCK, spinning=spinning)
                for spinning in (True, False)}
    images = torch.from_numpy(np.random.default_rng(0).normal(0, 1, (args.images, 3, 224, 224)).astype(np.float32))
    for encoder in encoders.values():
        encoder(images[:2], layers=(LAST_BLOCK,))  # warm-up
    print(f"{args.images} images a run, {args.rounds} runs per encoder and load; median ms per image")
    for busy in args.busy:
        stop = mp.Event()
        spinners = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(busy)]
        for proc in spinners:
            proc.start()
        try:
            figures = {True: [], False: []}
            for _ in range(args.rounds):
                for spinning, encoder in encoders.items():
                    figures[spinning].append(_median_ms(encoder, images))
        finally:
            stop.set()
            for proc in spinners:
                proc.join()
        spin, sleep = statistics.median(figures[True]), statistics.median(figures[False])
        print(f"{busy} busy process(es): spinning {spin:6.1f} ms, sleeping {sleep:6.1f} ms, "
              f"spinning / sleeping {spin / sleep:.2f}")


if __name__ == "__main__":
    main()
