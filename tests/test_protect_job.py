"""The Protect job API: model sources, parameters, the ε bound in the saved file, batching, store, cancel."""

import io
import json
import math
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from apate_core.errors import Cancelled, InputRefused, UnsupportedMedia
from apate_core.progress import CancelToken
from apate_core.protect import create_attack, create_generator
from apate_core.protect.job import (RANDOM_LABEL, GeneratorChoice, ImageInput, InvalidProtectParams, ProtectParams,
                                    available_generators, load_image, resolve_targets, run_protect_job,
                                    target_options, weights_id)
from apate_core.store import ResultStore

pytestmark = pytest.mark.usefixtures("one_thread")
TINY = {"conv_dim": 8, "repeat_num": 1}
FAST = ProtectParams(iterations=2, targets=("Male",), with_robustness=False)


def tiny_choice(family="stargan", **config):
    return GeneratorChoice(family, f"{family}: tiny", None, config or dict(TINY), model_size=(32, 32))


def photo(h, w, seed=0):
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 255, w)[None, :, None] * np.ones((h, 1, 3))
    return np.clip(base + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)


def save_png(path, rgb):
    Image.fromarray(rgb).save(path)
    return path


def test_available_generators_random_demo_only_when_nothing_else(settings, tmp_path):
    choices = available_generators(settings, shipped_dir=tmp_path / "none")
    assert {c.family for c in choices} == {"stargan", "ganimation", "cyclegan", "pix2pixhd"}
    assert all(c.demo and RANDOM_LABEL in c.label and c.source == "random" for c in choices)
    # a discovered checkpoint and a shipped default replace the demo for their family
    gen = create_generator("cyclegan", ngf=8, n_blocks=1)
    folder = settings.models_path / "cyclegan"
    folder.mkdir(parents=True)
    torch.save(gen.state_dict(), folder / "latest_net_G_A.pth")
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    from safetensors.torch import save_file

    save_file(create_generator("stargan", **TINY).state_dict(), str(shipped / "stargan.safetensors"))
    (shipped / "stargan.json").write_text(json.dumps({"title": "Apate CelebA-tiny"}))
    choices = available_generators(settings, shipped_dir=shipped)
    cyc = [c for c in choices if c.family == "cyclegan"]
    star = [c for c in choices if c.family == "stargan"]
    assert [c.source for c in cyc] == ["checkpoint"] and cyc[0].path.name == "latest_net_G_A.pth"
    assert [c.source for c in star] == ["shipped"] and "Apate CelebA-tiny" in star[0].label
    assert [c.source for c in choices if c.family == "ganimation"] == ["random"]
    assert len(weights_id(star[0])) == 64 and weights_id(tiny_choice()).startswith("random:")


def test_params_validation_messages():
    for bad, needle in [(dict(epsilon=0.0), "epsilon"), (dict(epsilon=0.6), "epsilon"), (dict(epsilon=0.004), "8-bit"),
                        (dict(step_size=-1), "step"), (dict(iterations=0), "iterations"),
                        (dict(attack="cw"), "attack"), (dict(output_format="gif"), "format")]:
        with pytest.raises(InvalidProtectParams, match=needle):
            ProtectParams(**bad).validate()
    assert ProtectParams(attack="I-FGSM").validate().attack == "ifgsm"


def test_targets_per_family():
    star = create_generator("stargan", **TINY)
    assert [n for n, _ in target_options(star)] == ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]
    gan = create_generator("ganimation", conv_dim=8, repeat_num=1)
    assert [n for n, _ in target_options(gan)][:3] == ["happy", "surprise", "sad"]
    assert target_options(create_generator("cyclegan", ngf=8, n_blocks=1)) == [("none", None)]
    assert [n for n, _ in resolve_targets(star, ["male", "Young"])] == ["Male", "Young"]
    with pytest.raises(InvalidProtectParams, match="happy"):
        resolve_targets(star, ["happy"])


def test_epsilon_bound_holds_in_the_saved_png_at_the_input_size(settings, tmp_path):
    rgb = photo(100, 150)  # 150x100: not the model's size nor a multiple of anything
    image = load_image(save_png(tmp_path / "in.png", rgb), settings)
    for attack, eps in [("pgd", 0.05), ("fgsm", 0.03), ("ifgsm", 0.02)]:
        params = ProtectParams(attack=attack, epsilon=eps, iterations=2, targets=("Male", "Young"),
                               with_robustness=False)
        result = run_protect_job([image], tiny_choice(), params, settings)
        out = result.images[0]
        (tmp_path / out.file_name).write_bytes(out.encoded)
        saved = np.asarray(Image.open(tmp_path / out.file_name))
        assert saved.shape == (100, 150, 3) and out.file_name == "in.protected.png"
        delta = np.abs(saved.astype(int) - rgb.astype(int))
        assert delta.max() <= math.floor(eps * 127.5) and delta.max() >= 1
        assert out.metrics["perturbation"]["linf_8bit"] == delta.max()


