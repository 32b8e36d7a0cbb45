"""The face descriptor port: safe loading, shape, determinism, gradients, and exactness against face-api.js.

The exactness test runs face-api.js itself (tests/node/descriptor.mjs, tfjs's CPU backend) on the same crops;
it skips only when node or tests/node/node_modules is absent (``npm ci --prefix tests/node``, which
scripts/bootstrap.sh runs).
"""

from __future__ import annotations

import importlib.util
import io
import json
import pickle
import shutil
import struct
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from apate_core.errors import CheckpointError
from apate_core.protect.identity import (DEFAULT_WEIGHTS, DESCRIPTOR_DIM, INPUT_SIZE, MATCH_THRESHOLD,
                                         descriptor_distance, load_face_descriptor)
from apate_core.protect.identity import samples as face_samples
from apate_core.protect.identity.descriptor import build_face_descriptor, read_weights
from apate_core.protect.identity.sources import sha256_bytes

ROOT = Path(__file__).resolve().parent.parent
NODE_DIR = ROOT / "tests" / "node"
FACEAPI_DIR = NODE_DIR / "node_modules" / "@vladmandic" / "face-api"
CARD = DEFAULT_WEIGHTS.with_suffix(".json")
# Face boxes (x0, y0, x1, y1) found by MTCNN in the hash-pinned photos, so the crops never change.
FACE_BOXES = {
    "astronaut.jpg": (180, 60, 267, 175), "astronaut_face_resynth.png": (180, 60, 267, 175),
    "obama.jpg": (375, 81, 608, 417), "obama2.jpg": (198, 221, 471, 638), "obama3.jpg": (641, 250, 914, 610),
    "biden.jpg": (429, 163, 714, 564),
}
NODE_TOLERANCE = 1e-4


def face_crop(path: Path, box: tuple[int, int, int, int], mirror: bool = False) -> np.ndarray:
    """A square 150x150 RGB crop (float32 HWC, 0..255) a little larger than the face box."""
    cx, cy, half = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, 0.55 * max(box[2] - box[0], box[3] - box[1])
    square = tuple(int(round(v)) for v in (cx - half, cy - half, cx + half, cy + half))
    crop = Image.open(path).convert("RGB").crop(square).resize((INPUT_SIZE, INPUT_SIZE), Image.BILINEAR)
    pixels = np.asarray(crop, dtype=np.float32)
    return pixels[:, ::-1].copy() if mirror else pixels


def cached_face(name: str) -> Path | None:
    path = face_samples.samples_dir() / name
    return path if path in face_samples.cached_samples() else None


@pytest.fixture(scope="module")
def crops() -> dict[str, np.ndarray]:
    """Committed sample faces, a mirrored one, a noise image, and the cached obama/biden photos when fetched."""
    samples = ROOT / "assets" / "samples"
    found = {name: face_crop(samples / name, FACE_BOXES[name]) for name in ("astronaut.jpg",
                                                                            "astronaut_face_resynth.png")}
    found["astronaut mirrored"] = face_crop(samples / "astronaut.jpg", FACE_BOXES["astronaut.jpg"], mirror=True)
    found["noise"] = np.random.default_rng(0).uniform(0, 255, (INPUT_SIZE, INPUT_SIZE, 3)).astype(np.float32)
    for name in ("obama.jpg", "biden.jpg"):
        if (path := cached_face(name)) is not None:
            found[name] = face_crop(path, FACE_BOXES[name])
    return found


def as_input(pixels: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2).contiguous()


@pytest.fixture(scope="module")
def net(one_thread):
    return load_face_descriptor()


def test_weights_load_through_safetensors_only(monkeypatch):
    def refuse(*_args, **_kwargs):
        raise AssertionError("pickle must not be used to load the face descriptor")

    for module, name in ((pickle, "load"), (pickle, "loads"), (torch, "load")):
        monkeypatch.setattr(module, name, refuse)
    data = DEFAULT_WEIGHTS.read_bytes()
    header = json.loads(data[8:8 + struct.unpack("<Q", data[:8])[0]])  # a safetensors header, nothing else
    assert {v["dtype"] for k, v in header.items() if k != "__metadata__"} == {"U8", "F32", "F64"}
    built = build_face_descriptor(read_weights(DEFAULT_WEIGHTS))
    assert sum(p.numel() for p in built.parameters()) == 5_614_592  # every value of face-api's .bin


def test_missing_weights_are_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="missing"):
        read_weights(tmp_path / "absent.safetensors")


def test_shape_frozen_and_deterministic(net, crops):
    x = as_input(list(crops.values()))
    with torch.no_grad():
        first, second = net(x), net(x)
        alone = net(x[1:2])
    assert first.shape == (len(crops), DESCRIPTOR_DIM) and first.dtype == torch.float32
    assert torch.equal(first, second)
    assert torch.allclose(alone[0], first[1], atol=1e-5)  # a face's descriptor does not depend on its batch
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    assert load_face_descriptor() is net  # one instance per process


def test_rejects_anything_but_150_pixel_rgb(net):
    for bad in (torch.zeros(1, 3, 160, 160), torch.zeros(3, 150, 150), torch.zeros(1, 150, 150, 3),
                torch.zeros(1, 3, 150, 150, dtype=torch.uint8)):
        with pytest.raises(ValueError, match="150"):
            net(bad)


