"""Generator families: released key layouts (spec JSONs), strict loading, fix-ups and inference semantics."""

from __future__ import annotations

import json
import os
import pickle
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from apate_core.errors import CheckpointError
from apate_core.protect import (AU_NAMES, STARGAN_ATTRIBUTES, config_from_state_dict, create_generator,
                                default_targets, discover_checkpoints, get_family, label_map_to_input,
                                list_generators, load_generator)
from apate_core.protect.generators import instance_edges

REPO = Path(__file__).resolve().parents[1]
SPECS = Path(os.environ.get("APATE_SPECS") or REPO.parent / "shared" / "specs") / "generators"
needs_specs = pytest.mark.skipif(not SPECS.is_dir(), reason=f"generator spec JSONs not found at {SPECS}")


pytestmark = pytest.mark.usefixtures("one_thread")

# Spec JSON -> (family, released configuration as load_generator keywords)
RELEASES = {
    "stargan_celeba256": ("stargan", {}),
    "ganimation_official": ("ganimation", {}),
    "ganimation_vipermu": ("ganimation", {"layout": "vipermu"}),
    "cyclegan_resnet9": ("cyclegan", {}),
    "pix2pixhd_label2city_1024p": ("pix2pixhd", {}),
    "pix2pixhd_label2city_512p": ("pix2pixhd", {"netG": "global"}),
}


def load_spec(name: str) -> dict:
    return json.loads((SPECS / f"{name}.json").read_text())


def is_alias(key: str) -> bool:
    return key.startswith(("debug1.", "debug2.", "debug3.", "debug4."))


def seeded_value(key: str, shape: list, dtype: str, gen: torch.Generator) -> torch.Tensor:
    if dtype == "int64":
        return torch.tensor(1000, dtype=torch.long)
    if key.endswith("running_var"):
        return torch.rand(shape, generator=gen) + 0.5
    if key.endswith("running_mean"):
        return torch.randn(shape, generator=gen)
    if len(shape) == 1 and key.endswith(".weight"):  # norm scale
        return 1.0 + 0.1 * torch.randn(shape, generator=gen)
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    return torch.randn(shape, generator=gen) * (0.1 if len(shape) == 1 else 1.0 / np.sqrt(fan_in))


def checkpoint_from_spec(name: str, seed: int = 0) -> OrderedDict:
    """A checkpoint in the released layout with seeded values; vipermu's debug* entries alias main.*."""
    gen = torch.Generator().manual_seed(seed)
    sd: OrderedDict = OrderedDict()
    entries = load_spec(name)["state_dict"]
    for key, shape, dtype in entries:
        if not is_alias(key):
            sd[key] = seeded_value(key, shape, dtype, gen)
    out: OrderedDict = OrderedDict()
    for key, shape, dtype in entries:  # keep the released order, aliases included
        out[key] = sd["main." + key.split(".", 1)[1]] if is_alias(key) else sd[key]
    return out


def small_checkpoint(family: str, seed: int = 0, **config) -> OrderedDict:
    gen = torch.Generator().manual_seed(seed)
    model = create_generator(family, **config)
    return OrderedDict((k, seeded_value(k, list(v.shape), str(v.dtype).replace("torch.", ""), gen))
                       for k, v in model.state_dict().items())


# ---------------------------------------------------------------- released layouts


@needs_specs
def test_every_spec_json_is_covered():
    assert sorted(p.stem for p in SPECS.glob("*.json")) == sorted(RELEASES)


@needs_specs
@pytest.mark.parametrize("name", sorted(RELEASES))
def test_released_configuration_matches_spec_layout(name):
    spec = load_spec(name)
    family, config = RELEASES[name]
    with torch.device("meta"):
        model = get_family(family).build(**config)
    got = [[k, list(v.shape), str(v.dtype).replace("torch.", "")] for k, v in model.state_dict().items()]
    expected = [e for e in spec["state_dict"] if not is_alias(e[0])]
    assert got == expected
    assert sum(p.numel() for p in model.parameters()) == spec["num_parameters"]
    assert len(spec["state_dict"]) == spec["num_state_dict_entries"]
    # the configuration is recoverable from the released keys and shapes alone
    meta_sd = {k: torch.empty(s, dtype=getattr(torch, t), device="meta") for k, s, t in spec["state_dict"]}
    assert config_from_state_dict(family, meta_sd) == model.config


