"""The escape hatch: ``extra_body``, ``extra_headers`` and ``extra_query`` reach the server as they are."""

from __future__ import annotations

from pathlib import Path

import pytest

from abstractcore import ConfigurationError, create_llm
from tests.servers.openai_fake import KEY, FakeOpenAI

pytestmark = pytest.mark.anyio

#: A llama.cpp GBNF grammar only one answer fits.
GRAMMAR = 'root ::= "Banana" [0-9] [0-9]'


async def test_extras_are_merged_into_the_body_headers_and_query(fake: FakeOpenAI) -> None:
    llm = create_llm("openai", model="gpt-fake", base_url=fake.base_url, api_key=KEY)
    await llm.agenerate(
        "Hi",
        temperature=0.2,
        extra_body={"provider": {"order": ["a"]}, "temperature": 0.7},
        extra_headers={"X-Trace": "t-1"},
        extra_query={"api-version": "2026-01"},
    )
    chunks = [
        c
        async for c in llm.astream(
            "Hi", extra_body={"guided_json": {"type": "object"}}, extra_query={"q": "1"}
        )
    ]
    assert chunks[-1].finish_reason is not None
    plain, streamed = fake.requests[-2:]
    assert plain["body"]["provider"] == {"order": ["a"]}
    assert plain["body"]["temperature"] == 0.7  # the escape hatch is merged last, as the OpenAI SDK does
    assert plain["headers"]["X-Trace"] == "t-1"
    assert plain["query"] == {"api-version": "2026-01"}
    assert streamed["body"]["guided_json"] == {"type": "object"} and streamed["body"]["stream"] is True
    assert streamed["query"] == {"q": "1"}
    assert "X-Trace" not in streamed["headers"]


async def test_extras_reach_every_deployment_of_a_router(fake: FakeOpenAI) -> None:
    first = create_llm("openai", model="gpt-fake", base_url=fake.base_url, api_key=KEY)
    router = create_llm("router", models=[first])
    await router.agenerate("Hi", extra_body={"user": "u-1"}, extra_headers={"X-Trace": "t-2"})
    assert fake.requests[-1]["body"]["user"] == "u-1"
    assert fake.requests[-1]["headers"]["X-Trace"] == "t-2"


@pytest.mark.slow
@pytest.mark.parametrize("server", ["llama-cpp-python", "llama-server"])
def test_a_grammar_in_extra_body_shapes_a_real_servers_answer(
    request: pytest.FixtureRequest, server: str
) -> None:
    base = request.getfixturevalue("llama_base_url" if server == "llama-cpp-python" else "cpp_server_url")
    llm = create_llm("openai-compatible", model="smollm2", base_url=base, temperature=0, max_tokens=8)
    free = llm.generate("Name a fruit.").content
    shaped = llm.generate("Name a fruit.", extra_body={"grammar": GRAMMAR}).content
    assert shaped.startswith("Banana") and len(shaped) == 8 and shaped[6:].isdigit()
    assert free != shaped


def test_in_process_an_unknown_extra_body_field_is_refused_before_loading(gguf_path: Path) -> None:
    llm = create_llm("huggingface", model=str(gguf_path))
    with pytest.raises(ConfigurationError, match=r"knows no extra_body field \(guided_json\)"):
        llm.generate("Hi", extra_body={"guided_json": {"type": "object"}})
    with pytest.raises(ConfigurationError, match="extra_headers is for HTTP providers"):
        llm.generate("Hi", extra_headers={"x": "y"})
    assert not llm.loaded
