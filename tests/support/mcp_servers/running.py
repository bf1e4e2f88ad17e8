"""Start the tests' MCP server over streamable HTTP on 127.0.0.1, and where its script is."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.llama_server import free_port

#: The tests' MCP server (``tools_server.py``): run it over stdio as ``python SERVER``.
SERVER = str(Path(__file__).with_name("tools_server.py"))


@contextmanager
def http_mcp_server(*args: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Yield (the server's URL, ``http://127.0.0.1:PORT/mcp``, its process); stopped on exit."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, SERVER, "http", str(port), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the MCP test server did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp", process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
