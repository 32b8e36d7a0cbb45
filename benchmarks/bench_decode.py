"""Time frame sampling with the ``sequential`` and ``seek`` strategies of ``iter_frames``.

Usage::

    APATE_TESTDATA=../shared/testdata python benchmarks/bench_decode.py [--video PATH] [--fps 1] [--repeat 3]

Measures, in one run so the ratios are comparable:

* the given video (default ``$APATE_TESTDATA/real/cockatoo.mp4``);
* ``$APATE_TESTDATA/c2pa/C-recorded-as-mov.mov`` when present (a real short-GOP clip, 2750x1834);
* synthetic clips (30 s, 640x360, 24 fps) with a keyframe every 10 s (long GOP), 0.5 s (short GOP), and 1.5 s and
  3 s around the break-even point.

The synthetic pattern is cheap to decode, so real footage favours seeking a little more (seek overhead is fixed, the
decode it saves is not). With 1 fps sampling, the 0.5 s clip's keyframes fall exactly on the targets (best case).

Each cell is the best of ``--repeat`` runs (the machine may be shared). ``auto`` shows what ``iter_frames`` picks.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import media_factory as mf  # noqa: E402
from apate_core.media.video import choose_strategy, iter_frames, probe_video  # noqa: E402

CLIP_SECONDS, CLIP_FPS, CLIP_SIZE = 30, 24, (640, 360)
GOPS = (("synthetic long GOP", 10.0), ("synthetic short GOP", 0.5), ("synthetic GOP", 1.5), ("synthetic GOP", 3.0))


def _time(path: Path, fps: float, strategy: str, info, repeat: int) -> tuple[float, int]:
    best, count = float("inf"), 0
    for _ in range(repeat):
        started = time.perf_counter()
        count = sum(1 for _ in iter_frames(path, fps, strategy=strategy, info=info))
        best = min(best, time.perf_counter() - started)
    return best, count


def _synthetic(folder: Path) -> list[tuple[str, Path]]:
    clips = []
    for name, gop_seconds in GOPS:
        path = folder / f"gop{gop_seconds}.mp4"
        started = time.perf_counter()
        mf.make_video(path, "mp4", seconds=CLIP_SECONDS, fps=CLIP_FPS, size=CLIP_SIZE,
                      gop=int(gop_seconds * CLIP_FPS))
        print(f"made {path.name} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        clips.append((f"{name} {gop_seconds:g} s", path))
    return clips


def main() -> None:
    testdata = Path(os.environ.get("APATE_TESTDATA", ROOT.parent / "shared/testdata"))
    default_video = testdata / "real/cockatoo.mp4"
    extra = testdata / "c2pa/C-recorded-as-mov.mov"
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=default_video)
    parser.add_argument("--fps", type=float, default=1.0, help="samples per second (default 1)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        real = [p for p in (args.video, extra if args.video == default_video else None) if p and p.exists()]
        clips = [(p.name, p) for p in real] + _synthetic(Path(tmp))
        if not args.video.exists():
            print(f"{args.video} not found: set APATE_TESTDATA or pass --video", file=sys.stderr)
        header = f"{'video':30} {'size':>9} {'keyint s':>8} {'samples':>7} {'sequential s':>12} {'seek s':>8}"
        print(f"sampling at {args.fps:g} fps, best of {args.repeat}\n{header} {'seek/seq':>8} {'auto':>10}")
        for name, path in clips:
            info = probe_video(path)
            seq, n = _time(path, args.fps, "sequential", info, args.repeat)
            seek, _ = _time(path, args.fps, "seek", info, args.repeat)
            size = f"{info.display_width}x{info.display_height}"
            print(f"{name:30} {size:>9} {info.keyframe_interval or 0:8.2f} {n:7d} {seq:12.2f} {seek:8.2f} "
                  f"{seek / seq:8.2f} {choose_strategy(info, args.fps):>10}")


if __name__ == "__main__":
    main()