def test_metrics_robustness_and_lossy_saved_row(settings):
    image = ImageInput("p.jpg", "0" * 64, photo(48, 64))
    params = ProtectParams(iterations=2, targets=("Male", "Blond_Hair"), output_format="jpeg")
    result = run_protect_job([image], tiny_choice(), params, settings)
    m = result.images[0].metrics
    assert set(m["perturbation"]) == {"l2", "linf", "linf_8bit"} and 0 < m["quality"]["ssim"] < 1
    assert [o["target"] for o in m["outputs"]] == ["Male", "Blond_Hair"]
    assert all(set(o) == {"target", "mse", "l1", "l2", "disrupted"} for o in m["outputs"])
    assert all(o["disrupted"] == (o["mse"] > 0.05) for o in m["outputs"])
    assert [r["transform"] for r in m["robustness"]] == ["jpeg95", "jpeg75", "jpeg50", "resize0.5", "blur1.5"]
    assert m["saved_file"]["transform"] == "saved as jpeg q95"
    assert result.images[0].encoded[:2] == b"\xff\xd8" and result.images[0].file_name == "p.protected.jpg"
    assert result.images[0].outputs_original.shape == (2, 32, 32, 3)
    json.loads(result.metrics_json())


def test_batch_groups_sizes_uses_the_store_and_zips(settings, tmp_path):
    images = [ImageInput(f"i{i}.png", str(i) * 64, photo(*shape, seed=i))
              for i, shape in enumerate([(48, 64), (48, 64), (40, 30)])]
    with ResultStore(tmp_path / "store", 50 * 2 ** 20) as store:
        seen = []
        first = run_protect_job(images, tiny_choice(), FAST, settings, store=store,
                                progress=lambda f, m: seen.append(f))
        assert [im.original.shape for im in first.images] == [(48, 64, 3), (48, 64, 3), (40, 30, 3)]
        assert [im.protected.shape for im in first.images] == [(48, 64, 3), (48, 64, 3), (40, 30, 3)]
        assert seen == sorted(seen) and seen[-1] == 1.0 and not any(im.cached for im in first.images)
        again = run_protect_job(images, tiny_choice(), FAST, settings, store=store)
        assert all(im.cached for im in again.images)
        assert all((a.protected == b.protected).all() for a, b in zip(first.images, again.images))
        other = run_protect_job(images[:1], tiny_choice(), ProtectParams(iterations=3, targets=("Male",),
                                                                         with_robustness=False), settings, store=store)
        assert not other.images[0].cached
    with zipfile.ZipFile(io.BytesIO(first.zip_bytes())) as zf:
        assert sorted(zf.namelist()) == ["i0.protected.png", "i1.protected.png", "i2.protected.png", "metrics.json"]


def test_batched_attack_matches_one_by_one(settings):
    """Same-size images share one batch; per-image instance norm keeps them independent."""
    gen = create_generator("stargan", **TINY).eval().requires_grad_(False)
    attack = create_attack("ifgsm", iterations=2, start_noise=1e-3)
    from apate_core.protect import image_to_tensor

    a, b = image_to_tensor(photo(48, 64, 1)), image_to_tensor(photo(48, 64, 2))
    c = [torch.tensor([[0.0, 0, 0, 1, 0]])]
    both = attack.run(gen, torch.cat([a, b]), c, model_size=(32, 32)).protected
    alone = attack.run(gen, b, c, model_size=(32, 32)).protected
    # the random start differs per position in the batch, so compare the first image with its own run
    first = attack.run(gen, a, c, model_size=(32, 32)).protected
    # batched convolutions round differently, so a near-zero gradient may flip sign on a few pixels
    same = (both[0:1] - first).abs().le(1e-5).float().mean()
    assert same > 0.98 and both.shape == (2, 3, 48, 64) and alone.shape[0] == 1