@needs_specs
@pytest.mark.parametrize("name", ["stargan_celeba256", "ganimation_official", "ganimation_vipermu",
                                  "cyclegan_resnet9"])
def test_release_checkpoint_loads_strictly(tmp_path, name):
    family, config = RELEASES[name]
    sd = checkpoint_from_spec(name)
    path = tmp_path / "release.pth"
    torch.save(sd, path)
    model = load_generator(family, path)
    assert model.config == get_family(family).config_cls(**config)
    loaded = model.state_dict()
    for key, value in sd.items():
        if not is_alias(key):
            assert torch.equal(loaded[key], value), key
    assert not model.training and not any(p.requires_grad for p in model.parameters())


@pytest.mark.skipif(not os.environ.get("APATE_FULL_SIZE_TESTS"), reason="set APATE_FULL_SIZE_TESTS=1 to load "
                    "a full 182M-parameter pix2pixHD checkpoint (~15 s, 3 GB)")
@needs_specs
def test_pix2pixhd_release_checkpoint_loads_full_size(tmp_path):
    sd = checkpoint_from_spec("pix2pixhd_label2city_1024p")
    torch.save(sd, tmp_path / "latest_net_G.pth")
    model = load_generator("pix2pixhd", tmp_path / "latest_net_G.pth")
    assert torch.equal(model.state_dict()["model1_2.7.weight"], sd["model1_2.7.weight"])
    assert model.generate(torch.zeros(1, 36, 64, 64)).shape == (1, 3, 64, 64)


# ---------------------------------------------------------------- StarGAN


def instance_norm(h, sd, prefix):
    mean = h.mean((2, 3), keepdim=True)
    var = h.var((2, 3), unbiased=False, keepdim=True)
    return (h - mean) / torch.sqrt(var + 1e-5) * sd[prefix + ".weight"].view(1, -1, 1, 1) + \
        sd[prefix + ".bias"].view(1, -1, 1, 1)


def manual_star_features(sd, x, c, repeat_num):
    """StarGAN / GANimation body written out with functional ops and per-image statistics."""
    h = torch.cat([x, c.view(*c.shape, 1, 1).expand(-1, -1, *x.shape[2:])], 1)
    h = F.relu(instance_norm(F.conv2d(h, sd["main.0.weight"], padding=3), sd, "main.1"))
    for conv, norm in ((3, 4), (6, 7)):
        h = F.relu(instance_norm(F.conv2d(h, sd[f"main.{conv}.weight"], stride=2, padding=1), sd, f"main.{norm}"))
    for k in range(9, 9 + repeat_num):
        p = f"main.{k}.main."
        r = F.relu(instance_norm(F.conv2d(h, sd[p + "0.weight"], padding=1), sd, p + "1"))
        h = h + instance_norm(F.conv2d(r, sd[p + "3.weight"], padding=1), sd, p + "4")
    i = 9 + repeat_num
    for conv in (i, i + 3):
        h = F.conv_transpose2d(h, sd[f"main.{conv}.weight"], stride=2, padding=1)
        h = F.relu(instance_norm(h, sd, f"main.{conv + 1}"))
    return h


@needs_specs
def test_stargan_uses_per_image_statistics_without_touching_stored_ones(tmp_path):
    sd = checkpoint_from_spec("stargan_celeba256", seed=1)
    for key in [k for k in sd if k.endswith("num_batches_tracked")]:
        del sd[key]  # an old checkpoint: torch's loader would fill these in, so must Apate's
    torch.save(sd, tmp_path / "200000-G.ckpt")
    model = load_generator("stargan", tmp_path / "200000-G.ckpt")
    assert int(model.state_dict()["main.1.num_batches_tracked"]) == 0
    stored = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    c = torch.tensor([[0, 1, 0, 1, 0], [1, 0, 0, 0, 1]], dtype=torch.float32)
    expected = torch.tanh(F.conv2d(manual_star_features(sd, x, c, 6), sd["main.21.weight"], padding=3))
    for train in (False, True):  # train mode must not update the stats either
        model.train(train)
        out = model.generate(x, c)
        torch.testing.assert_close(out, expected, atol=2e-5, rtol=1e-4)
    for key, value in model.state_dict().items():
        assert torch.equal(value, stored[key]), key
    # per image: the second image's output does not depend on the first one
    torch.testing.assert_close(model.generate(x[1:], c[1:]), out[1:], atol=1e-5, rtol=1e-4)


