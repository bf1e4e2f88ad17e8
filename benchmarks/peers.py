"""The peers as ``overhead.py`` clients: the official SDKs and LiteLLM, each through its own public API.

Every peer gets the fake server's root URL, the pool size and the canned values (model, key,
prompt, answer) from ``overhead.py`` (as ``coldstart.py`` does) and returns a :class:`Peer`: one
request, one stream per wire format it speaks, and ``close``. Each is driven the way its docs
say, with retries off, and given the same connection limit where it lets the caller set one:

- ``openai-sdk``: ``AsyncOpenAI(base_url=, api_key=, max_retries=0,
  http_client=DefaultAsyncHttpxClient(limits=Limits(pool, pool)))``
  (``Limits`` of ``httpx2``, the httpx fork the SDKs are built on); requests are
  ``chat.completions.create``, the OpenAI SSE stream is ``create(stream=True,
  stream_options={"include_usage": True})``. Blocking face: ``OpenAI`` + ``DefaultHttpxClient``.
- ``openai-sdk+aiohttp`` / ``anthropic-sdk+aiohttp``: the same SDKs on their aiohttp backend
  (``DefaultAioHttpClient(limits=...)``, the ``[aiohttp]`` extra; its connector gets the limit).
- ``anthropic-sdk``: ``AsyncAnthropic(base_url=, api_key=, max_retries=0,
  http_client=DefaultAsyncHttpxClient(limits=...))``; requests are ``messages.create`` (the
  Anthropic Messages format: the fake server answers it non-streaming), the Anthropic SSE
  stream is ``messages.create(stream=True)`` counting ``text_delta`` events.
- ``litellm``: ``litellm.acompletion`` with ``openai/``, ``ollama_chat/`` and ``anthropic/``
  model prefixes and ``api_base=``, so it speaks all three formats. Its HTTP clients are its
  own (cached per provider): the pool size cannot be set through ``acompletion``. Its loop
  detector (a stream of 100 identical deltas is an error) is lifted for the fake stream.
- ``any-llm`` (PyPI ``any-llm-sdk``): one ``AnyLLM.create(provider, api_base=, max_retries=0,
  http_client=...)`` per format, then ``.acompletion``; openai and anthropic go through the
  official SDKs (given the same pool), ollama (the ``[ollama]`` extra) through ``ollama``'s
  client with httpx's limits.

Only ``openai``/``anthropic`` are dependencies of the project's venv; LiteLLM and any-llm are
run from a separate venv (see ``benchmarks/README.md``). :func:`missing` says which peer
cannot be imported, so ``overhead.py`` skips it with a note instead of failing.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

#: peer client name -> the modules it needs (checked with ``find_spec``, without importing them)
NEEDS = {
    "openai-sdk": ("openai",),
    "openai-sdk+aiohttp": ("openai", "aiohttp"),
    "anthropic-sdk": ("anthropic",),
    "anthropic-sdk+aiohttp": ("anthropic", "aiohttp"),
    "litellm": ("litellm",),
    "any-llm": ("any_llm",),
}


@dataclass
class Peer:
    name: str
    request: Callable[[], Awaitable[None]]
    streams: dict[str, Callable[[], Awaitable[int]]]
    close: Callable[[], Awaitable[None]]
    note: str
    request_format: str = "openai"
    settle: Callable[[], Awaitable[None]] | None = None  # see overhead.Client.settle


@dataclass
class Canned:
    """What the fake server expects and answers (``overhead.py``'s constants)."""

    model: str
    api_key: str
    prompt: str
    answer: str


def missing(name: str) -> str | None:
    """The first module ``name`` needs that is not importable here, or None."""
    return next((m for m in NEEDS[name] if importlib.util.find_spec(m) is None), None)


def _messages(c: Canned) -> list[dict[str, str]]:
    return [{"role": "user", "content": c.prompt}]


def _limits(pool: int) -> Any:
    import httpx2  # the httpx fork both official SDKs are built on (their http_client type)

    return httpx2.Limits(max_connections=pool, max_keepalive_connections=pool)


async def make_openai_sdk(root: str, pool: int, c: Canned, *, aiohttp: bool = False) -> Peer:
    import openai

    make_http = openai.DefaultAioHttpClient if aiohttp else openai.DefaultAsyncHttpxClient
    client = openai.AsyncOpenAI(
        base_url=f"{root}/v1", api_key=c.api_key, max_retries=0, http_client=make_http(limits=_limits(pool))
    )
    messages: Any = _messages(c)

    async def request() -> None:
        r = await client.chat.completions.create(model=c.model, messages=messages)
        assert r.choices[0].message.content == c.answer

    async def stream() -> int:
        n, usage = 0, None
        events = await client.chat.completions.create(
            model=c.model, messages=messages, stream=True, stream_options={"include_usage": True}
        )
        async for chunk in events:
            if chunk.choices and chunk.choices[0].delta.content:
                n += 1
            usage = chunk.usage or usage
        assert usage is not None
        return n

    return Peer(
        "openai SDK" + (" (aiohttp)" if aiohttp else ""),
        request,
        {"openai": stream},
        client.close,
        f"openai {openai.__version__}: AsyncOpenAI(max_retries=0, "
        f"http_client={make_http.__name__}(limits={pool})), chat.completions.create",
    )


async def make_anthropic_sdk(root: str, pool: int, c: Canned, *, aiohttp: bool = False) -> Peer:
    import anthropic

    make_http = anthropic.DefaultAioHttpClient if aiohttp else anthropic.DefaultAsyncHttpxClient
    client = anthropic.AsyncAnthropic(
        base_url=root, api_key=c.api_key, max_retries=0, http_client=make_http(limits=_limits(pool))
    )
    messages: Any = _messages(c)

    async def request() -> None:
        r = await client.messages.create(model=c.model, max_tokens=4096, messages=messages)
        block: Any = r.content[0]
        assert block.text == c.answer

    async def stream() -> int:
        n, stop = 0, None
        events = await client.messages.create(model=c.model, max_tokens=4096, messages=messages, stream=True)
        async for event in events:
            if event.type == "content_block_delta" and event.delta.type == "text_delta" and event.delta.text:
                n += 1
            elif event.type == "message_delta":
                stop = event.delta.stop_reason
        assert stop == "end_turn", stop
        return n

    return Peer(
        "anthropic SDK" + (" (aiohttp)" if aiohttp else ""),
        request,
        {"anthropic": stream},
        client.close,
        f"anthropic {anthropic.__version__}: AsyncAnthropic(max_retries=0, "
        f"http_client={make_http.__name__}(limits={pool})), messages.create; requests are Messages",
        request_format="anthropic",
    )


async def _count_openai_chunks(events: Any) -> int:
    """Text deltas of an OpenAI-shaped chunk stream (LiteLLM's and any-llm's stream type)."""
    n = 0
    async for chunk in events:
        if chunk.choices and chunk.choices[0].delta.content:
            n += 1
    return n


async def make_litellm(root: str, pool: int, c: Canned) -> Peer:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no download of the price list
    import litellm

    # Its loop detector ends a stream after 100 identical deltas; the fake stream is 5,000 "tok "s.
    litellm.REPEATED_STREAMING_CHUNK_LIMIT = 10**9
    litellm.telemetry = False
    litellm.suppress_debug_info = True
    routes = {  # format -> (model, api_base): litellm's provider prefixes
        "openai": (f"openai/{c.model}", f"{root}/v1"),
        "ollama": (f"ollama_chat/{c.model}", root),
        "anthropic": (f"anthropic/{c.model}", root),
    }
    messages = _messages(c)

    async def request() -> None:
        model, base = routes["openai"]
        r: Any = await litellm.acompletion(
            model=model, messages=messages, api_base=base, api_key=c.api_key, max_retries=0
        )
        assert r.choices[0].message.content == c.answer

    def stream_of(fmt: str) -> Callable[[], Awaitable[int]]:
        model, base = routes[fmt]
        extra: dict[str, Any] = {"max_tokens": 4096} if fmt == "anthropic" else {}

        async def stream() -> int:
            events = await litellm.acompletion(
                model=model,
                messages=messages,
                api_base=base,
                api_key=c.api_key,
                stream=True,
                max_retries=0,
                **extra,
            )
            return await _count_openai_chunks(events)

        return stream

    async def close() -> None:
        closing = getattr(litellm, "close_litellm_async_clients", None)
        if closing is not None:
            await closing()

    return Peer(
        "LiteLLM",
        request,
        {fmt: stream_of(fmt) for fmt in routes},
        close,
        f"litellm {_version('litellm')}: acompletion(model='openai/|ollama_chat/|anthropic/...', "
        "api_base=); its own cached HTTP clients, pool size not settable; timed until its "
        "logging callbacks have run",
        settle=_litellm_settle,
    )


async def _litellm_settle() -> None:
    """Wait for the work LiteLLM defers after each call: the success callbacks its logging
    worker runs on the loop and those its thread pool runs (both on by default)."""
    import asyncio

    from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER
    from litellm.litellm_core_utils.thread_pool_executor import executor

    await GLOBAL_LOGGING_WORKER.flush()
    # What its thread pool still has queued: queue a no-op behind it and wait until it is taken.
    done = executor.submit(lambda: None)
    if not done.cancelled():  # a full pool drops the no-op (cancelled): nothing left to wait for
        await asyncio.wrap_future(done)


async def make_any_llm(root: str, pool: int, c: Canned) -> Peer:
    # One reused provider object per format (AnyLLM.create), its SDK client given the pool:
    # the official SDKs' http_client for openai / anthropic, httpx's limits for ollama's client.
    import httpx
    from any_llm import AnyLLM

    routes: dict[str, tuple[str, str, dict[str, Any]]] = {
        "openai": ("openai", f"{root}/v1", {"http_client": _sdk_http("openai", pool), "max_retries": 0}),
        "anthropic": ("anthropic", root, {"http_client": _sdk_http("anthropic", pool), "max_retries": 0}),
    }
    if importlib.util.find_spec("ollama") is not None:  # the any-llm-sdk[ollama] extra
        limits = httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
        routes["ollama"] = ("ollama", root, {"limits": limits})
    llms = {
        fmt: AnyLLM.create(provider, api_key=c.api_key, api_base=base, **kwargs)
        for fmt, (provider, base, kwargs) in routes.items()
    }
    messages = _messages(c)

    async def request() -> None:
        r: Any = await llms["openai"].acompletion(model=c.model, messages=messages)
        assert r.choices[0].message.content == c.answer

    def stream_of(fmt: str) -> Callable[[], Awaitable[int]]:
        llm = llms[fmt]

        async def stream() -> int:
            events = await llm.acompletion(model=c.model, messages=messages, stream=True, max_tokens=4096)
            return await _count_openai_chunks(events)

        return stream

    async def close() -> None:
        for llm in llms.values():
            client: Any = getattr(llm, "client", None)
            closing = getattr(client, "close", None)
            if closing is not None:
                await closing()

    return Peer(
        "any-llm",
        request,
        {fmt: stream_of(fmt) for fmt in llms},
        close,
        f"any-llm-sdk {_version('any-llm-sdk')}: AnyLLM.create(provider, api_base=, "
        f"http_client / limits={pool}).acompletion, over the official SDKs"
        + ("" if "ollama" in llms else "; no Ollama: its [ollama] extra is not installed"),
    )


def _sdk_http(sdk: str, pool: int) -> Any:
    """The official SDK's own async httpx2 client (its defaults) with ``pool`` connections."""
    module = importlib.import_module(sdk)
    return module.DefaultAsyncHttpxClient(limits=_limits(pool))


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


def sync_openai_sdk(root: str, pool: int, c: Canned) -> tuple[Callable[[], None], Callable[[], None]]:
    """The openai SDK's blocking face: one ``chat.completions.create`` and ``close``."""
    import openai

    client = openai.OpenAI(
        base_url=f"{root}/v1",
        api_key=c.api_key,
        max_retries=0,
        http_client=openai.DefaultHttpxClient(limits=_limits(pool)),
    )
    messages: Any = _messages(c)

    def request() -> None:
        r = client.chat.completions.create(model=c.model, messages=messages)
        assert r.choices[0].message.content == c.answer

    return request, client.close


FACTORIES: dict[str, Callable[[str, int, Canned], Awaitable[Peer]]] = {
    "openai-sdk": make_openai_sdk,
    "openai-sdk+aiohttp": lambda root, pool, c: make_openai_sdk(root, pool, c, aiohttp=True),
    "anthropic-sdk": make_anthropic_sdk,
    "anthropic-sdk+aiohttp": lambda root, pool, c: make_anthropic_sdk(root, pool, c, aiohttp=True),
    "litellm": make_litellm,
    "any-llm": make_any_llm,
}
