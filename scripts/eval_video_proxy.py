"""A proxy video evaluation: no generated video is available here, so each generated still of
``$APATE_TESTDATA/generated/fake`` becomes a short clip (a slow pan and zoom, 1280x720, H.264 CRF 23,
like a platform re-upload) and is analysed by the Detect pipeline next to the real camera clips of
``testdata/real`` and ``testdata/c2pa``. It measures whether frames of generated content survive a
video codec and the video verdict, not how Apate does on generated VIDEO (motion, temporal traces).

    APATE_TESTDATA=../shared/testdata python scripts/eval_video_proxy.py [--model NAME]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from apate_core.detect import create_detector  # noqa: E402
from apate_core.detect.pipeline import DetectParams, analyse_path, default_detector_name  # noqa: E402
from apate_core.settings import load_settings  # noqa: E402

SIZE, SECONDS, FPS = (1280, 720), 4, 25


def pan_clip(image: Image.Image, path: Path) -> Path:
    import av

    image = image.convert("RGB")
    scale = max(SIZE[0] / image.width, SIZE[1] / image.height) * 1.15
    big = image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS)
    frames = SECONDS * FPS
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        stream.options = {"crf": "23", "preset": "veryfast"}
        for k in range(frames):
            t = k / (frames - 1)
            left = round((big.width - SIZE[0]) * t)
            top = round((big.height - SIZE[1]) * (1 - t))
            crop = np.asarray(big.crop((left, top, left + SIZE[0], top + SIZE[1])))
            for packet in stream.encode(av.VideoFrame.from_ndarray(crop, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=default_detector_name())
    args = parser.parse_args()
    testdata = Path(os.environ.get("APATE_TESTDATA", ""))
    if not (testdata / "generated" / "fake").is_dir():
        print("error: set APATE_TESTDATA to ../shared/testdata", file=sys.stderr)
        return 2
    detector = create_detector(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(cache_dir=str(Path(tmp) / "cache"))
        fakes = [pan_clip(Image.open(p), Path(tmp) / f"{p.stem}.mp4")
                 for p in sorted((testdata / "generated" / "fake").iterdir())]
        reals = [p for folder in ("real", "c2pa") for p in sorted((testdata / folder).iterdir())
                 if p.suffix.lower() in (".mp4", ".mov")]
        rows = []
        for label, paths in ((1, fakes), (0, reals)):
            for path in paths:
                result = analyse_path(path, settings, detector, DetectParams(cam=None))
                rows.append((label, result.score, result.label, path.name))
                print(f"{'generated' if label else 'real':9s} {result.score:.3f} {result.label:9s} {path.name}", flush=True)
    from sklearn.metrics import roc_auc_score

    y = [r[0] for r in rows]
    s = [r[1] for r in rows]
    flagged = [r[2] in ("fake", "segments", "declared") for r in rows]
    print(f"\n{detector.name}: ROC-AUC {roc_auc_score(y, s):.3f} on {sum(y)} generated-still clips and "
          f"{len(y) - sum(y)} real clips; flagged: generated {np.mean([f for f, l in zip(flagged, y) if l]):.0%}, "
          f"real {np.mean([f for f, l in zip(flagged, y) if not l]):.0%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
