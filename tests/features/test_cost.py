"""Cost per call from genai-prices' offline data, against genai-prices' own numbers."""

from __future__ import annotations

import pytest
from genai_prices import Usage as PriceUsage
from genai_prices import calc_price

from abstractcore import Usage, create_llm
from abstractcore.features.cost import cost_of
from tests.servers.openai_fake import KEY, FakeOpenAI


@pytest.mark.parametrize(
    ("provider", "prices_id", "model"),
    [
        ("openai", "openai", "gpt-4o-mini"),
        ("openai", "openai", "gpt-4o-2024-08-06"),
        ("anthropic", "anthropic", "claude-haiku-4-5"),
        ("anthropic", "anthropic", "claude-3-5-haiku-20241022"),
        ("openrouter", "openrouter", "openai/gpt-4o-mini"),
    ],
)
def test_known_hosted_models_cost_what_genai_prices_says(provider: str, prices_id: str, model: str) -> None:
    usage = Usage.of(12_345, 678)
    expected = calc_price(
        PriceUsage(input_tokens=12_345, output_tokens=678), model_ref=model, provider_id=prices_id
    )
    cost = cost_of(provider, model, usage)
    assert cost == pytest.approx(float(expected.total_price), rel=1e-9)


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("huggingface", "smollm2-135m-instruct"),
        ("ollama", "qwen2.5:7b"),
        ("lmstudio", "x"),
        ("openai", "a-model-nobody-prices"),
        ("openai-compatible", "gpt-4o-mini"),
    ],
)
def test_local_unpriced_and_unknown_models_cost_none(provider: str, model: str) -> None:
    assert cost_of(provider, model, Usage.of(100, 10)) is None


@pytest.mark.anyio
async def test_responses_and_streams_carry_the_cost(fake: FakeOpenAI) -> None:
    llm = create_llm("openai", model="gpt-4o-mini", base_url=fake.base_url, api_key=KEY)
    r = await llm.agenerate("hi")
    assert r.usage is not None and r.cost == pytest.approx(cost_of("openai", "gpt-4o-mini", r.usage))
    chunks = [c async for c in llm.astream("hi")]
    assert chunks[-1].cost is not None and chunks[-1].cost > 0
    assert all(c.cost is None for c in chunks[:-1])
    await llm.aclose()


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("anthropic", "claude-haiku-4-5"),  # flat prices, a cache-write rate
        ("anthropic", "claude-sonnet-4-5"),  # tiered prices
        ("openai", "gpt-4o"),  # a cache-read rate, no cache-write one
    ],
)
def test_cached_tokens_cost_the_cache_rates_genai_prices_publishes(provider: str, model: str) -> None:
    usage = Usage.of(10_000, 500, cached_tokens=6_000, cache_write_tokens=3_000)
    expected = calc_price(
        PriceUsage(input_tokens=10_000, output_tokens=500, cache_read_tokens=6_000, cache_write_tokens=3_000),
        model_ref=model,
        provider_id=provider,
    ).total_price
    assert cost_of(provider, model, usage) == pytest.approx(float(expected), rel=1e-12)
    uncached = cost_of(provider, model, Usage.of(10_000, 500))
    assert uncached is not None and cost_of(provider, model, usage) != pytest.approx(uncached)


def test_a_cached_haiku_turn_costs_the_hand_computed_figure() -> None:
    # claude-haiku-4-5: input $1/M, cache write $1.25/M, cache read $0.10/M, output $5/M
    usage = Usage.of(10_000, 500, cached_tokens=6_000, cache_write_tokens=3_000)
    hand = (1_000 * 1.0 + 3_000 * 1.25 + 6_000 * 0.10 + 500 * 5.0) / 1_000_000
    assert cost_of("anthropic", "claude-haiku-4-5", usage) == pytest.approx(hand, rel=1e-12)


def test_a_fresh_process_prices_its_first_answer_when_the_cost_is_read(fake: FakeOpenAI) -> None:
    # the first lookup loads genai-prices' data (~0.1-0.3 s): the first call does not wait for it
    import subprocess
    import sys

    code = (
        "import sys\nfrom abstractcore import create_llm\nfrom abstractcore.features.cost import cost_of\n"
        f"llm = create_llm('openai', model='gpt-4o-mini', base_url={fake.base_url!r}, api_key={KEY!r})\n"
        "r = llm.generate('hi')\nprint('genai_prices' in sys.modules)\ncost = r.cost\n"
        "print('genai_prices' in sys.modules, cost is not None and cost > 0, "
        "cost == cost_of('openai', 'gpt-4o-mini', r.usage))\n"
        "r2 = llm.generate('hi')\nprint(r2.cost == cost)\nllm.close()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True", "True", "True", "True"]
