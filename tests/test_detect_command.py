"""``apate detect`` end to end: real subprocesses, --json, --out, the store, refused input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
APATE = [sys.executable, "-m", "apate_core.cli"]
CLIP = ROOT / "assets" / "samples" / "coffee_pan.mp4"


def apate(*args, cache, cwd=None):
    """The real command in a subprocess."""
    env = dict(os.environ, APATE_CACHE_DIR=str(cache), OMP_NUM_THREADS="2")
    return subprocess.run([*APATE, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


@pytest.fixture
def apate_here(monkeypatch, capsys, one_thread):
    """The same command in this process (no interpreter and torch start-up per call)."""
    from apate_core.cli import main

    def run(*args, cache, cwd=None):
        monkeypatch.setenv("APATE_CACHE_DIR", str(cache))
        if cwd is not None:
            monkeypatch.chdir(cwd)
        code = main(list(args))
        out = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out.out, out.err)

    return run


@pytest.fixture
def images(tmp_path):
    import skimage.data

    a, b = tmp_path / "astronaut.png", tmp_path / "grey.jpg"
    Image.fromarray(skimage.data.astronaut()).save(a)
    Image.fromarray(np.full((80, 100, 3), 128, np.uint8)).save(b)
    return a, b


def test_video_json_and_out_dir(tmp_path):
    out = tmp_path / "results"
    run = apate("detect", str(CLIP), "--fps", "1", "--model", "resnet18", "--out", str(out), "--json",
                "--top-k", "2", cache=tmp_path / "cache")
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["kind"] == "video" and data["label"] in ("real", "fake", "uncertain", "segments")
    assert data["verdict"]["label"] == data["label"] and data["verdict"]["decided_by"] in ("model", "segments")
    assert 0.0 <= data["score"] <= 1.0 and len(data["frames"]) == 6
    assert data["model"]["name"] == "resnet18" and data["params"]["fps"] == 1.0
    folder = out / "coffee_pan"
    assert data["output_dir"] == str(folder.resolve())
    written = json.loads((folder / "result.json").read_text())
    assert written["frames"] == data["frames"]
    heatmaps = sorted(p.name for p in (folder / "heatmaps").iterdir())
    assert heatmaps == sorted(Path(f["heatmap"]).name for f in data["frames"] if f["heatmap"]) and len(heatmaps) == 2
    assert (folder / "report.html").stat().st_size > 100_000  # plotly.js inlined


def test_several_images_default_out_faces_no_cam_and_human_output(tmp_path, images, apate_here):
    run = apate_here("detect", *map(str, images), "--faces", "--cam", "none", "--model", "resnet18",
                cache=tmp_path / "cache", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "astronaut.png:" in run.stdout and "grey.jpg:" in run.stdout and "summary: 2 inputs" in run.stdout
    assert run.stdout.count("Decided by the model's score") == 2  # still images: no timeline
    astro = json.loads((tmp_path / "apate-results" / "astronaut" / "result.json").read_text())
    grey = json.loads((tmp_path / "apate-results" / "grey" / "result.json").read_text())
    assert len(astro["frames"][0]["faces"]) == 1 and astro["frames"][0]["heatmap"] is None
    assert grey["frames"][0]["no_face"] is True and grey["face_fallback"] is True


def test_several_inputs_json_has_a_summary(tmp_path, images, apate_here):
    run = apate_here("detect", *map(str, images), "--json", "--cam", "none", "--model", "resnet18", "--quiet",
                "--out", str(tmp_path / "o"), cache=tmp_path / "cache")
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["summary"]["analysed"] == 2 and len(data["results"]) == 2


@pytest.mark.parametrize("args, expected", [
    (lambda d: [str((d / "notes.mp4").write_text("plain text") and d / "notes.mp4")], "not a recognised image or video"),
    (lambda d: [str(d / "missing.jpg")], "No such file"),
    (lambda d: [str(d)], "is a folder, not a file. Accepted: paths to video or image files; `apate scan` analyses folders"),
    (lambda d: [str(CLIP), "--model", "no-such-model"], "no-such-model"),
    (lambda d: [str(CLIP), "--cam", "no-such-cam"], "Unknown heatmap method"),
    (lambda d: [str(CLIP), "--fps", "-1"], "fps must be a positive number"),
])
def test_refused_input_exits_2_with_one_error_line(tmp_path, args, expected, apate_here):
    run = apate_here("detect", *args(tmp_path), "--out", str(tmp_path / "o"), cache=tmp_path / "cache")
    assert run.returncode == 2, (run.stdout, run.stderr)
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], run.stderr
    assert "Traceback" not in run.stderr and not (tmp_path / "o").exists()


def test_refused_input_in_a_real_process(tmp_path):
    (tmp_path / "notes.jpg").write_text("plain text")
    run = apate("detect", str(tmp_path / "notes.jpg"), cache=tmp_path / "cache", cwd=tmp_path)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [run.stderr.strip()] and run.stderr.startswith("error: ")
    assert not (tmp_path / "apate-results").exists()
