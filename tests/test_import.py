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
    "opentelemetry",
]


def test_import_pulls_in_no_heavy_module() -> None:
    code = (
        "import sys, abstractcore, abstractllm\n"
        "from abstractcore import create_llm\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_a_call_without_instrument_imports_no_opentelemetry() -> None:
    # the call fails (nothing listens on port 9); tracing is off, so nothing of OpenTelemetry loads
    code = (
        "import sys\nfrom abstractcore import create_llm, RetryConfig\n"
        "llm = create_llm('openai', model='m', base_url='http://127.0.0.1:9/v1', api_key='k',"
        " retry_config=RetryConfig(max_attempts=1))\n"
        "try:\n    llm.generate('Hi')\nexcept Exception as e:\n    print(type(e).__name__)\n"
        "print([m for m in sys.modules if m.startswith('opentelemetry')])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["ProviderConnectionError", "[]"]


def test_create_llm_for_http_provider_defers_the_http_library() -> None:
    code = (
        "import sys\nfrom abstractcore import create_llm\n"
        "create_llm('openai', model='m', base_url='http://127.0.0.1:9/v1')\n"
        "print(','.join(m for m in ('aiohttp', 'torch', 'llama_cpp') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
