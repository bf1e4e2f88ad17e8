"""``import abstractcore`` stays light: nothing heavy until first use."""

from __future__ import annotations

import subprocess
import sys

HEAVY = [
    "asyncio",
    "anyio",
    "httpx",
    "aiohttp",
    "pydantic",
    "backoff",
    "torch",
    "llama_cpp",
    "transformers",
    "mlx",
    "numpy",
    "mcp",
]


def test_import_pulls_in_no_heavy_module() -> None:
    code = (
        "import sys, abstractcore, abstractllm\n"
        "from abstractcore import create_llm\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_create_llm_for_http_provider_defers_the_http_library() -> None:
    code = (
        "import sys\nfrom abstractcore import create_llm\n"
        "create_llm('openai', model='m', base_url='http://127.0.0.1:9/v1')\n"
        "print(','.join(m for m in ('aiohttp', 'torch', 'llama_cpp') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
