"""Re-synthesisers (detect.training.resynth): TAEF2 round trip, weight checks, the registry, the in-house entry."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from apate_core.detect.training.resynth import TAEF2_SHA256, create_resynthesiser, list_resynthesisers
from apate_core.errors import CheckpointError, InputRefused
from apate_core.settings import load_settings


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-12)))


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A 64x64 photo: the astronaut's face, downscaled from scikit-image's bundled copy."""
    import skimage.data
    from PIL import Image

    return np.asarray(Image.fromarray(skimage.data.astronaut()[0:256, 128:384]).resize((64, 64), Image.LANCZOS))


@pytest.fixture(scope="module")
def taef2_dir():
    folder = load_settings().taef2_path
    if not folder.is_dir():
        pytest.skip(f"TAEF2 weights not at {folder} (APATE_TAEF2_DIR; ../shared/models/taef2 beside the clone)")
    return folder


@pytest.fixture(scope="module")
def taef2(taef2_dir):
    with create_resynthesiser("taef2", device="cpu", threads=1) as resynth:
        yield resynth


def test_registry_lists_entries_and_refuses_unknown_names():
    assert {"taef2", "inhouse"} <= set(list_resynthesisers())
    with pytest.raises(InputRefused, match="Accepted: .*taef2"):
        create_resynthesiser("no-such-decoder")


def test_taef2_round_trip_keeps_size_and_content(taef2, photo):
    out = taef2(photo)
    assert out.shape == photo.shape and out.dtype == np.uint8
    assert not np.array_equal(out, photo)
    assert 20.0 < psnr(photo, out) < 40.0, psnr(photo, out)
    odd = taef2(photo[:61, :53])  # padded to 64x56 and cropped back
    assert odd.shape == (61, 53, 3)
    card = taef2.describe()
    assert card["name"] == "taef2" and card["licence"] == "MIT" and card["weights_sha256"] == TAEF2_SHA256


def test_taef2_refuses_a_tampered_copy(taef2_dir, tmp_path):
    for name in TAEF2_SHA256:
        shutil.copy(taef2_dir / name, tmp_path / name)
    target = tmp_path / "taef2_decoder.pth"
    target.chmod(0o644)
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="SHA-256"):
        create_resynthesiser("taef2", weights_dir=tmp_path, device="cpu")


def test_taef2_missing_folder_names_the_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("APATE_TAEF2_DIR", str(tmp_path / "absent"))
    assert load_settings().taef2_path == tmp_path / "absent"
    with pytest.raises(CheckpointError, match="APATE_TAEF2_DIR"):
        create_resynthesiser("taef2", device="cpu")


def test_inhouse_wraps_a_trained_decoder_and_closes(photo):
    import torch

    from apate_core.detect.training.decoders import ResynthAutoencoder

    with pytest.raises(CheckpointError, match="trained decoder"):
        create_resynthesiser("inhouse")
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    with create_resynthesiser("inhouse", model=ResynthAutoencoder("nearest", width=4), device="cpu",
                              threads=1) as resynth:
        out = resynth(photo[:30, :30])
        assert resynth.describe()["family"] == "nearest"
    assert out.shape == (30, 30, 3) and out.dtype == np.uint8
    assert torch.get_num_threads() == threads
    with pytest.raises(InputRefused, match="closed"):
        resynth(photo)
    with pytest.raises(InputRefused, match="HxWx3 uint8"):
        create_resynthesiser("inhouse", model=ResynthAutoencoder("nearest", width=4), device="cpu")(photo[:, :, 0])


def test_inhouse_loads_saved_weights_and_refuses_a_mismatch(tmp_path, photo):
    from safetensors.torch import save_file

    from apate_core.detect.training.decoders import ResynthAutoencoder

    path = tmp_path / "nearest-w4.safetensors"
    save_file(ResynthAutoencoder("nearest", width=4).state_dict(), str(path))
    with create_resynthesiser("inhouse", weights=path, family="nearest", width=4, device="cpu") as resynth:
        assert resynth(photo[:32, :32]).shape == (32, 32, 3)
        assert path.name in resynth.describe()["weights_sha256"]
    with pytest.raises(CheckpointError, match="does not load"):
        create_resynthesiser("inhouse", weights=path, family="nearest", width=8, device="cpu")
