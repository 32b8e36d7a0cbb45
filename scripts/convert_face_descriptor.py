"""Convert face-api.js's face recognition weights into Apate's shipped safetensors file and model card.

    python scripts/convert_face_descriptor.py [--tarball vladmandic-face-api-1.7.15.tgz] [--out DIR]

Without --tarball it runs ``npm pack @vladmandic/face-api@1.7.15`` into a temporary folder. The tarball
and the weights file in it are checked against pinned SHA-256s; the manifest
(``face_recognition_model-weights_manifest.json``) lists each tensor's name, shape, dtype and uint8
quantisation, and the tensors lie one after another in ``face_recognition_model.bin``.

Each quantised tensor is stored as it is in the .bin (uint8) beside float64 scalars ``name:scale`` and
``name:min``; the float32 ones are stored as they are: the file stays as small as the original and
decodes to exactly tfjs's weights (``apate_core/protect/identity/descriptor.py: dequantize``).

Rerunning it reproduces the committed ``face-descriptor.safetensors`` byte for byte (one metadata
entry, tensors in safetensors' fixed order; tests/test_identity_descriptor.py checks it when the
tarball is at hand), as well as the card and the licence copy.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from apate_core.protect.identity.descriptor import (DESCRIPTOR_DIM, INPUT_SIZE, MATCH_THRESHOLD, MEAN_RGB,
                                                    MIN_SUFFIX, PIXEL_DIVISOR, SCALE_SUFFIX,
                                                    build_face_descriptor, read_weights)
from apate_core.protect.identity.sources import (FACEAPI_SPEC, FACEAPI_TARBALL, FACEAPI_TARBALL_SHA256,
                                                 faceapi_tarball, sha256_bytes, tar_member, verified)

OUT = Path(__file__).resolve().parents[1] / "assets" / "models" / "identity"
MODEL_DIR = "package/model/"
MANIFEST = "face_recognition_model-weights_manifest.json"
WEIGHTS_SHA256 = "b413e420d6840b2775fba32008db6f3cddb07d485967fb42cfcf379c16a8c589"
LICENSE_MEMBER = "package/LICENSE"
NUMPY_DTYPES = {"float32": np.dtype("<f4"), "uint8": np.dtype("u1")}

# Measured once against face-api itself; tests/test_identity_descriptor.py re-checks 4-6 crops at 1e-4.
EXACTNESS = {
    "reference": f"face-api {FACEAPI_SPEC.split('@')[-1]} computeFaceDescriptor on tfjs 4.22.0's CPU backend "
                 "(node, tests/node/descriptor.mjs)",
    "crops": "28 face crops of 150x150: every face MTCNN finds with p >= 0.9 in the 12 face sample photos "
             "(apate_core/protect/identity/samples.py) and in assets/samples/astronaut.jpg",
    "max_abs_difference": 2.7e-07,
    "mean_abs_difference": 5.6e-08,
    "weights": "decoded weights bit-identical to tfjs's io.decodeWeights (all 5,614,592 values)",
}


def split_weights(manifest: list[dict], blobs: list[bytes]) -> dict[str, torch.Tensor]:
    """The manifest's tensors, read in order from the concatenated weight files, as stored tensors."""
    data = b"".join(blobs)
    stored: dict[str, torch.Tensor] = {}
    offset = 0
    for spec in (w for group in manifest for w in group["weights"]):
        quant = spec.get("quantization")
        dtype = NUMPY_DTYPES[quant["dtype"] if quant else spec["dtype"]]
        count = int(np.prod(spec["shape"], dtype=np.int64))
        array = np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(spec["shape"])
        offset += count * dtype.itemsize
        stored[spec["name"]] = torch.from_numpy(array.copy())
        if quant:
            stored[spec["name"] + SCALE_SUFFIX] = torch.tensor(quant["scale"], dtype=torch.float64)
            stored[spec["name"] + MIN_SUFFIX] = torch.tensor(quant["min"], dtype=torch.float64)
    if offset != len(data):
        raise ValueError(f"the manifest covers {offset} bytes of {len(data)}")
    return stored


