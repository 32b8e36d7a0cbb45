"""Labelled image collections for training and evaluating detectors, in one registry.

A data source yields ``LabelledImage`` rows: a file, its label (1 = generated), the generator family
and the repository it came from. Evaluation groups by those two columns, so a split can hold out a
whole source repository or a whole generator family (``apate evaluate --holdout``).

Sources read their files in place through settings; nothing is copied into the project.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

from ...errors import InputRefused
from ...settings import Settings, load_settings

if TYPE_CHECKING:  # numpy and torch load on use: listing the sources stays light
    import numpy as np

    from .resynth import Resynthesiser

REAL, GENERATED = 0, 1


@dataclass(frozen=True)
class LabelledImage:
    path: Path
    label: int  # 1 generated, 0 real
    family: str  # generator family; "camera" for real photos
    source: str  # repository (or collection) the file came from
    generator: str = ""

    @property
    def group(self) -> str:
        """What a held-out split keys on besides the family: source and class together."""
        return f"{self.source}:{self.label}"


DataSource = Callable[[Settings], list[LabelledImage]]
_SOURCES: dict[str, DataSource] = {}


def register_data_source(name: str) -> Callable[[DataSource], DataSource]:
    def wrap(fn: DataSource) -> DataSource:
        if name in _SOURCES:
            raise ValueError(f"data source {name!r} is already registered")
        _SOURCES[name] = fn
        return fn

    return wrap


def list_data_sources() -> list[str]:
    return sorted(_SOURCES)


def load_data_source(name: str, settings: Optional[Settings] = None) -> list[LabelledImage]:
    if name not in _SOURCES:
        raise InputRefused(f"Unknown data source {name!r}", accepted=", ".join(list_data_sources()))
    return _SOURCES[name](settings or load_settings())


def read_manifest(root: Path) -> list[LabelledImage]:
    """Rows of ``root/MANIFEST.tsv`` (file, label, generator_or_camera, family, source_repo, ...)."""
    manifest = root / "MANIFEST.tsv"
    if not manifest.is_file():
        raise InputRefused(f"{manifest} does not exist",
                           accepted="a detect-data folder with MANIFEST.tsv (set APATE_DETECT_DATA)")
    rows = []
    with open(manifest, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            label = GENERATED if row["label"] == "generated" else REAL
            rows.append(LabelledImage(path=root / row["file"], label=label,
                                      family=row["family"] if label else "camera",
                                      source=row["source_repo"], generator=row.get("generator_or_camera", "")))
    return rows


def detect_data_root(settings: Settings) -> Path:
    if not settings.detect_data:
        raise InputRefused("APATE_DETECT_DATA is not set",
                           accepted="the path of the shared detect-data folder (../shared/detect-data)")
    return Path(settings.detect_data).expanduser()


@register_data_source("detect-data")
def detect_data(settings: Settings) -> list[LabelledImage]:
    """~1,900 real and generated images from public repositories (../shared/detect-data)."""
    return read_manifest(detect_data_root(settings))


@register_data_source("testdata-generated")
def testdata_generated(settings: Settings) -> list[LabelledImage]:
    """The few real-world generated images of ../shared/testdata/generated (evaluation only) and the
    real camera stills of testdata/real and testdata/c2pa."""
    if not settings.testdata:
        raise InputRefused("APATE_TESTDATA is not set", accepted="the path of ../shared/testdata")
    root = Path(settings.testdata).expanduser()
    rows = [LabelledImage(path=p, label=GENERATED, family="testdata-generated", source="testdata/generated")
            for p in _images(root / "generated" / "fake")]
    rows += [LabelledImage(path=p, label=REAL, family="camera", source=f"testdata/{p.parent.name}")
             for folder in ("generated/real", "real", "c2pa") for p in _images(root / folder)]
    return rows


def _images(folder: Path) -> list[Path]:
    return [p for p in sorted(folder.glob("*")) if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp")]


ALIGNED_SOURCES = ("EliSchwartz/imagenet-sample-images", "CompVis/taming-transformers", "JSBundela/Spot-the-Fake-Photo")
ALIGNED_EVERY = 4  # every fourth real photo of those repositories
ALIGNED_SIDE = 512  # longest side the round trip runs at (TAEF2 takes seconds per image on a CPU)
UPSCALED_SIDE = 384  # the x4 upscalers take 7-10 s per 384-px photo on one CPU thread (15-17 s at 512 px)


@dataclass(frozen=True)
class AlignedFakes:
    """Aligned fakes of a subset of detect-data's camera photos, made by one re-synthesiser (resynth.py)."""

    resynthesiser: str
    family: str
    generator: str
    side: int = ALIGNED_SIDE


