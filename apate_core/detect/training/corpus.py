"""Build the in-house training/evaluation corpus: DATA_DIR/<split>/{real,fake}/*.png plus manifest.json.

Splits (by SOURCE photo, see sources.py): ``train`` and ``val`` (calibration, temperature) from the
train/val photos with the training decoder families; ``test`` from photos never trained on, same
families ("in distribution"); ``heldout`` from the test photos re-synthesised ONLY by the held-out
family (never seen in training). Each real crop has a generated twin made from the same pixels;
scale jitter happens before both, and the same re-encode policy (JPEG, or H.264 through libx264 at
CRF 18-40, 4:2:0 or 4:4:4, as an intra frame or as the P-frame ending a short camera move) is drawn
independently for both, so neither resampling nor image or video compression separates the classes
- only the decoder does.
"Real" also includes mildly degraded crops (bicubic down-up, slight blur): blur is not a cue.
"""

from __future__ import annotations

import io
import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image, ImageFilter

from ...errors import InputRefused
from ...progress import CancelToken, ProgressCallback, check_cancelled, no_progress
from .decoders import FAMILIES, DecoderVariant, resynthesise, train_decoders
from .sources import Photo, load_photos


@dataclass(frozen=True)
class CorpusOptions:
    holdout: str = "pixelshuffle"
    seed: int = 0
    crop: int = 128
    crops_train: int = 48  # per train photo (each gives one real and one fake image)
    crops_eval: int = 40  # per val/test photo
    decoder_variants: int = 2
    decoder_steps: int = 240
    decoder_batch: int = 8
    decoder_lr: float = 3e-3
    decoder_widths: tuple[int, ...] = (16, 20)
    jpeg_prob: float = 0.3  # each image (either class, drawn independently): JPEG, else H.264, else untouched
    jpeg_quality: tuple[int, int] = (60, 95)
    h264_prob: float = 0.4
    h264_crf: tuple[int, int] = (18, 40)
    h264_yuv444_prob: float = 0.25  # else yuv420p (chroma subsampled)
    h264_pframe_prob: float = 0.5  # a P-frame at the end of a short move, else an intra frame
    degrade_prob: float = 0.3

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


@dataclass
class CorpusSummary:
    root: Path
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB")).copy()


def h264_reencode(image: np.ndarray, crf: int, pix_fmt: str = "yuv420p", *, shift: tuple[int, int] = (0, 0),
                  frames: int = 1) -> np.ndarray:
    """The image after one trip through libx264 (PyAV) at ``crf``: quantised DCT blocks, deblocking and, with
    yuv420p, chroma subsampling. ``frames`` > 1 encodes a short camera move that ends on the image itself
    (each earlier frame is the image shifted by a fraction of ``shift`` px, edges reflected), so the image
    comes back as a motion-predicted P-frame, as most frames of a real video are; 1 gives an intra frame."""
    import av

    height, width = image.shape[:2]
    if height % 2 or width % 2:
        raise ValueError(f"H.264 needs even sides, got {width}x{height}")
    pad = max(abs(shift[0]), abs(shift[1]))
    canvas = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="reflect") if pad else image
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.options = {"crf": str(int(crf)), "preset": "medium", "threads": "1"}
        for k in range(frames):
            t = 1.0 - k / max(frames - 1, 1)  # 1 -> 0: the move ends on the unshifted image
            dy, dx = pad + int(round(shift[0] * t)), pad + int(round(shift[1] * t))
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(canvas[dy:dy + height, dx:dx + width]),
                                               format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    buffer.seek(0)
    with av.open(buffer) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    return np.ascontiguousarray(decoded[-1])


def _grey(image: np.ndarray) -> np.ndarray:
    y = np.round(image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32))
    return np.repeat(np.clip(y, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)


def match_colour(image: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per-channel affine colour transfer (mean/std) from reference: a short-trained decoder's global colour
    drift must not be the cue; an affine map per channel keeps the decoder's spatial fingerprint intact."""
    x = image.astype(np.float32)
    ref = reference.astype(np.float32)
    mx, sx = x.mean(axis=(0, 1)), x.std(axis=(0, 1))
    mr, sr = ref.mean(axis=(0, 1)), ref.std(axis=(0, 1))
    scale = np.clip(sr / np.maximum(sx, 1e-3), 0.5, 2.0)
    return np.clip(np.round((x - mx) * scale + mr), 0, 255).astype(np.uint8)


def sample_crop(photo: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A size x size crop at a random scale in [0.5, 1] (1 with probability 0.3), randomly flipped."""
    h, w = photo.shape[:2]
    scale = 1.0 if rng.random() < 0.3 else float(rng.uniform(0.5, 1.0))
    region = min(h, w, int(np.ceil(size / scale)))
    scale = size / region
    top, left = int(rng.integers(h - region + 1)), int(rng.integers(w - region + 1))
    crop = photo[top:top + region, left:left + region]
    if region != size:
        crop = np.asarray(Image.fromarray(crop).resize((size, size), Image.BICUBIC))
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return np.array(crop, dtype=np.uint8, copy=True)


def degrade(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mild classical processing a camera photo may have had: bicubic down-up or a slight blur."""
    size = image.shape[0]
    im = Image.fromarray(image)
    if rng.random() < 0.5:
        small = max(8, int(round(size * rng.uniform(0.5, 0.85))))
        im = im.resize((small, small), Image.BICUBIC).resize((size, size), Image.BICUBIC)
    else:
        im = im.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.4, 1.0))))
    return np.asarray(im)


