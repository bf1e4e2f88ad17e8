"""Model files the in-process provider tests build for themselves, and helpers they share."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path


def build_hf_dir(gguf: Path, out: Path) -> Path:
    """A transformers/MLX model directory (fp16 safetensors + tokenizer) made from ``gguf``.

    A GGUF-loaded model refuses ``save_pretrained``, so the model is rebuilt
    from its config (without ``quantization_config``) and given the weights.
    Built once per test session; later calls return the cached directory.
    """
    if (out / "config.json").is_file() and (out / "model.safetensors").is_file():
        return out
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config = loaded.config.to_dict()
    config.pop("quantization_config", None)
    model = AutoModelForCausalLM.from_config(type(loaded.config).from_dict(config),
                                             dtype=torch.float16)
    model.load_state_dict(loaded.state_dict())
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    os.replace(partial, out)
    return out


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def rss_bytes() -> int:
    """This process's resident set size."""
    import psutil

    return int(psutil.Process().memory_info().rss)
