#!/usr/bin/env bash
# Prove the anyio floor declared in pyproject.toml: run the thread-bridge tests against the lowest
# anyio allowed (the worker hands tokens to the event loop; older anyio lacks what newer has).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
floor=$(sed -n 's/^ *"anyio>=\([0-9.]*\)",*$/\1/p' pyproject.toml)
[ -n "$floor" ] || { echo "no anyio floor found in pyproject.toml" >&2; exit 1; }
[ -x .venv-floor/bin/python ] || "$PY" -m venv .venv-floor
.venv-floor/bin/python -m pip install --quiet -e . pytest pytest-timeout trio "anyio==$floor"
.venv-floor/bin/python -c "import anyio, importlib.metadata as m; print('anyio floor', m.version('anyio'))"
.venv-floor/bin/python -m pytest -q -p no:cacheprovider tests/engines/test_worker.py