ALIGNED_FAKES = {
    "detect-data-taef2": AlignedFakes("taef2", "TAEF2 (aligned)", "TAEF2 round trip of a detect-data photo"),
    "detect-data-realesrgan": AlignedFakes(
        "realesrgan-x4plus", "Real-ESRGAN (aligned)", "Real-ESRGAN x4plus upscale of a detect-data photo shrunk x4",
        UPSCALED_SIDE),
    "detect-data-realsr": AlignedFakes(
        "realsr-x4", "RealSR (aligned)", "RealSR DF2K x4 upscale of a detect-data photo shrunk x4", UPSCALED_SIDE),
    "detect-data-waifu2x": AlignedFakes(
        "waifu2x", "waifu2x (aligned)", "waifu2x upconv_7 photo x2 upscale of a detect-data photo shrunk x2"),
}


def aligned_fakes(settings: Settings, spec: AlignedFakes) -> list[LabelledImage]:
    """Aligned fakes: every ALIGNED_EVERY-th camera photo of the ALIGNED_SOURCES repositories of detect-data,
    re-synthesised at ``spec.side`` (TAEF2: FLUX.2's tiny autoencoder, encode -> decode, as a latent-diffusion
    decoder renders; the upscalers: shrunk by their factor and grown back), made once and kept as PNG under
    ``<cache>/resynth/<re-synthesiser>``. Same content as their real twins, so only the trace tells them apart."""
    from .resynth import create_resynthesiser

    reals = [r for r in detect_data(settings) if r.label == REAL and r.source in ALIGNED_SOURCES][::ALIGNED_EVERY]
    folder = settings.cache_path / "resynth" / spec.resynthesiser
    folder.mkdir(parents=True, exist_ok=True)
    rows = [LabelledImage(path=folder / f"{real.path.stem}.png", label=GENERATED, family=spec.family,
                          source=f"apate/{spec.resynthesiser}", generator=spec.generator) for real in reals]
    missing = [(real.path, row.path) for real, row in zip(reals, rows) if not row.path.is_file()]
    if missing:
        with create_resynthesiser(spec.resynthesiser) as resynth:
            for source_path, target in missing:
                _write_resynthesis(resynth, source_path, target, spec.side)
    return rows


for _name, _spec in ALIGNED_FAKES.items():
    register_data_source(_name)(functools.partial(aligned_fakes, spec=_spec))


def _write_resynthesis(resynth: Resynthesiser, source_path: Path, target: Path, side: int) -> None:
    from .embeddings import load_rgb

    _write_png(resynth(_fit(load_rgb(source_path), side)), target)


def _fit(image: np.ndarray, side: int) -> np.ndarray:
    """The image with its longest side at most ``side`` (Lanczos)."""
    import numpy as np
    from PIL import Image

    scale = min(1.0, side / max(image.shape[:2]))
    if scale < 1.0:
        size = (max(8, round(image.shape[1] * scale)), max(8, round(image.shape[0] * scale)))
        image = np.asarray(Image.fromarray(image).resize(size, Image.LANCZOS))
    return image


def _write_png(image: np.ndarray, target: Path) -> None:
    """Written beside the target, then renamed: an interrupted run leaves no truncated PNG behind."""
    from PIL import Image

    partial = target.with_suffix(".partial.png")
    Image.fromarray(image).save(partial)
    partial.replace(target)


DCGAN_FACES = 256  # 64x64 faces, seeds 0..255


@register_data_source("dcgan-faces")
def dcgan_faces(settings: Settings) -> list[LabelledImage]:
    """DCGAN_FACES 64x64 faces of gan-face-generate's DCGAN (trained on DigiFace-1M renders), one per seed,
    made once and kept as PNG under ``<cache>/generated/dcgan-faces``. A generator, not a re-synthesiser: the
    faces have no real twins."""
    from .dcgan import DcganFaces

    folder = settings.cache_path / "generated" / "dcgan-faces"
    folder.mkdir(parents=True, exist_ok=True)
    rows = [LabelledImage(path=folder / f"seed{seed:04d}.png", label=GENERATED, family="DCGAN",
                          source="apate/dcgan-faces", generator=f"gan-face-generate 1.1.1 DCGAN, seed {seed}")
            for seed in range(DCGAN_FACES)]
    missing = [seed for seed, row in enumerate(rows) if not row.path.is_file()]
    if missing:
        with DcganFaces() as gan:
            for seed, face in zip(missing, gan(missing)):
                _write_png(face, rows[seed].path)
    return rows