def test_stargan_safetensors_and_model_wrapper(tmp_path):
    from safetensors.torch import save_file

    sd = small_checkpoint("stargan", conv_dim=8, repeat_num=2)
    save_file(dict(sd), str(tmp_path / "g.safetensors"))
    torch.save({"model": sd, "epoch": 3}, tmp_path / "wrapped.ckpt")
    a = load_generator("stargan", tmp_path / "g.safetensors")
    b = load_generator("stargan", tmp_path / "wrapped.ckpt")
    assert a.config.conv_dim == 8 and a.config.repeat_num == 2 and a.config.c_dim == 5
    x, c = torch.rand(1, 3, 16, 16) * 2 - 1, torch.tensor([[1.0, 0, 0, 1, 0]])
    assert torch.equal(a.generate(x, c), b.generate(x, c))


# ---------------------------------------------------------------- GANimation


@needs_specs
@pytest.mark.parametrize("name", ["ganimation_official", "ganimation_vipermu"])
def test_ganimation_composition_in_both_layouts(tmp_path, name):
    layout = RELEASES[name][1].get("layout", "official")
    sd = checkpoint_from_spec(name, seed=2)
    colour_key, attention_key = {"official": ("img_reg", "attetion_reg"), "vipermu": ("im_reg", "im_att")}[layout]
    if layout == "official":  # multi-GPU training saves module.-prefixed keys
        sd = OrderedDict(("module." + k, v) for k, v in sd.items())
    torch.save(sd, tmp_path / "G.pth")
    model = load_generator("ganimation", tmp_path / "G.pth")
    assert model.config.layout == layout and model.condition_names == AU_NAMES
    stored = {k: v.clone() for k, v in model.state_dict().items()}
    plain = {k.removeprefix("module."): v for k, v in sd.items()}
    x, c = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 17)
    feats = manual_star_features(plain, x, c, 6)
    colour = torch.tanh(F.conv2d(feats, plain[f"{colour_key}.0.weight"], padding=3))
    attention = torch.sigmoid(F.conv2d(feats, plain[f"{attention_key}.0.weight"], padding=3))
    first, second = model(x, c)
    if layout == "official":  # (colour, mask); final = mask * x + (1 - mask) * colour
        torch.testing.assert_close((first, second), (colour, attention), atol=2e-5, rtol=1e-4)
        expected = attention * x + (1 - attention) * colour
    else:  # (attention, colour); final = (1 - att) * colour + att * x
        torch.testing.assert_close((first, second), (attention, colour), atol=2e-5, rtol=1e-4)
        expected = (1 - attention) * colour + attention * x
    torch.testing.assert_close(model.generate(x, c), expected, atol=2e-5, rtol=1e-4)
    assert all(torch.equal(v, stored[k]) for k, v in model.state_dict().items())


def test_ganimation_layout_cannot_be_guessed_without_heads():
    sd = small_checkpoint("ganimation", conv_dim=8, repeat_num=1)
    del sd["img_reg.0.weight"]
    with pytest.raises(CheckpointError, match="layout"):
        config_from_state_dict("ganimation", sd)


# ---------------------------------------------------------------- CycleGAN


@needs_specs
def test_cyclegan_legacy_norm_keys_are_stripped(tmp_path):
    sd = checkpoint_from_spec("cyclegan_resnet9", seed=3)
    legacy = OrderedDict()
    for key, value in sd.items():  # torch 0.3 saved running stats on every InstanceNorm after a conv
        legacy[key] = value
        if key.endswith(".weight") and value.dim() == 4 and key != "model.26.weight":
            owner, index = key[: -len(".weight")].rsplit(".", 1)
            channels = value.shape[1] if owner == "model" and int(index) in (19, 22) else value.shape[0]
            norm = f"{owner}.{int(index) + 1}"
            legacy[norm + ".running_mean"] = torch.zeros(channels)
            legacy[norm + ".running_var"] = torch.ones(channels)
            legacy[norm + ".num_batches_tracked"] = torch.tensor(0)
    torch.save({"state_dict": legacy}, tmp_path / "latest_net_G_A.pth")
    torch.save(sd, tmp_path / "clean.pth")
    model = load_generator("cyclegan", tmp_path / "latest_net_G_A.pth")
    reference = load_generator("cyclegan", tmp_path / "clean.pth")
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    out = model.generate(x)
    assert torch.equal(out, reference.generate(x))
    assert torch.equal(model.train().generate(x), out)  # no stats: train and eval agree
    assert out.min() >= -1 and out.max() <= 1


