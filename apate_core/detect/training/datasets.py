"""Labelled image collections for training and evaluating detectors, in one registry.

A data source yields ``LabelledImage`` rows: a file, its label (1 = generated), the generator family
and the repository it came from. Evaluation groups by those two columns, so a split can hold out a
whole source repository or a whole generator family (``apate evaluate --holdout``).

Sources read their files in place through settings; nothing is copied into the project.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from ...errors import InputRefused
from ...settings import Settings, load_settings

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


@register_data_source("detect-data-taef2")
def detect_data_taef2(settings: Settings) -> list[LabelledImage]:
    """Aligned fakes: camera photos of detect-data re-synthesised by TAEF2 (FLUX.2's tiny autoencoder,
    encode -> decode, as a latent-diffusion decoder renders), made once and kept as PNG under the cache
    directory. Same content as their real twins, so only the decoder's trace tells them apart."""
    from .resynth import create_resynthesiser

    reals = [r for r in detect_data(settings) if r.label == REAL and r.source in ALIGNED_SOURCES][::ALIGNED_EVERY]
    folder = settings.cache_path / "resynth" / "taef2"
    folder.mkdir(parents=True, exist_ok=True)
    rows, missing = [], []
    for real in reals:
        target = folder / f"{real.path.stem}.png"
        rows.append(LabelledImage(path=target, label=GENERATED, family="TAEF2 (aligned)", source="apate/taef2",
                                  generator="TAEF2 round trip of a detect-data photo"))
        if not target.is_file():
            missing.append((real.path, target))
    if missing:
        with create_resynthesiser("taef2") as resynth:
            for source_path, target in missing:
                _write_resynthesis(resynth, source_path, target)
    return rows


def _write_resynthesis(resynth, source_path: Path, target: Path) -> None:
    import numpy as np
    from PIL import Image

    from .embeddings import load_rgb

    image = load_rgb(source_path)
    scale = min(1.0, ALIGNED_SIDE / max(image.shape[:2]))
    if scale < 1.0:
        size = (max(8, round(image.shape[1] * scale)), max(8, round(image.shape[0] * scale)))
        image = np.asarray(Image.fromarray(image).resize(size, Image.LANCZOS))
    partial = target.with_suffix(".partial.png")
    Image.fromarray(resynth(image)).save(partial)
    partial.replace(target)
