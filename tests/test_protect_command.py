"""``apate protect``: files at the input's size with the exact ε bound, JSON metrics, refusals exit 2."""

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from apate_core.cli import main
from apate_core.protect import create_generator
from apate_core.protect.job import GeneratorChoice

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("APATE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("APATE_MODELS_DIR", str(tmp_path / "models"))
    # keep the random demo small and quick: a 32x32 model input
    from apate_core.protect import job

    original = job.available_generators

    def tiny(settings, family=None, shipped_dir=None):
        return [GeneratorChoice(c.family, c.label, c.path, c.config, c.source, (32, 32)) if c.demo else c
                for c in original(settings, family, tmp_path / "no-shipped")]

    monkeypatch.setattr(job, "available_generators", tiny)


def photo(tmp_path, name="in.png", h=100, w=150):
    rng = np.random.default_rng(0)
    rgb = rng.integers(30, 220, (h, w, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / name)
    return tmp_path / name, rgb


def test_protect_writes_input_size_png_within_eps_and_prints_json(tmp_path, capsys):
    src, rgb = photo(tmp_path)
    out = tmp_path / "out"
    code = main(["protect", str(src), "--iters", "2", "--eps", "0.03", "--targets", "Male", "--no-robustness",
                 "--out", str(out), "--json", "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    data = json.loads(captured.out)
    assert "random weights (demo only" in captured.err
    entry = data["images"][0]
    saved = np.asarray(Image.open(entry["output"]))
    assert entry["output"] == str(out / "in.protected.png") and saved.shape == (100, 150, 3)
    delta = np.abs(saved.astype(int) - rgb.astype(int)).max()
    assert 1 <= delta <= math.floor(0.03 * 127.5) and delta == entry["perturbation"]["linf_8bit"]
    assert data["params"]["epsilon"] == 0.03 and data["params"]["attack"] == "pgd"
    assert data["images"][0]["outputs"][0]["target"] == "Male" and data["images"][0]["robustness"] == []


def test_no_shaping_flag_reaches_the_job_and_its_metrics(tmp_path, capsys):
    src, _ = photo(tmp_path, h=40, w=56)
    for flags, shaping in (([], True), (["--no-shaping"], False)):
        code = main(["protect", str(src), "--iters", "1", "--targets", "Male", "--no-robustness", "--out",
                     str(tmp_path / "out"), "--json", "--quiet", *flags])
        data = json.loads(capsys.readouterr().out)
        assert code == 0 and data["params"]["shaping"] is shaping and data["images"][0]["shaping"] is shaping


def test_protect_with_weights_and_robustness_human_output(tmp_path, capsys):
    src, _ = photo(tmp_path, h=48, w=64)
    weights = tmp_path / "latest_net_G.pth"
    torch.save(create_generator("cyclegan", ngf=8, n_blocks=1).state_dict(), weights)
    code = main(["protect", str(src), "--model", "cyclegan", "--weights", str(weights), "--attack", "fgsm",
                 "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "after jpeg75" in captured.out and "wrote" in captured.out and "random weights" not in captured.err
    assert Image.open(tmp_path / "in.protected.png").size == (64, 48)


@pytest.mark.parametrize("args, needle", [
    (["--eps", "0.7"], "epsilon"),
    (["--eps", "0"], "epsilon"),
    (["--step", "-0.1"], "step"),
    (["--iters", "0"], "iterations"),
    (["--targets", "happy"], "Black_Hair"),
    (["--weights", "missing.pth"], "does not exist"),
])
def test_refused_parameters_exit_2(tmp_path, capsys, args, needle):
    src, _ = photo(tmp_path, h=16, w=16)
    code = main(["protect", str(src), "--quiet", *args])
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert code == 2 and last.startswith("error: ") and needle in last and "Traceback" not in err


def test_refused_inputs_exit_2(tmp_path, capsys):
    (tmp_path / "notes.png").write_text("not an image")
    bad_weights = tmp_path / "bad.pth"
    torch.save({"foo": torch.zeros(3)}, bad_weights)
    src, _ = photo(tmp_path, h=16, w=16)
    for args in (["notes.png"], ["nothing.png"], ["in.png", "--weights", str(bad_weights)]):
        code = main(["protect", *[str(tmp_path / a) if a.endswith(".png") else a for a in args], "--quiet"])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err


def test_a_portrait_is_cloaked_against_face_recognition_by_default(tmp_path, capsys):
    from skimage import data

    rgb = np.ascontiguousarray(data.astronaut())
    Image.fromarray(rgb).save(tmp_path / "astronaut.png")
    code = main(["protect", str(tmp_path / "astronaut.png"), "--iters", "12", "--json", "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    entry = json.loads(captured.out)["images"][0]
    assert entry["target"] == "identity" and len(entry["faces"]) == 1
    saved = np.asarray(Image.open(entry["output"]))
    assert np.abs(saved.astype(int) - rgb.astype(int)).max() <= entry["epsilon_steps"] <= 8
    assert {c["condition"] for c in entry["checks"]} >= {"as saved", "JPEG 75", "resized to half"}
    code = main(["protect", str(tmp_path / "astronaut.png"), "--target", "identity", "--eps", "0.0001", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "less than one 8-bit step" in err
