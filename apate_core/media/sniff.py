"""Identify a file's format from its first bytes, never from its name or declared MIME type."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

HEAD_BYTES = 4096


@dataclass(frozen=True)
class Sniffed:
    kind: str  # "image" | "video" | "unknown"
    format: str  # jpeg, png, webp, gif, tiff, bmp, heic, mp4, mov, mkv, webm, avi, flv, ...


def _iso_bmff(head: bytes) -> Optional[Sniffed]:
    """mp4/mov/HEIC share the ISO base media layout: an ``ftyp`` box whose brand tells them apart."""
    if head[4:8] != b"ftyp":
        # Old QuickTime files may open with another top-level atom.
        if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"):
            return Sniffed("video", "mov")
        return None
    brand = head[8:12]
    if brand in (b"heic", b"heix", b"mif1", b"msf1", b"avif", b"avis"):
        return Sniffed("image", "avif" if brand.startswith(b"avi") else "heic")
    if brand == b"qt  ":
        return Sniffed("video", "mov")
    if brand in (b"M4A ", b"M4B ", b"M4P "):
        return Sniffed("audio", "m4a")
    return Sniffed("video", "mp4")


def _matroska(head: bytes) -> Optional[Sniffed]:
    if not head.startswith(b"\x1a\x45\xdf\xa3"):
        return None
    return Sniffed("video", "webm" if b"webm" in head[:64] else "mkv")


def _riff(head: bytes) -> Optional[Sniffed]:
    if not head.startswith(b"RIFF"):
        return None
    form = head[8:12]
    if form == b"WEBP":
        return Sniffed("image", "webp")
    if form == b"AVI ":
        return Sniffed("video", "avi")
    if form == b"WAVE":
        return Sniffed("audio", "wav")
    return Sniffed("unknown", "riff")


_PREFIXES = [
    (b"\xff\xd8\xff", Sniffed("image", "jpeg")),
    (b"\x89PNG\r\n\x1a\n", Sniffed("image", "png")),
    (b"GIF87a", Sniffed("image", "gif")),
    (b"GIF89a", Sniffed("image", "gif")),
    (b"II*\x00", Sniffed("image", "tiff")),
    (b"MM\x00*", Sniffed("image", "tiff")),
    (b"BM", Sniffed("image", "bmp")),
    (b"FLV\x01", Sniffed("video", "flv")),
    (b"ID3", Sniffed("audio", "mp3")),
    (b"OggS", Sniffed("audio", "ogg")),
    (b"fLaC", Sniffed("audio", "flac")),
    (b"%PDF", Sniffed("unknown", "pdf")),
    (b"PK\x03\x04", Sniffed("unknown", "zip")),
]


def sniff_bytes(head: bytes) -> Sniffed:
    for detector in (_iso_bmff, _matroska, _riff):
        found = detector(head)
        if found:
            return found
    for prefix, found in _PREFIXES:
        if head.startswith(prefix):
            return found
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return Sniffed("audio", "mp3")
    return Sniffed("unknown", "unknown")


def sniff_file(path: str | Path) -> Sniffed:
    with open(path, "rb") as fh:
        return sniff_bytes(fh.read(HEAD_BYTES))