def test_gradient_reaches_the_input(net, crops):
    x = as_input([crops["astronaut.jpg"]])
    with torch.no_grad():
        clean = net(x)
    moved = (x + torch.randn_like(x)).requires_grad_(True)
    descriptor_distance(net(moved), clean).sum().backward()
    assert moved.grad is not None and torch.isfinite(moved.grad).all() and moved.grad.abs().sum() > 0


def test_distance_is_faceapis_euclidean():
    a, b = [0.5, -1.0, 2.0], [1.5, 1.0, 0.0]
    assert descriptor_distance(a, b).item() == pytest.approx(3.0)
    many = descriptor_distance(torch.zeros(4, 1, 3), torch.ones(1, 5, 3))
    assert many.shape == (4, 5) and torch.allclose(many, torch.full((4, 5), 3 ** 0.5))
    assert MATCH_THRESHOLD == 0.6


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
@pytest.mark.skipif(not FACEAPI_DIR.is_dir(), reason="tests/node/node_modules is absent (npm ci --prefix tests/node)")
def test_descriptors_match_faceapi_js(net, crops, tmp_path):
    pixels = np.stack(list(crops.values())).astype("<f4")
    pixels.tofile(tmp_path / "crops.f32")
    done = subprocess.run(["node", str(NODE_DIR / "descriptor.mjs"), str(tmp_path / "crops.f32"), str(len(pixels)),
                           str(tmp_path / "faceapi.json")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    reference = json.loads((tmp_path / "faceapi.json").read_text())
    assert reference["backend"] == "cpu" and reference["versions"]["faceapi"] == "1.7.15"
    with torch.no_grad():
        ours = net(as_input(list(pixels))).double().numpy()
    difference = np.abs(ours - np.array(reference["descriptors"]))
    assert difference.shape == (len(crops), DESCRIPTOR_DIM)
    assert difference.max() < NODE_TOLERANCE, f"max |port - face-api| = {difference.max():.3g}"


@pytest.mark.skipif(not FACEAPI_DIR.is_dir(), reason="tests/node/node_modules is absent (npm ci --prefix tests/node)")
def test_converter_reproduces_the_committed_file():
    spec = importlib.util.spec_from_file_location("convert_face_descriptor",
                                                  ROOT / "scripts" / "convert_face_descriptor.py")
    convert = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(convert)
    model = FACEAPI_DIR / "model"
    manifest = json.loads((model / convert.MANIFEST).read_text())
    blob, _ = convert.serialise(manifest, [(model / p).read_bytes() for group in manifest for p in group["paths"]])
    assert blob == DEFAULT_WEIGHTS.read_bytes()
    assert json.loads(CARD.read_text())["sha256"] == sha256_bytes(blob)


def test_card_names_its_sources():
    card = json.loads(CARD.read_text())
    assert card["source"]["package"] == "@vladmandic/face-api@1.7.15"
    assert len(card["source"]["tarball_sha256"]) == len(card["source"]["weights_sha256"]) == 64
    assert "MIT" in card["licence"]["weights_file_and_port"] and "public domain" in card["licence"]["original_model"]
    assert card["exactness"]["max_abs_difference"] < NODE_TOLERANCE
    assert (DEFAULT_WEIGHTS.parent / "LICENSE-face-api.txt").read_text().startswith("MIT License")


def test_same_person_closer_than_the_threshold(net):
    paths = {name: cached_face(name) for name in ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg")}
    if None in paths.values():
        pytest.skip("face samples not fetched (python -m apate_core.protect.identity.samples)")
    with torch.no_grad():
        d = net(as_input([face_crop(p, FACE_BOXES[n]) for n, p in paths.items()]))
    obama, biden = d[:3], d[3]
    assert descriptor_distance(obama[:, None], obama[None]).max() < MATCH_THRESHOLD
    assert descriptor_distance(obama, biden).min() > MATCH_THRESHOLD


def _fake_archive(members: dict[str, bytes], path: Path) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_samples_are_fetched_once_and_hash_checked(tmp_path, monkeypatch):
    good, bad = b"a face", b"another face"
    samples = (face_samples.FaceSample("a.jpg", "obama", "one", "pkg", "x/a.jpg", sha256_bytes(good), "test"),
               face_samples.FaceSample("b.jpg", "biden", "one", "pkg", "x/b.jpg", sha256_bytes(good), "test"))
    calls = []

    def download(workdir: Path) -> Path:
        calls.append(workdir)
        return _fake_archive({"x/a.jpg": good, "x/b.jpg": bad if len(calls) == 1 else good}, workdir / "p.tgz")

    monkeypatch.setattr(face_samples, "SAMPLES", samples)
    monkeypatch.setattr(face_samples, "ARCHIVES", {"pkg": download})
    with pytest.raises(CheckpointError, match="not the pinned file"):
        face_samples.fetch_samples(tmp_path)
    assert face_samples.cached_samples(tmp_path) == [tmp_path / "a.jpg"]
    assert face_samples.fetch_samples(tmp_path) == [tmp_path / "a.jpg", tmp_path / "b.jpg"]
    assert len(calls) == 2 and face_samples.fetch_samples(tmp_path) and len(calls) == 2  # nothing left to fetch


def test_every_photo_has_a_person_label_and_licence():
    persons = {s.person for s in face_samples.SAMPLES}
    assert {"obama", "biden"} <= persons and len(face_samples.SAMPLES) == 12
    assert all(s.licence and len(s.sha256) == 64 for s in face_samples.SAMPLES)
    assert sum(s.person == "obama" for s in face_samples.SAMPLES) == 5