def card(stored_sha256: str, manifest_sha256: str, stored: dict[str, torch.Tensor]) -> dict:
    quantised = sum(1 for t in stored.values() if t.dtype == torch.uint8)
    floats = sum(1 for t in stored.values() if t.dtype == torch.float32)
    return {
        "name": "face-descriptor",
        "file": "face-descriptor.safetensors",
        "sha256": stored_sha256,
        "task": "128-d face descriptor (identity embedding); two crops of one person lie closer than the "
                "match threshold",
        "source": {
            "package": FACEAPI_SPEC,
            "tarball": FACEAPI_TARBALL,
            "tarball_sha256": FACEAPI_TARBALL_SHA256,
            "weights": MODEL_DIR + "face_recognition_model.bin",
            "weights_sha256": WEIGHTS_SHA256,
            "manifest": MODEL_DIR + MANIFEST,
            "manifest_sha256": manifest_sha256,
            "network_source": "package/src/faceRecognitionNet/*.ts",
        },
        "licence": {
            "weights_file_and_port": "MIT: face-api, Copyright (c) Vladimir Mandic (LICENSE-face-api.txt)",
            "original_model": "dlib_face_recognition_resnet_model_v1 by Davis King, released into the public "
                              "domain (github.com/davisking/dlib-models README: \"anyone can do whatever they "
                              "want with these model files as I've released them into the public domain\"); "
                              "trained on about 3 million faces of 7485 identities from FaceScrub, VGG Face "
                              "and images scraped from the internet",
        },
        "architecture": "dlib's ResNet (29 conv layers): conv 7x7/2 valid 3->32 + affine + ReLU, max pool "
                        "3x3/2 valid; residual blocks 3x32, down+3x64, down+2x128, down+2x256, down 256 (each "
                        "block: conv 3x3 + affine + ReLU, conv 3x3 + affine, shortcut added, ReLU; a down "
                        "block's first conv is 3x3/2 valid and its shortcut a 2x2/2 average pool, zero-padded "
                        "in channels, the conv branch zero-padded bottom/right when the pool is larger); global "
                        "average pool; fully connected 256->128 without bias",
        "input": {
            "layout": f"(B, 3, {INPUT_SIZE}, {INPUT_SIZE}) float RGB on 0..255 (face-api: toBatchTensor"
                      f"({INPUT_SIZE}) of a face crop; resizing and alignment are the caller's)",
            "normalisation": f"(x - mean_rgb) / {PIXEL_DIVISOR:g}, mean_rgb = {list(MEAN_RGB)}",
        },
        "output": f"(B, {DESCRIPTOR_DIM}) descriptors; distance: Euclidean (face-api euclideanDistance)",
        "match_threshold": MATCH_THRESHOLD,
        "storage": f"face-api names and TensorFlow layouts; {quantised} uint8 tensors with float64 "
                   f"'<name>{SCALE_SUFFIX}' and '<name>{MIN_SUFFIX}', decoded as float32(v * scale + min) "
                   f"computed in float64 as tfjs does; {floats} float32 tensors stored as they are",
        "exactness": EXACTNESS,
        "converter": "scripts/convert_face_descriptor.py",
    }


def serialise(manifest: list[dict], blobs: list[bytes]) -> tuple[bytes, dict[str, torch.Tensor]]:
    """The safetensors file's bytes (one metadata entry: a fixed header) and the stored tensors."""
    from safetensors.torch import save

    if [sha256_bytes(b) for b in blobs] != [WEIGHTS_SHA256]:
        raise ValueError("face_recognition_model.bin is not the pinned file")
    stored = split_weights(manifest, blobs)
    return save(stored, metadata={"source": f"{FACEAPI_SPEC} {MODEL_DIR}face_recognition_model.bin"}), stored


def convert(tarball: Path, out: Path) -> Path:
    """Write face-descriptor.safetensors, its card and the licence copy into out; return the weights path."""
    verified(tarball, FACEAPI_TARBALL_SHA256)
    manifest_bytes = tar_member(tarball, MODEL_DIR + MANIFEST)
    manifest = json.loads(manifest_bytes)
    blobs = [tar_member(tarball, MODEL_DIR + p) for group in manifest for p in group["paths"]]
    blob, stored = serialise(manifest, blobs)
    out.mkdir(parents=True, exist_ok=True)
    target = out / "face-descriptor.safetensors"
    target.write_bytes(blob)
    build_face_descriptor(read_weights(target))  # every tensor present with the network's shapes
    text = json.dumps(card(sha256_bytes(blob), sha256_bytes(manifest_bytes), stored), indent=2)
    (out / "face-descriptor.json").write_text(text + "\n")
    (out / "LICENSE-face-api.txt").write_bytes(tar_member(tarball, LICENSE_MEMBER))
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tarball", type=Path, help=f"a local {FACEAPI_TARBALL} (default: npm pack)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tarball = args.tarball or faceapi_tarball(Path(tmp))
        target = convert(tarball, args.out)
    print(f"{target} ({target.stat().st_size} bytes, sha256 {sha256_bytes(target.read_bytes())})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