# ---------------------------------------------------------------- pix2pixHD


def test_pix2pixhd_local_enhancer_wiring(tmp_path):
    config = dict(input_nc=36, ngf=4, n_downsample_global=2, n_blocks_global=1, n_blocks_local=1)
    torch.save(small_checkpoint("pix2pixhd", **config), tmp_path / "latest_net_G.pth")
    model = load_generator("pix2pixhd", tmp_path / "latest_net_G.pth")
    assert model.config.netG == "local" and model.config.ngf == 4 and model.config.n_downsample_global == 2
    x = label_map_to_input(np.random.default_rng(0).integers(0, 35, (32, 48)))
    coarse = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
    expected = model.model1_2(model.model1_1(x) + model.model(coarse))
    torch.testing.assert_close(model.generate(x), expected)
    assert model.generate(x).shape == (1, 3, 32, 48)
    assert len(model.model) == len(create_generator("pix2pixhd", netG="global", ngf=8, n_downsample_global=2,
                                                    n_blocks_global=1, input_nc=36).model) - 3


def test_pix2pixhd_global_rgb_variant_roundtrip(tmp_path):
    torch.save(small_checkpoint("pix2pixhd", input_nc=3, netG="global", ngf=4, n_downsample_global=2,
                                n_blocks_global=2), tmp_path / "latest_net_G.pth")
    model = load_generator("pix2pixhd", tmp_path / "latest_net_G.pth")
    assert (model.config.netG, model.config.input_nc, model.config.n_blocks_global) == ("global", 3, 2)
    assert model.generate(torch.zeros(1, 3, 16, 16)).shape == (1, 3, 16, 16)


def test_label_map_to_input_one_hot_and_edges():
    labels = np.array([[0, 0, 7, 7], [0, 0, 7, 7], [26, 26, 26, 26], [26, 26, 26, 26]], dtype=np.int32)
    instances = np.array([[0, 0, 7, 7], [0, 0, 7, 7], [26001, 26001, 26002, 26002], [26001, 26001, 26002, 26002]])
    x = label_map_to_input(labels, instances)
    assert x.shape == (1, 36, 4, 4)
    assert torch.equal(x[0, :35].sum(0), torch.ones(4, 4))
    assert x[0, 7, 0, 2] == 1 and x[0, 26, 2, 0] == 1 and x[0, 0, 2, 0] == 0
    edges = np.zeros((4, 4), dtype=bool)  # brute-force 4-neighbour rule
    for i in range(4):
        for j in range(4):
            for di, dj in ((0, 1), (0, -1), (1, 0), (-1, 0)):
                if 0 <= i + di < 4 and 0 <= j + dj < 4 and instances[i, j] != instances[i + di, j + dj]:
                    edges[i, j] = True
    assert np.array_equal(x[0, 35].numpy().astype(bool), edges)
    label_only = label_map_to_input(labels)[0, 35].numpy().astype(bool)  # no instance map: label boundaries
    assert np.array_equal(label_only, instance_edges(labels)) and not label_only[3, 1] and edges[3, 1]
    with pytest.raises(ValueError):
        label_map_to_input(np.array([[35]]))


# ---------------------------------------------------------------- refusals


def test_corrupt_and_unsafe_files_are_refused(tmp_path):
    (tmp_path / "garbage.pth").write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(CheckpointError) as err:
        load_generator("stargan", tmp_path / "garbage.pth")
    assert "garbage.pth" in str(err.value) and "Accepted:" in str(err.value)

    marker = tmp_path / "payload-ran"

    class Payload:  # arbitrary callables must never run while reading a checkpoint
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    with open(tmp_path / "evil.pth", "wb") as fh:
        pickle.dump({"main.0.weight": Payload()}, fh, protocol=2)
    with pytest.raises(CheckpointError, match="references Python code") as err:
        load_generator("stargan", tmp_path / "evil.pth")
    assert not marker.exists() and "mkdir" in str(err.value)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_generator("stargan", tmp_path / "missing.pth")


