"""The apate command: real subprocesses, exit codes, one-line errors, JSON output."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
APATE = [sys.executable, "-m", "apate_core.cli"]


def apate(*args, env_cache):
    import os

    env = dict(os.environ, APATE_CACHE_DIR=str(env_cache))
    return subprocess.run([*APATE, *args], capture_output=True, text=True, env=env, timeout=300)


def test_inspect_json_of_an_image(tmp_path):
    path = tmp_path / "photo.webp"
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(path)
    result = apate("inspect", str(path), "--json", env_cache=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["media"]["kind"] == "image" and report["media"]["format"] == "webp"
    assert report["media"]["image"]["width"] == 30 and report["provenance"]["present"] is False


def test_inspect_human_output_of_a_video(tmp_path):
    result = apate("inspect", str(ROOT / "assets" / "samples" / "coffee_pan.mp4"), env_cache=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "video (mp4)" in result.stdout and "640" in result.stdout and "provenance:" in result.stdout


@pytest.mark.parametrize(
    "make_input, expected",
    [
        (lambda d: (d / "notes.mp4").write_text("plain text") and str(d / "notes.mp4"), "not a recognised image or video"),
        (lambda d: str(d / "missing.jpg"), "No such file"),
        (lambda d: str(d), "is a folder, not a file"),
        (lambda d: "http://127.0.0.1:9/x.mp4", "127.0.0.1"),
        (lambda d: "ftp://example.org/x.mp4", "ftp"),
    ],
)
def test_refused_input_exits_2_with_one_error_line(tmp_path, make_input, expected):
    result = apate("inspect", make_input(tmp_path), env_cache=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_inspect_reads_c2pa_credentials(testdata, tmp_path):
    result = apate("inspect", str(testdata / "c2pa" / "C.jpg"), "--json", env_cache=tmp_path)
    assert result.returncode == 0, result.stderr
    provenance = json.loads(result.stdout)["provenance"]
    assert provenance["present"] is True and provenance["validation_state"] == "Valid"
