"""In-house Protect generators: the target edits, a tiny training run, and the shipped weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from apate_core.protect import load_generator
from apate_core.protect.checkpoints import read_checkpoint
from apate_core.protect.training import edits
from apate_core.protect.training.data import HELDOUT_PHOTOS, TRAIN_PHOTOS, heldout_crops, load_photo
from apate_core.protect.training.train import condition_list, get_recipe, target_for, train_family, write_model

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "assets" / "models" / "protect"
FAMILIES = ("stargan", "ganimation", "cyclegan", "pix2pixhd")


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    """A small colourful crop in [-1, 1]: (1, 3, 48, 48)."""
    img = load_photo("coffee")[100:196:2, 200:296:2]
    return torch.from_numpy(img.astype(np.float32)).permute(2, 0, 1).unsqueeze(0) / 127.5 - 1.0


def _rb_ratio(x: torch.Tensor) -> float:
    x01 = (x + 1) / 2
    return float(x01[:, 0].mean() / x01[:, 2].mean())


def _grad_energy(x: torch.Tensor) -> float:
    return float((x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean())


def test_grayscale_has_equal_channels(photo):
    y = edits.apply_edit("grayscale", photo)
    assert torch.allclose(y[:, 0], y[:, 1]) and torch.allclose(y[:, 1], y[:, 2])
    assert not torch.allclose(photo[:, 0], photo[:, 2])


def test_sepia_is_brownish_and_desaturated_order(photo):
    y = (edits.apply_edit("sepia", photo) + 1) / 2
    r, g, b = y[:, 0], y[:, 1], y[:, 2]
    assert bool((r >= g - 1e-6).all()) and bool((g >= b - 1e-6).all())


def test_warm_raises_and_cool_lowers_red_blue_ratio(photo):
    assert _rb_ratio(edits.apply_edit("warm", photo)) > _rb_ratio(photo) * 1.2
    assert _rb_ratio(edits.apply_edit("cool", photo)) < _rb_ratio(photo) / 1.2


def test_blur_smooths_and_sharpen_adds_detail(photo):
    assert _grad_energy(edits.apply_edit("blur", photo)) < 0.6 * _grad_energy(photo)
    assert _grad_energy(edits.apply_edit("sharpen", photo)) > 1.3 * _grad_energy(photo)
    flat = torch.full((1, 3, 16, 16), 0.2)
    for name in ("blur", "sharpen"):
        assert torch.allclose(edits.apply_edit(name, flat), flat, atol=1e-5)


def test_invert_is_the_negative_and_emboss_a_grey_relief(photo):
    assert torch.equal(edits.apply_edit("invert", edits.apply_edit("invert", photo)), photo)
    relief = edits.apply_edit("emboss", photo)
    assert torch.equal(relief[:, 0], relief[:, 2])  # grey
    flat = torch.full((1, 3, 16, 16), 0.3)
    assert torch.allclose(edits.apply_edit("emboss", flat), torch.zeros_like(flat), atol=1e-5)  # flat -> mid-grey
    ramp = torch.linspace(-1, 1, 16).view(1, 1, 1, 16).expand(1, 3, 16, 16)  # brighter to the right
    lit = edits.apply_edit("emboss", ramp)[0, 0, 4:12, 4:12]
    assert bool((lit > 0.05).all())  # light from the top left: a rising slope to the bottom right is lit
    assert bool((edits.apply_edit("emboss", -ramp)[0, 0, 4:12, 4:12] < -0.05).all())


def test_autolevel_ignores_channel_offsets_and_global_contrast(photo):
    """The invariance that InstanceNorm generators have, which is why targets are edits of autolevel(x)."""
    base = edits.autolevel(photo)
    shifted = 0.7 * photo + torch.tensor([0.1, -0.05, 0.08]).view(1, 3, 1, 1)
    assert torch.allclose(edits.autolevel(shifted), base, atol=1e-4)
    assert torch.allclose(base.mean(dim=(2, 3)), torch.zeros(1, 3), atol=0.1)  # up to clipping
    assert abs(float(base.std()) - edits.AUTOLEVEL_STD) < 0.08


def test_edge_map_marks_a_step_edge_only():
    x = -torch.ones(1, 3, 16, 16)
    x[..., 8:] = 1.0
    e = (edits.apply_edit("edges", x) + 1) / 2
    assert torch.allclose(e[:, 0], e[:, 2])
    assert float(e[..., 7:9].min()) > 0.9 and float(e[..., :5].max()) < 1e-3 and float(e[..., 11:].max()) < 1e-3


def test_stylisations_stay_in_range_and_change_the_photo(photo):
    for name in ("cartoon", "sketch"):
        y = edits.apply_edit(name, photo)
        assert y.shape == photo.shape and float(y.min()) >= -1 and float(y.max()) <= 1
        assert float((y - photo).abs().mean()) > 0.05
    sketch = (edits.apply_edit("sketch", photo) + 1) / 2
    assert float(sketch.mean()) > float(((photo + 1) / 2).mean())  # paper-white wash


def test_blend_edits_interpolates_between_identity_and_each_edit(photo):
    n = len(edits.LOCAL_EDITS)
    assert torch.allclose(edits.blend_edits(photo, torch.zeros(1, n)), photo)
    for i, name in enumerate(edits.LOCAL_EDITS):
        one = torch.zeros(1, n)
        one[0, i] = 1.0
        assert torch.allclose(edits.blend_edits(photo, one), edits.apply_edit(name, photo), atol=1e-6)
    half = torch.zeros(1, n)
    half[0, 0] = 0.5
    mid = edits.blend_edits(photo, half)
    assert torch.allclose(mid, 0.5 * (photo + edits.apply_edit("grayscale", photo)), atol=1e-6)


def test_edit_image_works_on_uint8_and_refuses_other_input():
    img = load_photo("coffee")[:32, :32]
    out = edits.edit_image("grayscale", img)
    assert out.dtype == np.uint8 and out.shape == img.shape
    assert np.abs(out[..., 0].astype(int) - out[..., 2]).max() <= 1
    with pytest.raises(ValueError):
        edits.edit_image("grayscale", img.astype(np.float32))
    with pytest.raises(KeyError):
        edits.apply_edit("nope", torch.zeros(1, 3, 4, 4))


def test_training_photos_are_bundled_and_disjoint_from_heldout():
    assert not set(TRAIN_PHOTOS) & set(HELDOUT_PHOTOS)
    for name in ("rocket", "camera", "minduka") + HELDOUT_PHOTOS:  # sklearn's photos: importing it alone takes ~10 s
        img = load_photo(name)
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and min(img.shape[:2]) >= 128


@pytest.mark.parametrize("family, config", [
    ("cyclegan", dict(ngf=4, n_blocks=1)),
    ("stargan", dict(conv_dim=4, repeat_num=1)),
])
def test_tiny_recipe_run_lowers_loss_and_writes_a_loadable_model(tmp_path, family, config):
    result = train_family(family, steps=30, seed=0, batch=4, crop=32, threads=1, photos=("coffee",),
                          config=config, final_crop=32, lr=5e-3)
    losses = result.losses
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
    weights, card_path = write_model(result, tmp_path)
    card = json.loads(card_path.read_text())
    assert card["family"] == family and card["training"]["seed"] == 0 and card["training"]["steps"] == 30
    assert card["weights"]["bytes"] == weights.stat().st_size
    assert "heldout_metrics" in card and card["heldout_metrics"]["per_condition"]
    gen = load_generator(family, weights, **card["configuration"])
    inferred = load_generator(family, weights)  # configuration read off the keys
    assert inferred.config == gen.config
    x = torch.zeros(1, 3, 32, 32)
    c = None if not gen.conditional else torch.eye(gen.c_dim)[:1]
    assert torch.allclose(gen.generate(x, c), result.model.generate(x, c))


def _shipped(family: str) -> tuple[Path, Path]:
    weights, card = SHIPPED / f"{family}.safetensors", SHIPPED / f"{family}.json"
    if not weights.is_file() or not card.is_file():
        pytest.skip(f"no shipped {family} weights")
    return weights, card


@pytest.fixture(scope="module")
def heldout() -> torch.Tensor:
    return heldout_crops(128)[::2]  # 8 of the 15 held-out crops keep the test fast


@pytest.mark.parametrize("family", FAMILIES)
def test_shipped_model_loads_and_beats_identity_on_every_condition(family, heldout):
    weights, card_path = _shipped(family)
    card = json.loads(card_path.read_text())
    assert weights.stat().st_size < 10 * 1024 ** 2
    assert card["family"] == family and card["weights"]["bytes"] == weights.stat().st_size
    assert {"task", "conditions", "training", "recipe_command", "heldout_metrics"} <= set(card)
    gen = load_generator(family, weights, **card["configuration"])
    assert load_generator(family, weights).config == gen.config
    assert set(read_checkpoint(weights)) == set(gen.state_dict())
    recipe = get_recipe(family)
    assert [c["name"] for c in card["conditions"]] == list(recipe.condition_names)
    with torch.no_grad():
        for label, c in condition_list(recipe):
            target = target_for(recipe, heldout, c)
            model_l1 = float((gen.generate(heldout, c) - target).abs().mean())
            identity_l1 = float((heldout - target).abs().mean())
            assert model_l1 < identity_l1, f"{family} {label}: model L1 {model_l1:.4f} >= identity {identity_l1:.4f}"
            if not recipe.conditions:  # the stylisations also beat the edit-free auto-levelled input
                levelled = torch.cat([edits.autolevel(heldout[k:k + 1]) for k in range(heldout.shape[0])])
                assert model_l1 < float((levelled - target).abs().mean())


def test_cli_subcommand_is_registered_and_refuses_bad_steps(capsys):
    from apate_core.cli import build_parser, main

    args = build_parser().parse_args(["train-protect", "cyclegan", "--out", "x", "--steps", "5", "--seed", "3"])
    assert (args.family, args.out, args.steps, args.seed) == ("cyclegan", "x", 5, 3)
    assert main(["train-protect", "cyclegan", "--out", "x", "--steps", "0"]) == 2
    assert "steps" in capsys.readouterr().err
