"""What a call cost, in USD, from ``genai-prices``' offline data (nothing is fetched).

``cost_of(provider, model, usage)`` is the price of one response, or ``None``
for local models, servers without a price list (Ollama, LM Studio, vLLM,
openai-compatible) and models ``genai-prices`` does not know. The price per
million tokens is looked up once per model and cached: ``genai-prices``'
own calculation takes ~0.4 ms per call here, more than a whole request's
overhead; a flat per-token price is then four multiplications. Tiered prices
go through ``genai-prices`` each time. Cached prompt tokens are priced at the
provider's cache rates: ``usage.cached_tokens`` at the cache-read rate,
``usage.cache_write_tokens`` at the cache-write rate (Anthropic's 5-minute
one), the rest of ``usage.input_tokens`` (which counts them all) at the input
rate.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

from abstractcore.core.types import GenerateResponse, StreamChunk, Usage, defer_cost

__all__ = ["PRICED_PROVIDERS", "cost_of", "price_response", "priced_stream"]

#: abstractcore provider name -> genai-prices provider id (the providers with a public price list).
PRICED_PROVIDERS = {"openai": "openai", "anthropic": "anthropic", "openrouter": "openrouter"}
_lock = threading.Lock()


_prices: dict[tuple[str, str], Any] = {}


def _price(provider: str, model: str) -> tuple[float, float, float, float] | Any | None:
    """``_lookup``, remembered for up to 512 models."""
    key = (provider, model)
    try:
        return _prices[key]
    except KeyError:
        pass
    found = _lookup(provider, model)
    if len(_prices) < 512:
        _prices[key] = found
    return found


def price_response(response: GenerateResponse, provider: str, model: str | None) -> None:
    """Set ``response.cost``: at once when the model's price is known already, else when it is
    first read (the first lookup loads genai-prices' data, which a first call need not wait for)."""
    usage = response.usage
    if usage is None or not model or (PRICED_PROVIDERS.get(provider, ""), model) in _prices:
        response.cost = cost_of(provider, model, usage)
    else:
        defer_cost(response, lambda: cost_of(provider, model, usage))


def _lookup(provider: str, model: str) -> tuple[float, float, float, float] | Any | None:
    """(input, output, cache read, cache write) USD per million tokens (a cache rate the data
    leaves out is the input rate, as genai-prices bills it); a ModelPrice when tiered; None if
    unknown."""
    try:
        from genai_prices import Usage as PriceUsage
        from genai_prices import calc_price
    except ImportError:  # pragma: no cover - a dependency, but never fail a call over a price
        return None
    try:
        with _lock:  # genai-prices' lazy data loading is not known to be thread-safe
            found = calc_price(
                PriceUsage(input_tokens=1, output_tokens=1), model_ref=model, provider_id=provider
            )
    except (LookupError, ValueError):
        return None
    price = found.model_price
    names = ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok")
    flat = [getattr(price, name, None) for name in names]
    if all(value is None or isinstance(value, (Decimal, int, float)) for value in flat):
        per_input, per_output, per_read, per_write = (None if v is None else float(v) for v in flat)
        base = per_input or 0.0
        return (
            base,
            per_output or 0.0,
            base if per_read is None else per_read,
            base if per_write is None else per_write,
        )
    return price


def cost_of(provider: str | None, model: str | None, usage: Usage | None) -> float | None:
    """USD for ``usage`` on ``model`` at ``provider``; None when unknown (local, unpriced, no usage)."""
    if usage is None or provider not in PRICED_PROVIDERS or not model:
        return None
    price = _price(PRICED_PROVIDERS[provider], model)
    if price is None:
        return None
    read, written = usage.cached_tokens, usage.cache_write_tokens
    if isinstance(price, tuple):
        per_input, per_output, per_read, per_write = price
        uncached = max(usage.input_tokens - read - written, 0)
        total = (
            uncached * per_input + read * per_read + written * per_write + usage.output_tokens * per_output
        )
        return float(total) / 1_000_000
    from genai_prices import Usage as PriceUsage

    result = price.calc_price(
        PriceUsage(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=read or None,
            cache_write_tokens=written or None,
        )
    )
    return float(result["total_price"])


async def priced_stream(
    chunks: AsyncIterator[StreamChunk], provider: str, model: str
) -> AsyncIterator[StreamChunk]:
    """``chunks`` with the answer's cost on the last one (the one with a finish reason)."""
    try:
        async for chunk in chunks:
            if chunk.finish_reason is not None:
                chunk.cost = cost_of(provider, chunk.model or model, chunk.usage)
            yield chunk
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