def test_limits_refusals_and_cancel(settings, tmp_path):
    with pytest.raises(InvalidProtectParams, match="APATE_MAX_BATCH"):
        run_protect_job([ImageInput("x", "0" * 64, photo(8, 8))] * (settings.max_batch + 1), tiny_choice(), FAST,
                        settings)
    video = tmp_path / "clip.mp4"
    video.write_bytes((__import__("pathlib").Path(__file__).parent.parent / "assets/samples/coffee_pan.mp4")
                      .read_bytes())
    with pytest.raises(UnsupportedMedia, match="video"):
        load_image(video, settings)
    from apate_core.settings import load_settings

    small = load_settings({}, cache_dir=settings.cache_dir, models_dir=settings.models_dir, max_image_side=60)
    with pytest.raises(InputRefused, match="60 px"):
        load_image(save_png(tmp_path / "big.png", photo(40, 80)), small)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        run_protect_job([ImageInput("x", "0" * 64, photo(16, 16))], tiny_choice(), FAST, settings, cancel=token)


def test_pgd_without_random_start_is_not_a_no_op():
    from apate_core.protect import image_to_tensor

    gen = create_generator("stargan", **TINY).eval().requires_grad_(False)
    x = image_to_tensor(photo(32, 32))
    c = [torch.tensor([[0.0, 0, 0, 1, 0]])]
    with_rs = create_attack("pgd", iterations=1, step_size=0.01).initial_offset(x, torch.Generator().manual_seed(0))
    no_rs = create_attack("pgd", iterations=1, step_size=0.01, random_start=False)
    assert with_rs.abs().max() > 0.01
    assert no_rs.initial_offset(x, torch.Generator().manual_seed(0)).abs().max() <= 0.001
    out = no_rs.run(gen, x, c, model_size=(32, 32))
    assert 0.009 < float(out.perturbation.abs().max()) <= 0.0111


def test_shipped_model_card_names_the_targets_and_the_model_size(settings, tmp_path):
    from safetensors.torch import save_file

    from apate_core.protect.job import choice_target_names

    shipped = tmp_path / "shipped"
    shipped.mkdir()
    save_file(create_generator("stargan", conv_dim=8, c_dim=3, repeat_num=1).state_dict(),
              str(shipped / "stargan.safetensors"))
    card = {"name": "tiny", "native_size": [32, 32], "conditions": [{"name": "warm"}, {"name": "cool"}, "blur"]}
    (shipped / "stargan.json").write_text(json.dumps(card))
    (choice,) = available_generators(settings, "stargan", shipped_dir=shipped)
    assert choice.conditions == ("warm", "cool", "blur") and choice.model_size == (32, 32)
    assert choice_target_names(choice) == ["warm", "cool", "blur"]
    result = run_protect_job([ImageInput("p.png", "1" * 64, photo(24, 40))], choice,
                             ProtectParams(iterations=1, targets=("cool",), with_robustness=False), settings)
    assert result.model_size == (32, 32) and result.images[0].target_names == ("cool",)
    with pytest.raises(InvalidProtectParams, match="warm, cool, blur"):
        run_protect_job([ImageInput("p.png", "1" * 64, photo(24, 40))], choice,
                        ProtectParams(iterations=1, targets=("Male",)), settings)


def test_shipped_summary_reports_the_card_task_and_measured_efficacy(settings, tmp_path):
    from safetensors.torch import save_file

    from apate_core.protect.job import shipped_summary

    shipped = tmp_path / "shipped"
    shipped.mkdir()
    save_file(create_generator("cyclegan", ngf=8, n_blocks=1).state_dict(), str(shipped / "cyclegan.safetensors"))
    card = {"task": "photo -> cartoon", "training": {"kind": "paired, supervised"}}
    (shipped / "cyclegan.json").write_text(json.dumps(card))
    (choice,) = available_generators(settings, "cyclegan", shipped_dir=shipped)
    text = shipped_summary(choice)
    assert "photo -> cartoon" in text and "paired, supervised" in text and "Measured" not in text

    card["efficacy"] = {"measured_on": "2026-12-01", "attack": "PGD-10, eps 0.05", "photos": ["a.jpg", "b.jpg"],
                        "pairs": 2, "disrupted": 0.5, "faithful_bound": 0.5}
    (shipped / "cyclegan.json").write_text(json.dumps(card))
    text = shipped_summary(choice)
    assert "on 2 real photos: 50% of 2 (photo, target) pairs disrupted" in text
    assert "a perfect model of the same task: 50%" in text and "expect little disruption" in text
    assert shipped_summary(available_generators(settings, "cyclegan", shipped_dir=tmp_path / "none")[0]) is None
