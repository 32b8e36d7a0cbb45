"""Make Apate's sample media from photos bundled with scikit-image (no downloads).

    python scripts/make_samples.py

- astronaut.jpg: NASA's public-domain portrait of Eileen Collins (scikit-image's `astronaut`).
- coffee_pan.mp4: a slow camera-style pan and zoom over scikit-image's `coffee` photo, H.264, 6 s.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from PIL import Image
from skimage import data

OUT = Path(__file__).resolve().parent.parent / "assets" / "samples"
SIZE = (640, 360)
FPS = 24
SECONDS = 6


def pan_frames(photo: np.ndarray, seconds: float = SECONDS, fps: int = FPS, size=SIZE):
    """Crops that drift and zoom across the photo, resized to the output size: a smooth, real-looking move."""
    h, w = photo.shape[:2]
    image = Image.fromarray(photo)
    frames = int(seconds * fps)
    for i in range(frames):
        t = i / max(frames - 1, 1)
        zoom = 1.0 - 0.25 * t  # crop shrinks: the camera pushes in
        cw, ch = int(w * zoom), int(w * zoom * size[1] / size[0])
        ch = min(ch, h)
        x0 = int((w - cw) * (0.2 + 0.6 * t))
        y0 = int((h - ch) * 0.5)
        yield np.asarray(image.crop((x0, y0, x0 + cw, y0 + ch)).resize(size, Image.Resampling.BICUBIC))


def write_h264(path: Path, frames, fps: int = FPS, size=SIZE) -> None:
    with av.open(str(path), "w", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "23", "preset": "slow"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    Image.fromarray(data.astronaut()).save(OUT / "astronaut.jpg", quality=92)
    write_h264(OUT / "coffee_pan.mp4", pan_frames(data.coffee()))
    for path in sorted(OUT.iterdir()):
        print(f"{path.relative_to(OUT.parent.parent)}  {path.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
