"""Make Apate's sample media from photos bundled with scikit-image (no downloads).

    python scripts/make_samples.py

- astronaut.jpg: NASA's public-domain portrait of Eileen Collins (scikit-image's `astronaut`).
- coffee_pan.mp4: a slow camera-style pan and zoom over scikit-image's `coffee` photo, H.264, 6 s (real).
- coffee_pan_resynth_middle.mp4: the same clip whose middle segment (2 s to 4 s) is re-synthesised, frame by
  frame, by a small pixel-shuffle decoder: the family the shipped detector never saw in training.
- astronaut_face_resynth.png: the portrait with only the face region (found by OpenCV's bundled cascade)
  re-synthesised by the same decoder.

The decoder is trained here for a few hundred steps on the detector's *training* photos (seeded), so the
samples are reproducible and the coffee and astronaut photos are never part of its training.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import torch
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


RESYNTH_START, RESYNTH_END = 2.0, 4.0  # seconds of the demo clip that are re-synthesised


def train_demo_decoder():
    from apate_core.detect.training.decoders import train_decoder
    from apate_core.detect.training.sources import load_photos

    torch.manual_seed(0)
    photos = [p.image for p in load_photos("train")]
    return train_decoder("pixelshuffle", photos, width=32, seed=7, steps=400).model


def resynth(decoder, image: np.ndarray) -> np.ndarray:
    """Re-synthesise an image region (cropped to a multiple of 4) with the decoder, colour-matched."""
    from apate_core.detect.training.corpus import match_colour
    from apate_core.detect.training.decoders import resynthesise

    h, w = (image.shape[0] // 4) * 4, (image.shape[1] // 4) * 4
    out = image.copy()
    out[:h, :w] = match_colour(resynthesise(decoder, image[:h, :w]), image[:h, :w])
    return out


def partly_resynthesised(frames, decoder, fps: int = FPS):
    for index, frame in enumerate(frames):
        inside = RESYNTH_START <= index / fps < RESYNTH_END
        yield resynth(decoder, frame) if inside else frame


def face_resynthesised(photo: np.ndarray, decoder) -> np.ndarray:
    from apate_core.detect.faces import detect_faces

    faces = detect_faces(photo)
    if not faces:
        raise SystemExit("no face found in the sample portrait")
    box = faces[0]
    margin = int(0.25 * max(box.w, box.h))
    top, left = max(box.y - margin, 0), max(box.x - margin, 0)
    bottom, right = min(box.y + box.h + margin, photo.shape[0]), min(box.x + box.w + margin, photo.shape[1])
    out = photo.copy()
    out[top:bottom, left:right] = resynth(decoder, photo[top:bottom, left:right])
    return out


def write_h264(path: Path, frames, fps: int = FPS, size=SIZE, crf: int = 23) -> None:
    with av.open(str(path), "w", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": "slow"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    Image.fromarray(data.astronaut()).save(OUT / "astronaut.jpg", quality=92)
    write_h264(OUT / "coffee_pan.mp4", pan_frames(data.coffee()))
    decoder = train_demo_decoder()
    # A low CRF keeps the decoder's fingerprint visible through H.264, as a careful forger's export would.
    write_h264(OUT / "coffee_pan_resynth_middle.mp4", partly_resynthesised(pan_frames(data.coffee()), decoder), crf=12)
    Image.fromarray(face_resynthesised(data.astronaut(), decoder)).save(OUT / "astronaut_face_resynth.png")
    for path in sorted(OUT.iterdir()):
        print(f"{path.relative_to(OUT.parent.parent)}  {path.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
