"""Time the Protect attack: PGD-10 at 256x256 against the full released StarGAN configuration.

Usage::

    python benchmarks/bench_protect.py [--batch 8] [--iters 10] [--compare-iters 10] [--targets 1] [--threads N] \
        [--device cpu|cuda]

On a machine with CUDA it runs on the GPU unless ``--device cpu`` is given (run it twice for both figures).

Random weights (seeded) stand in for the released checkpoint: the time depends on the architecture only
(conv_dim 64, c_dim 5, repeat_num 6; 8.43 M parameters). Prints, from one run so the figures are comparable:

* seconds per image for one PGD run (warm), and the whole job for one image (attack + 8-bit quantisation +
  metrics + the five-transform robustness table), as ``run_protect_job`` does it;
* a batch of ``--batch`` same-size images attacked as one tensor against the same images one by one
  (images per second both ways, and the speed-up), at ``--compare-iters`` iterations (default: ``--iters``;
  fewer keeps the comparison short on a slow machine: every iteration costs the same, so the ratio holds).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from apate_core.protect import create_attack, image_to_tensor, load_generator  # noqa: E402
from apate_core.protect.job import GeneratorChoice, ImageInput, ProtectParams, run_protect_job  # noqa: E402
from apate_core.settings import load_settings  # noqa: E402


def photos(n: int, size: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, size)[None, :, None] * np.ones((size, 1, 3))
    return np.stack([np.clip(ramp + rng.normal(0, 25, ramp.shape), 0, 255).astype(np.uint8) for _ in range(n)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--compare-iters", type=int, default=0, help="iterations for the batch comparison")
    parser.add_argument("--targets", type=int, default=1, help="target conditions per perturbation (1..5)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    args = parser.parse_args()
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")

    def clock() -> float:  # GPU work is asynchronous: wait for it before reading the clock
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter()

    def tensor(rgb: np.ndarray) -> torch.Tensor:
        return image_to_tensor(rgb).to(device)

    if args.threads:
        torch.set_num_threads(args.threads)
    settings = load_settings({}, device=device, cache_dir="/tmp/apate-bench-protect")
    torch.manual_seed(0)
    generator = load_generator("stargan", device=device)  # released configuration, random weights
    params = sum(p.numel() for p in generator.parameters())
    names = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"][: args.targets]
    targets = [torch.tensor([[float(i == k) for k in range(5)]], device=device) for i in range(5)][: args.targets]
    attack = create_attack("pgd", epsilon=0.05, step_size=0.01, iterations=args.iters,
                           transferable=args.targets > 1)
    images = photos(args.batch, args.size)
    size = (args.size, args.size)
    print(f"StarGAN {params:,} parameters (released configuration, random weights); {device}, "
          f"{torch.get_num_threads()} torch threads; PGD-{args.iters}, eps 0.05, step 0.01, "
          f"{args.targets} target(s), {args.size}x{args.size} images, model input {size[0]}x{size[1]}")

    attack.run(generator, tensor(images[0][:64, :64]), targets, model_size=(64, 64))  # warm-up
    start = clock()
    attack.run(generator, tensor(images[0]), targets, model_size=size)
    print(f"one image, PGD-{args.iters} attack only:          {clock() - start:7.2f} s/image")

    k = args.compare_iters or args.iters
    compare = create_attack("pgd", epsilon=0.05, step_size=0.01, iterations=k, transferable=args.targets > 1)
    start = clock()
    for image in images:
        compare.run(generator, tensor(image), targets, model_size=size)
    one_by_one = clock() - start
    start = clock()
    compare.run(generator, tensor(images), targets, model_size=size)
    batched = clock() - start
    n = len(images)
    print(f"PGD-{k}, {n} images one by one:          {one_by_one:7.2f} s  ({n / one_by_one:.3f} images/s, "
          f"{one_by_one / n:.2f} s/image)")
    print(f"PGD-{k}, {n} images as one batch:        {batched:7.2f} s  ({n / batched:.3f} images/s, "
          f"{batched / n:.2f} s/image)")
    print(f"batch speed-up: x{one_by_one / batched:.2f}")

    choice = GeneratorChoice("stargan", "bench", None, {}, "random")
    job_params = ProtectParams(iterations=args.iters, targets=tuple(names))
    start = clock()
    run_protect_job([ImageInput("bench.png", "0" * 64, images[0])], choice, job_params, settings,
                    generator=generator)
    print(f"one image, whole job (+ metrics, robustness table): {clock() - start:7.2f} s/image")


if __name__ == "__main__":
    main()
