"""response_model against the real llama.cpp server: grammar-constrained JSON into pydantic."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from abstractcore import RetryConfig, create_llm

pytestmark = pytest.mark.slow  # the real model or a server process throughout


class City(BaseModel):
    name: str
    country: str
    population: int


def test_response_model_returns_a_validated_instance(llama_base_url: str) -> None:
    llm = create_llm("openai", model="smollm2", base_url=llama_base_url, temperature=0, max_tokens=60)
    city = llm.generate("Describe Paris as JSON.", response_model=City)
    assert isinstance(city, City)
    assert isinstance(city.population, int) and city.name


@pytest.mark.anyio
async def test_response_model_async_on_lmstudio_flavour(llama_base_url: str) -> None:
    llm = create_llm("lmstudio", base_url=llama_base_url, temperature=0, max_tokens=60)
    city = await llm.agenerate("Describe Rome as JSON.", response_model=City)
    assert isinstance(city, City)
    await llm.aclose()


def test_rejected_json_schema_is_not_retried_and_falls_back_once(llama_base_url: str) -> None:
    """llama.cpp's server rejects OpenAI's json_schema with HTTP 500 (a validation error).

    That 500 must not be retried to the limit; the provider switches to
    json_object + schema once and remembers it.
    """
    import anyio
    import httpx

    calls: list[str] = []

    async def count(request: httpx.Request) -> None:
        calls.append(request.url.path)

    async def run() -> None:
        async with httpx.AsyncClient(event_hooks={"request": [count]}) as client:
            llm = create_llm(
                "openai-compatible",
                base_url=llama_base_url,
                http_client=client,
                temperature=0,
                max_tokens=60,
                retry_config=RetryConfig(max_attempts=3, initial_delay=0.01),
            )
            assert isinstance(await llm.agenerate("Describe Oslo.", response_model=City), City)
            assert len(calls) == 2  # rejected once, then json_object: no retries of the 500
            assert isinstance(await llm.agenerate("Describe Bern.", response_model=City), City)
            assert len(calls) == 3

    anyio.run(run)
