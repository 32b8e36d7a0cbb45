"""Offline generators for training (detect.training.upscalers, dcgan): the ncnn upscalers as re-synthesisers, the
DCGAN face generator, their data sources and the opt-in fetch of their files (backbones.TRAINING_SOURCES).

Tests named *_real_* use the files that `python -m apate_core.detect.backbones --training-generators` fetched and
skip without them; every other test runs on tiny inputs with stand-ins and downloads nothing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from apate_core.detect import backbones
from apate_core.detect.training import datasets, resynth
from apate_core.detect.training.dcgan import DcganFaces, DcganGenerator, latents
from apate_core.detect.training.upscalers import NcnnGraph, NcnnUpscaler
from apate_core.errors import CheckpointError, InputRefused
from apate_core.settings import load_settings

UPSCALERS = ("realesrgan-x4plus", "realsr-x4", "waifu2x")
FETCH = "--training-generators"


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-12)))


@pytest.fixture(scope="module")
def smooth_photo() -> np.ndarray:
    """64x64 at native resolution: the shuttle's nose against the wall in scikit-image's astronaut."""
    import skimage.data

    return np.ascontiguousarray(skimage.data.astronaut()[20:84, 420:484])


def _files_present(*names: str) -> None:
    missing = [n for n in names if not backbones.local_path(n).is_file()]
    if missing:
        pytest.skip(f"{', '.join(missing)} not in {backbones.generators_dir()}; fetch with "
                    f"`python -m apate_core.detect.backbones {FETCH}`")


# -- the tiling and shrink contract, with stand-in graphs ----------------------------------------------------


class _Nearest(NcnnUpscaler):
    """Stand-in graph: nearest-neighbour x scale. ``keeps_context`` mimics padded graphs (Real-ESRGAN: the output
    covers the context too) against unpadded ones (waifu2x upconv_7: the graph consumes it)."""

    graph = NcnnGraph("stand-in", scale=4, blob_in="in", blob_out="out", context=3, tile=5)
    keeps_context = True

    def __init__(self, **opts) -> None:  # no files, no ncnn
        super(NcnnUpscaler, self).__init__(device="cpu", **opts)
        self.tile, self.calls = self.graph.tile, 0

    def _graph(self, patch: np.ndarray) -> np.ndarray:
        self.calls += 1
        c = self.graph.context
        body = patch if self.keeps_context else patch[:, c:-c, c:-c]
        return body.repeat(self.graph.scale, 1).repeat(self.graph.scale, 2)

    def _release(self) -> None:
        pass


class _NearestValid(_Nearest):
    graph = NcnnGraph("stand-in", scale=2, blob_in="in", blob_out="out", context=2, tile=7)
    keeps_context = False


@pytest.mark.parametrize("cls", [_Nearest, _NearestValid])
def test_shrink_then_tiles_give_the_photos_size_and_block_averages(cls, smooth_photo):
    up = cls()
    s = up.graph.scale
    assert up.multiple == s  # set from the graph
    photo = smooth_photo[:48, :40]
    out = up(photo)
    assert out.shape == photo.shape and out.dtype == np.uint8
    assert up.calls > 1  # several tiles
    blocks = photo.reshape(48 // s, s, 40 // s, s, 3).astype(np.float64).mean(axis=(1, 3))
    expected = np.round(blocks).repeat(s, 0).repeat(s, 1)
    assert np.abs(out.astype(np.float64) - expected).max() <= 1  # seamless: no tile border shows
    odd = up(smooth_photo[:61, :53])  # padded to a multiple of the scale, cropped back
    assert odd.shape == (61, 53, 3)


def test_a_graph_that_returns_too_little_is_refused(smooth_photo):
    class Short(_Nearest):
        def _graph(self, patch: np.ndarray) -> np.ndarray:
            return patch

    with pytest.raises(CheckpointError, match="graph gave"):
        Short()(smooth_photo[:16, :16])


# -- the registered entries without their files -------------------------------------------------------------


def test_registry_lists_the_upscalers():
    assert set(UPSCALERS) <= set(resynth.list_resynthesisers())
    for name in UPSCALERS:
        cls = resynth._REGISTRY._classes[name]
        assert cls.licence and cls.trace and cls.source and cls.multiple == cls.graph.scale
        for file in cls.graph.files:
            assert backbones.TRAINING_SOURCES[file].convert is None  # kept as the verified file


@pytest.mark.parametrize("name", UPSCALERS)
def test_missing_files_name_the_fetch_command(name, tmp_path):
    with pytest.raises(CheckpointError, match=f"missing from .*{FETCH}"):
        resynth.create_resynthesiser(name, weights_dir=tmp_path, device="cpu")


def test_a_changed_file_is_refused_by_its_hash(tmp_path):
    graph = resynth._REGISTRY._classes["waifu2x"].graph
    for file in graph.files:
        (tmp_path / file).write_bytes(b"7767517\n0 0\n")
    with pytest.raises(CheckpointError, match="SHA-256"):
        resynth.create_resynthesiser("waifu2x", weights_dir=tmp_path, device="cpu")


# -- fetching: where the files go, and what prepare refuses ----------------------------------------------------


def test_training_files_live_apart_and_are_not_fetched_by_default(tmp_path, monkeypatch):
    monkeypatch.setenv("APATE_BACKBONES_DIR", str(tmp_path))
    assert backbones.local_path("dcgan_faces") == tmp_path / "generators" / "dcgan_faces.safetensors"
    assert backbones.local_path("realesrgan-x4plus.bin") == tmp_path / "generators" / "realesrgan-x4plus.bin"
    assert not set(backbones.TRAINING_SOURCES) & set(backbones.SOURCES)  # bootstrap's default list
    assert FETCH in backbones.fetch_command("dcgan_faces")
    assert backbones.main(["no-such-file"]) == 2
    fake = tmp_path / "noise0_scale2.0x_model.param"
    fake.write_bytes(b"not the waifu2x graph")
    with pytest.raises(CheckpointError, match="expected 413195ffde05b4d4"):
        backbones.prepare("waifu2x-upconv7-photo-noise0-x2.param", member_path=fake)
    assert not any((tmp_path / "generators").iterdir())


def test_prepare_keeps_an_ncnn_file_as_it_is(tmp_path):
    name = "waifu2x-upconv7-photo-noise0-x2.param"
    _files_present(name)
    made = backbones.prepare(name, tmp_path, member_path=backbones.local_path(name))
    assert made == tmp_path / name and made.read_bytes() == backbones.local_path(name).read_bytes()


# -- DCGAN, with stand-in weights -------------------------------------------------------------------------------


@pytest.fixture()
def stand_in_dcgan(tmp_path, monkeypatch):
    """A randomly initialised generator saved the way the fetch saves the real one, in a backbones dir of its own."""
    torch.manual_seed(0)
    checkpoint = tmp_path / "weights.tar"
    torch.save({"netG_state_dict": DcganGenerator().state_dict()}, checkpoint)
    from safetensors.torch import save_file

    folder = tmp_path / "backbones" / "generators"
    folder.mkdir(parents=True)
    save_file(backbones.convert_torch_pickle_free(checkpoint, key="netG_state_dict"),
              str(folder / "dcgan_faces.safetensors"))
    monkeypatch.setenv("APATE_BACKBONES_DIR", str(tmp_path / "backbones"))
    return folder


def test_dcgan_layout_matches_the_wheels_checkpoint_keys():
    state = DcganGenerator().state_dict()
    convs = [k for k in state if k.endswith(".weight") and state[k].ndim == 4]
    assert convs == [f"main.{i}.weight" for i in (0, 3, 6, 9, 12)]
    assert [tuple(state[k].shape) for k in convs] == [(100, 512, 4, 4), (512, 256, 4, 4), (256, 128, 4, 4),
                                                      (128, 64, 4, 4), (64, 3, 4, 4)]
    assert len(state) == 5 + 4 * 5  # five transposed convs, four batch norms of five entries each
    assert torch.equal(latents([7, 3])[0], latents([7])[0])  # a seed's latent does not depend on its batch


def test_dcgan_faces_from_stand_in_weights(stand_in_dcgan):
    with DcganFaces() as gan:
        faces = gan([0, 1, 2])
        again = gan([2])
    assert faces.shape == (3, 64, 64, 3) and faces.dtype == np.uint8
    assert np.array_equal(faces[2], again[0]) and not np.array_equal(faces[0], faces[1])
    with pytest.raises(InputRefused, match="closed"):
        gan([0])


def test_dcgan_without_its_file_names_the_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setenv("APATE_BACKBONES_DIR", str(tmp_path))
    with pytest.raises(CheckpointError, match=FETCH):
        DcganFaces()


def test_dcgan_faces_source_writes_pngs_once(stand_in_dcgan, tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "DCGAN_FACES", 3)
    settings = load_settings(environ={}, cache_dir=str(tmp_path / "cache"))
    rows = datasets.load_data_source("dcgan-faces", settings)
    assert [r.family for r in rows] == ["DCGAN"] * 3 and {r.source for r in rows} == {"apate/dcgan-faces"}
    assert all(r.label == datasets.GENERATED and r.path.suffix == ".png" for r in rows)
    from PIL import Image

    assert Image.open(rows[0].path).size == (64, 64)
    stamp = rows[0].path.stat().st_mtime_ns
    datasets.load_data_source("dcgan-faces", settings)
    assert rows[0].path.stat().st_mtime_ns == stamp


# -- the aligned data sources, with a stand-in re-synthesiser ---------------------------------------------------


def _mini_detect_data(root) -> None:
    """ALIGNED_EVERY + 1 camera photos of an aligned repository: two of them are taken."""
    import skimage.data
    from PIL import Image

    (root / "real").mkdir(parents=True)
    lines = ["file\tlabel\tgenerator_or_camera\tfamily\tsource_repo\tsource_path\tlicence_of_repo\tnote"]
    for i in range(datasets.ALIGNED_EVERY + 1):
        Image.fromarray(skimage.data.astronaut()[::8, ::8]).save(root / "real" / f"p{i}.jpg", quality=92)
        lines.append(f"real/p{i}.jpg\treal\tcamera\tcamera\t{datasets.ALIGNED_SOURCES[0]}\tx\tMIT\t")
    (root / "MANIFEST.tsv").write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("source", ["detect-data-realesrgan", "detect-data-realsr", "detect-data-waifu2x"])
def test_aligned_upscaler_sources_use_their_resynthesiser_once(source, tmp_path, monkeypatch):
    spec = datasets.ALIGNED_FAKES[source]
    made = []

    def stand_in(name: str, **opts):
        made.append(name)
        return _NearestValid()

    monkeypatch.setattr(resynth, "create_resynthesiser", stand_in)
    _mini_detect_data(tmp_path / "data")
    settings = load_settings(environ={}, detect_data=str(tmp_path / "data"), cache_dir=str(tmp_path / "cache"))
    rows = datasets.load_data_source(source, settings)
    assert made == [spec.resynthesiser] and len(rows) == 2
    assert {(r.family, r.source, r.label) for r in rows} == {(spec.family, f"apate/{spec.resynthesiser}", 1)}
    assert rows[0].path.parent == tmp_path / "cache" / "resynth" / spec.resynthesiser
    datasets.load_data_source(source, settings)
    assert made == [spec.resynthesiser]  # cached: not made again


# -- the real files, on tiny inputs ---------------------------------------------------------------------------


@pytest.fixture(scope="module", params=UPSCALERS)
def real_upscaler(request):
    cls = resynth._REGISTRY._classes[request.param]
    _files_present(*cls.graph.files)
    with resynth.create_resynthesiser(request.param, device="cpu", threads=1) as up:
        yield up


def test_real_upscaler_keeps_size_and_content_and_leaves_a_trace(real_upscaler, smooth_photo):
    from PIL import Image

    out = real_upscaler(smooth_photo)
    assert out.shape == smooth_photo.shape and out.dtype == np.uint8
    assert np.array_equal(out, real_upscaler(smooth_photo))  # deterministic
    s = real_upscaler.multiple
    bicubic = np.asarray(Image.fromarray(smooth_photo).resize((64 // s, 64 // s), Image.BOX).resize((64, 64),
                                                                                                    Image.BICUBIC))
    close = psnr(smooth_photo, out)
    assert (22.0 if s == 4 else 30.0) < close < 60.0, close  # the same photo, re-rendered
    assert psnr(bicubic, out) < 45.0  # not a plain bicubic upscale of the shrunk copy
    assert real_upscaler(smooth_photo[:61, :53]).shape == (61, 53, 3)
    card = real_upscaler.describe()
    assert card["weights_sha256"] == {f: backbones.TRAINING_SOURCES[f].sha256 for f in real_upscaler.graph.files}


def test_real_upscaler_tiles_agree_with_a_whole_run(real_upscaler, smooth_photo):
    """Tiles with the graph's context around them: exact for waifu2x (the context is its whole receptive field),
    close for the RRDBNets, whose receptive field is wider than the reference tools' 10 pixels (measured ~32 dB)."""
    with resynth.create_resynthesiser(real_upscaler.name, device="cpu", threads=1, tile=8) as tiled:
        out = tiled(smooth_photo)
    whole = real_upscaler(smooth_photo)
    if real_upscaler.graph.scale == 2:
        assert np.array_equal(whole, out)
    else:
        assert psnr(whole, out) > 28.0, psnr(whole, out)


def test_real_dcgan_makes_faces():
    _files_present("dcgan_faces")
    with DcganFaces() as gan:
        faces = gan(range(8))
        assert np.array_equal(gan([5])[0], faces[5])
    assert faces.shape == (8, 64, 64, 3) and faces.std() > 20
    from apate_core.detect import mtcnn

    if not mtcnn.weights_installed():
        return
    found = sum(len(mtcnn.MTCNN().detect(face)) > 0 for face in faces)
    assert found >= 6, found  # MTCNN sees a face in (nearly) every one


def test_closed_upscaler_refuses(smooth_photo):
    up = _Nearest()
    up.close()
    with pytest.raises(InputRefused, match="closed"):
        up(smooth_photo)
