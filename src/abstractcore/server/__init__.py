"""``abstractcore serve``: any abstractcore model over the OpenAI and Anthropic wire formats.

    abstractcore serve --provider ollama --model qwen2.5-coder:7b      # then point any SDK at it:
    OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="-")
    Anthropic(base_url="http://127.0.0.1:8000", api_key="-")

From Python::

    from abstractcore import create_llm
    from abstractcore.server import ServerConfig, create_app, run

    models = {"local": create_llm("huggingface"), "coder": create_llm("ollama", model="qwen2.5-coder")}
    run(create_app(models), ServerConfig(port=8080))

Endpoints: ``POST /v1/chat/completions``, ``GET /v1/models``, ``POST /v1/embeddings`` (OpenAI) and
``POST /v1/messages`` (Anthropic). The server uses only the public async API of the LLM objects
it serves, so a router or any other LLM object works too. See docs/server.md.
"""

from __future__ import annotations

from abstractcore.server.app import create_app, run, start
from abstractcore.server.backends import Backends
from abstractcore.server.config import ModelEntry, ServerConfig, load_config

__all__ = ["Backends", "ModelEntry", "ServerConfig", "create_app", "load_config", "run", "start"]