def test_mismatched_checkpoints_name_the_problem(tmp_path):
    sd = small_checkpoint("stargan", conv_dim=8, repeat_num=1)
    with pytest.raises(CheckpointError, match="shape mismatches: main.0.weight"):
        load_generator("stargan", sd, conv_dim=16)
    broken = OrderedDict(sd)
    del broken["main.13.weight"]
    broken["main.99.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError) as err:
        load_generator("stargan", broken)
    message = str(err.value)
    assert "missing keys: main.13.weight" in message and "unexpected keys: main.99.weight" in message
    with pytest.raises(CheckpointError, match="model.1.weight"):
        load_generator("cyclegan", sd)
    nan = OrderedDict(sd)
    nan["main.0.weight"] = torch.full_like(sd["main.0.weight"], float("nan"))
    with pytest.raises(CheckpointError, match="NaN"):
        load_generator("stargan", nan)
    with pytest.raises(CheckpointError, match="not a state_dict"):
        load_generator("stargan", {"epoch": 3})


# ---------------------------------------------------------------- registry, targets, discovery


def test_registry_metadata_and_defaults():
    assert list_generators() == ["cyclegan", "ganimation", "pix2pixhd", "stargan"]
    assert get_family("stargan").condition_names == STARGAN_ATTRIBUTES == (
        "Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")
    assert get_family("stargan").native_size == (256, 256) and get_family("cyclegan").native_size == (256, 256)
    with torch.device("meta"):
        assert create_generator("pix2pixhd", netG="global").config.ngf == 64  # 512p release
        assert create_generator("pix2pixhd").native_size == (1024, 2048)
    with pytest.raises(KeyError, match="known"):
        get_family("stylegan")
    model = load_generator("cyclegan", ngf=4, n_blocks=1)
    assert not model.training and not any(p.requires_grad for p in model.parameters())


def test_default_targets_follow_the_official_test():
    targets = default_targets("stargan", 5, original=torch.tensor([[1.0, 0, 0, 1, 1]]))
    expected = [[1, 0, 0, 1, 1], [0, 1, 0, 1, 1], [0, 0, 1, 1, 1], [1, 0, 0, 0, 1], [1, 0, 0, 1, 0]]
    assert [t[0].tolist() for t in targets] == expected
    assert len(default_targets("stargan", 2)) == 2
    au = default_targets("ganimation", 12)
    assert len(au) == 12 and all(t.shape == (1, 17) and 0 <= t.min() and t.max() <= 1 for t in au)
    assert len({tuple(t[0].tolist()) for t in au}) == 12
    assert default_targets("cyclegan", 3) == [None] and default_targets("pix2pixhd", 1) == [None]
    small = create_generator("stargan", conv_dim=4, repeat_num=0)
    assert len(default_targets(small, 5)) == 5


def test_discover_checkpoints(tmp_path):
    files = ["stargan/200000-G.ckpt", "stargan/200000-D.ckpt", "ganimation/net_epoch_30_id_G.pth",
             "ganimation/net_epoch_30_id_D.pth", "ganimation/5000-37-G.ckpt", "pix2pixhd/latest_net_G.pth",
             "pix2pixhd/latest_net_D.pth", "cyclegan/latest_net_G_A.pth", "cyclegan/latest_net_D_A.pth",
             "cyclegan/horse2zebra/latest_net_G.safetensors", "cyclegan/notes.txt", "unknown/latest_net_G.pth"]
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    found = discover_checkpoints(tmp_path)
    assert [(d.family, d.label) for d in found] == [
        ("cyclegan", "cyclegan/horse2zebra/latest_net_G.safetensors"), ("cyclegan", "cyclegan/latest_net_G_A.pth"),
        ("ganimation", "ganimation/5000-37-G.ckpt"), ("ganimation", "ganimation/net_epoch_30_id_G.pth"),
        ("pix2pixhd", "pix2pixhd/latest_net_G.pth"), ("stargan", "stargan/200000-G.ckpt")]
    assert all(d.path.is_file() and d.size_bytes == 1 for d in found)
    assert discover_checkpoints(tmp_path / "nowhere") == []