def post_process(image: np.ndarray, opts: CorpusOptions, rng: np.random.Generator) -> tuple[np.ndarray, Optional[str]]:
    """A re-encode drawn from the corpus policy: JPEG, H.264 (intra or P-frame, 4:2:0 or 4:4:4) or none; the
    same policy for both classes, drawn independently, so no codec is a label cue."""
    draw = rng.random()
    if draw < opts.jpeg_prob:
        q = int(rng.integers(opts.jpeg_quality[0], opts.jpeg_quality[1] + 1))
        return _jpeg(image, q), f"jpeg q{q}"
    if draw < opts.jpeg_prob + opts.h264_prob:
        crf = int(rng.integers(opts.h264_crf[0], opts.h264_crf[1] + 1))
        pix_fmt = "yuv444p" if rng.random() < opts.h264_yuv444_prob else "yuv420p"
        pframe = rng.random() < opts.h264_pframe_prob
        shift = (int(rng.integers(-4, 5)), int(rng.integers(-4, 5))) if pframe else (0, 0)
        out = h264_reencode(image, crf, pix_fmt, shift=shift, frames=5 if pframe else 1)
        return out, f"h264 crf{crf} {pix_fmt} {'P' if pframe else 'I'}"
    return image, None


def _write(path: Path, image: np.ndarray) -> None:
    Image.fromarray(image).save(path, format="PNG", compress_level=1)


def _make_split(root: Path, split: str, photos: list[Photo], decoders: list[DecoderVariant], per_photo: int,
                opts: CorpusOptions, rng: np.random.Generator, cancel: Optional[CancelToken]) -> tuple[dict, list]:
    real_dir, fake_dir = root / split / "real", root / split / "fake"
    real_dir.mkdir(parents=True, exist_ok=True)
    fake_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for photo in photos:
        check_cancelled(cancel)
        stem = photo.name.replace(".", "_")
        for k in range(per_photo):
            crop = sample_crop(photo.image, opts.crop, rng)
            degraded = bool(rng.random() < opts.degrade_prob)
            real = degrade(crop, rng) if degraded else crop
            decoder = decoders[int(rng.integers(len(decoders)))]
            fake = match_colour(resynthesise(decoder.model, crop), crop)
            if photo.grey:
                fake = _grey(fake)
            real, post_real = post_process(real, opts, rng)
            fake, post_fake = post_process(fake, opts, rng)
            name = f"{stem}_{k:03d}.png"
            _write(real_dir / name, real)
            _write(fake_dir / name, fake)
            records.append({"file": name, "photo": photo.name, "decoder": decoder.name, "degraded": degraded,
                            "post_real": post_real, "post_fake": post_fake})
    n = len(photos) * per_photo
    return {"real": n, "fake": n}, records


def build_corpus(out_dir: str | Path, options: CorpusOptions = CorpusOptions(), *,
                 progress: ProgressCallback = no_progress, cancel: Optional[CancelToken] = None) -> CorpusSummary:
    """Train the re-synthesis decoders and write every split under out_dir (which must be empty or new)."""
    import torch

    if options.holdout not in FAMILIES:
        raise InputRefused(f"Unknown decoder family {options.holdout!r} to hold out", accepted=", ".join(FAMILIES))
    root = Path(out_dir)
    if root.exists() and any(root.iterdir()):
        raise InputRefused(f"{root} is not empty", accepted="a new or empty output directory")
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    photos = {split: load_photos(split) for split in ("train", "val", "test")}
    if not photos["train"] or not photos["test"]:
        raise InputRefused("The bundled sample photos are missing", accepted="scikit-image with its data files")

    progress(0.0, "training re-synthesis decoders")
    train_families = [f for f in FAMILIES if f != options.holdout]
    decoders = train_decoders(
        [*train_families, options.holdout], [p.image for p in photos["train"]], variants=options.decoder_variants,
        steps=options.decoder_steps, seed=options.seed, widths=options.decoder_widths,
        batch_size=options.decoder_batch, lr=options.decoder_lr,
        progress=lambda f, m: progress(0.7 * f, m), cancel=cancel)
    decoder_seconds = time.perf_counter() - started
    in_dist = [v for f in train_families for v in decoders[f]]
    held = decoders[options.holdout]

    counts, records = {}, {}
    plan = [("train", photos["train"], in_dist, options.crops_train),
            ("val", photos["val"], in_dist, options.crops_eval),
            ("test", photos["test"], in_dist, options.crops_eval),
            ("heldout", photos["test"], held, options.crops_eval)]
    with torch.inference_mode():
        for i, (split, split_photos, split_decoders, per_photo) in enumerate(plan):
            rng = np.random.default_rng([options.seed, i, 7])
            counts[split], records[split] = _make_split(root, split, split_photos, split_decoders, per_photo,
                                                        options, rng, cancel)
            progress(0.7 + 0.3 * (i + 1) / len(plan), f"wrote {split}: {counts[split]}")

    manifest = {
        "format": "apate-corpus/1",
        "options": options.to_dict(),
        "families": {"train": train_families, "heldout": options.holdout},
        "photos": {split: [p.name for p in ps] for split, ps in photos.items()},
        "decoders": {f: [v.describe() for v in vs] for f, vs in decoders.items()},
        "counts": counts,
        "splits": {"train": "training", "val": "calibration / model selection (temperature)",
                   "test": "in distribution: unseen photos, training decoder families",
                   "heldout": f"unseen photos, held-out family {options.holdout!r} only"},
        "seconds": {"decoders": round(decoder_seconds, 1), "total": round(time.perf_counter() - started, 1)},
        "software": {"python": platform.python_version(), "torch": torch.__version__},
        "records": records,
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return CorpusSummary(root=root, counts=counts, manifest=manifest)
