"""``import abstractcore`` stays light: nothing heavy until first use, every public name still
importable, and a plain call loads no module of a feature it does not use."""

from __future__ import annotations

import subprocess
import sys

import pytest

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
    "genai_prices",
    "json_repair",
    "tqdm",
    "typing",  # not even the standard library's typing: a bare interpreter has not loaded it
    "dataclasses",
    "email.utils",
    # abstractcore's own modules that a call loads when it needs them (the lazy exports)
    "abstractcore._sync",
    "abstractcore.core.types",
    "abstractcore.core.config",
    "abstractcore.features.request",
    "abstractcore.features.structured",
    "abstractcore.features.tools.schema",
    "abstractcore.integrations.mcp",
    "abstractcore.registry",
    "abstractcore.router",
    "abstractcore.run",
    "abstractcore.server",
    "abstractcore.session",
    "abstractcore.wire.openai_chat.client",
]

#: What a plain call (no tools, no response_model, no router, no MCP) never needs.
NOT_FOR_A_PLAIN_CALL = [
    "abstractcore.batch",
    "abstractcore.features.structured",
    "abstractcore.features.structured_strategy",
    "abstractcore.features.tools.schema",
    "abstractcore.features.tools.strategy",
    "abstractcore.integrations.mcp",
    "abstractcore.router",
    "abstractcore.run",
    "abstractcore.server",
    "abstractcore.session",
    "abstractcore.wire.anthropic_messages.client",
    "abstractcore.wire.openai_chat.server",
    "abstractcore.wire.openai_responses.client",
    "abstractcore.wire.openai_responses.server",
    "json_repair",
    "tqdm",
    "pydantic",
]
#: The client side of a provider's own protocol is what its call needs.
OWN_WIRE = {"anthropic": "abstractcore.wire.anthropic_messages.client"}


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


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_import_of_abstractllm_alias_pulls_in_no_heavy_module() -> None:
    code = f"import sys, abstractllm\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    assert _run(code) == ""


@pytest.mark.parametrize("package", ["abstractcore", "abstractllm"])
def test_every_public_name_resolves_in_a_fresh_process(package: str) -> None:
    # each name alone, as `from abstractcore import X` in a new interpreter, then `import *`
    code = (
        f"import importlib, subprocess, sys\nimport {package} as p\n"
        "bad = [n for n in p.__all__ if getattr(p, n, None) is None]\n"
        f"exec('from {package} import *', ns := {{}})\n"
        "print(bad, sorted(set(p.__all__) - set(ns)), set(p.__all__) <= set(dir(p)))\n"
    )
    assert _run(code) == "[] [] True"
    for name in ("Message", "GenerateResponse", "ConfigurationError", "Deployment", "MCPTools", "tool"):
        assert _run(f"from {package} import {name}\nprint({name}.__module__.split('.')[0])") == "abstractcore"


def test_an_unknown_name_is_an_attribute_error() -> None:
    code = (
        "import abstractcore\n"
        "try:\n    abstractcore.NoSuchThing\nexcept AttributeError as e:\n    print(e)\n"
        "try:\n    from abstractcore import NoSuchThing\nexcept ImportError:\n    print('ImportError')\n"
    )
    assert _run(code).splitlines() == ["module 'abstractcore' has no attribute 'NoSuchThing'", "ImportError"]


@pytest.mark.parametrize("provider", ["openai", "anthropic", "ollama"])
def test_a_plain_call_loads_no_module_of_an_unused_feature(provider: str) -> None:
    unused = [m for m in NOT_FOR_A_PLAIN_CALL if m != OWN_WIRE.get(provider)]
    # the call fails (nothing listens on port 9) after the whole request path ran: the request
    # built, the body written, the transport opened
    code = (
        "import sys\nfrom abstractcore import create_llm, RetryConfig\n"
        f"llm = create_llm({provider!r}, model='m', base_url='http://127.0.0.1:9/v1', api_key='k',"
        " retry_config=RetryConfig(max_attempts=1))\n"
        "try:\n    llm.generate('Hi', temperature=0.5)\nexcept Exception as e:\n    print(type(e).__name__)\n"
        f"print(','.join(m for m in {unused!r} if m in sys.modules))\n"
    )
    assert _run(code).splitlines() == ["ProviderConnectionError"]
