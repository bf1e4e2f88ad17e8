"""The official openai SDK against the server, backed by the embedded model in process and by
the real llama-cpp-python server: sync and async, plain and streamed, tools with a follow-up
turn, structured output, the model list, images, and embeddings from llama.cpp's C++ server."""

from __future__ import annotations

import base64
import json
import math

import anyio
import openai
import pytest
from pydantic import BaseModel

from abstractcore import LLM, create_llm
from tests.server.support import (
    MODEL,
    RunningServer,
    async_openai_client,
    openai_client,
    running_server,
)
from tests.servers.anthropic_server import API_KEY as ANTHROPIC_KEY
from tests.servers.anthropic_server import AnthropicServer

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
FORCE_WEATHER = {"type": "function", "function": {"name": "get_weather"}}
QUESTION = [
    {"role": "system", "content": "You are a weather assistant."},
    {"role": "user", "content": "What is the weather in Paris?"},
]


class City(BaseModel):
    name: str
    country: str


def test_a_completion_with_usage(served: RunningServer) -> None:
    client = openai_client(served)
    r = client.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=8, temperature=0)
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-")
    assert r.model == MODEL
    choice = r.choices[0]
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert r.usage is not None and r.usage.prompt_tokens > 5
    assert 0 < r.usage.completion_tokens <= 8
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_a_stream_with_usage(served: RunningServer) -> None:
    client = openai_client(served)
    stream = client.chat.completions.create(
        model=MODEL,
        messages=QUESTION,
        max_tokens=8,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes in (["stop"], ["length"])
    last = chunks[-1]
    assert last.choices == []  # the usage chunk comes last
    assert last.usage is not None  # counted where the back end reports none (llama-cpp-python's server)
    assert 0 < last.usage.completion_tokens <= 8 and last.usage.prompt_tokens > 5


def test_stream_usage_from_the_in_process_model(local_server: RunningServer) -> None:
    chunks = list(
        openai_client(local_server).chat.completions.create(
            model=MODEL, messages=QUESTION, max_tokens=6, stream=True, stream_options={"include_usage": True}
        )
    )
    usage = chunks[-1].usage
    assert usage is not None and 0 < usage.completion_tokens <= 6
    plain = openai_client(local_server).chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=6)
    assert plain.usage is not None and plain.usage.prompt_tokens == usage.prompt_tokens


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_async_client(served: RunningServer, anyio_backend: str) -> None:
    client = async_openai_client(served)
    r = await client.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=6)
    assert r.choices[0].message.content
    stream = await client.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=6, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text.strip()
    await client.close()


def test_a_forced_tool_call_and_the_follow_up_turn(served: RunningServer) -> None:
    client = openai_client(served)
    r = client.chat.completions.create(
        model=MODEL, messages=QUESTION, tools=[WEATHER], tool_choice=FORCE_WEATHER, max_tokens=40
    )
    message = r.choices[0].message
    assert r.choices[0].finish_reason == "tool_calls"
    assert message.tool_calls and len(message.tool_calls) == 1
    call = message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather" and call.id
    assert isinstance(json.loads(call.function.arguments).get("city"), str)
    follow_up = [
        *QUESTION,
        message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 24 degrees."},
    ]
    answer = client.chat.completions.create(model=MODEL, messages=follow_up, tools=[WEATHER], max_tokens=12)
    assert answer.choices[0].message.content
    assert answer.choices[0].finish_reason in ("stop", "length")


def test_a_streamed_tool_call_in_the_delta_format(served: RunningServer) -> None:
    client = openai_client(served)
    with client.chat.completions.stream(
        model=MODEL, messages=QUESTION, tools=[WEATHER], tool_choice=FORCE_WEATHER, max_tokens=40
    ) as stream:
        events = list(stream)
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls
    assert calls and calls[0].function.name == "get_weather"
    assert isinstance(json.loads(calls[0].function.arguments)["city"], str)
    assert final.choices[0].finish_reason == "tool_calls"
    done = [e for e in events if e.type == "tool_calls.function.arguments.done"]
    assert len(done) == 1 and done[0].name == "get_weather"


def test_a_required_tool_choice_gives_a_call_plain_and_streamed(served: RunningServer) -> None:
    client = openai_client(served)
    r = client.chat.completions.create(
        model=MODEL, messages=QUESTION, tools=[WEATHER], tool_choice="required", max_tokens=40
    )
    assert r.choices[0].finish_reason == "tool_calls" and not r.choices[0].message.content
    calls = r.choices[0].message.tool_calls
    assert calls and calls[0].function.name == "get_weather"
    with client.chat.completions.stream(
        model=MODEL, messages=QUESTION, tools=[WEATHER], tool_choice="required", max_tokens=40
    ) as stream:
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls
    assert calls and calls[0].function.name == "get_weather"
    assert final.choices[0].finish_reason == "tool_calls"


def test_a_forced_call_cut_by_max_tokens_ends_with_length(served: RunningServer) -> None:
    client = openai_client(served)
    r = client.chat.completions.create(
        model=MODEL, messages=QUESTION, tools=[WEATHER], tool_choice="required", max_tokens=3
    )
    assert r.choices[0].finish_reason == "length" and not r.choices[0].message.tool_calls
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=QUESTION, tools=[WEATHER], tool_choice="required", max_tokens=3, stream=True
        )
    )
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["length"]


def test_structured_output_with_a_json_schema(served: RunningServer) -> None:
    client = openai_client(served)
    r = client.chat.completions.parse(
        model=MODEL,
        messages=[{"role": "user", "content": "Which city is the capital of France?"}],
        response_format=City,
        max_tokens=60,
    )
    parsed = r.choices[0].message.parsed
    assert isinstance(parsed, City) and parsed.name
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].message.tool_calls in (None, [])


def test_json_object_output_streamed(served: RunningServer) -> None:
    client = openai_client(served)
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Describe Paris as JSON."}],
        response_format={"type": "json_object"},
        max_tokens=60,
        stream=True,
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    if finishes == ["stop"]:
        assert isinstance(json.loads(text), dict)
    else:  # cut by max_tokens: still the start of an object
        assert finishes == ["length"] and text.lstrip().startswith("{")


def test_the_model_list(local_server: RunningServer) -> None:
    client = openai_client(local_server)
    assert [m.id for m in client.models.list()] == [MODEL]
    model = client.models.retrieve(MODEL)
    assert model.id == MODEL and model.owned_by == "huggingface"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope")


PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def test_a_data_url_image_reaches_the_back_end_as_an_image(anthropic_test_server: AnthropicServer) -> None:
    llm = create_llm(
        "anthropic", model="claude-haiku-4-5", base_url=anthropic_test_server.url, api_key=ANTHROPIC_KEY
    )
    with running_server({"claude": llm}) as server:
        url = "data:image/png;base64," + base64.b64encode(PNG).decode()
        r = openai_client(server).chat.completions.create(
            model="claude",
            messages=[
                {"role": "system", "content": "Be brief."},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is in this image?"},
                        {"type": "image_url", "image_url": {"url": url, "detail": "low"}},
                    ],
                },
            ],
            max_tokens=6,
        )
    assert r.choices[0].message.content
    sent = anthropic_test_server.requests[-1]["body"]
    assert sent["system"] == "Be brief."
    blocks = sent["messages"][-1]["content"]
    image = next(b for b in blocks if b["type"] == "image")
    assert image["source"] == {
        "type": "base64",
        "media_type": "image/png",
        "data": base64.b64encode(PNG).decode(),
    }


def test_an_image_to_the_text_only_model_is_a_400(local_server: RunningServer) -> None:
    url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    with pytest.raises(openai.BadRequestError, match="images are not supported"):
        openai_client(local_server).chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}],
            max_tokens=4,
        )


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def test_embeddings_as_base64_and_as_floats(embedding_server: tuple[RunningServer, LLM]) -> None:
    server, backend = embedding_server
    client = openai_client(server)
    texts = ["The cat sat on the mat.", "Stock markets fell today."]
    packed = client.embeddings.create(model="embed", input=texts)  # the SDK asks for base64
    floats = client.embeddings.create(model="embed", input=texts, encoding_format="float")
    direct = backend.embed(texts)
    assert packed.model == "embed" and [d.index for d in packed.data] == [0, 1]
    assert len(packed.data[0].embedding) == len(direct.vectors[0]) > 100
    for got, plain, want in zip(packed.data, floats.data, direct.vectors):
        assert _cosine(got.embedding, want) > 0.9999
        assert plain.embedding == pytest.approx(want, rel=1e-6, abs=1e-7)
    assert packed.usage.prompt_tokens > 5 and packed.usage.total_tokens == packed.usage.prompt_tokens
    one = client.embeddings.create(model="embed", input="The cat sat on the mat.", encoding_format="float")
    assert one.data[0].embedding == pytest.approx(floats.data[0].embedding, rel=1e-4, abs=1e-5)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_embeddings_through_the_async_client(
    embedding_server: tuple[RunningServer, LLM], anyio_backend: str
) -> None:
    server, _ = embedding_server
    client = async_openai_client(server)
    with anyio.fail_after(60):
        r = await client.embeddings.create(model="embed", input=["a", "b", "c"])
    assert len(r.data) == 3
    await client.close()


def test_embeddings_of_the_in_process_model(local_server: RunningServer) -> None:
    result = openai_client(local_server).embeddings.create(model=MODEL, input=["hi", "bonjour"])
    assert [d.index for d in result.data] == [0, 1]
    assert len(result.data[0].embedding) == 576  # SmolLM2's hidden size, mean-pooled
    assert sum(x * x for x in result.data[1].embedding) == pytest.approx(1.0, rel=1e-4)


def test_embeddings_from_a_chat_only_back_end_say_so() -> None:
    chat_only = create_llm("anthropic", model="claude-haiku-4-5", api_key="k", base_url="http://127.0.0.1:9")
    with running_server({"chat": chat_only}) as server, pytest.raises(openai.BadRequestError) as caught:
        openai_client(server).embeddings.create(model="chat", input="hi")
    assert "no embeddings API" in str(caught.value)


@pytest.mark.slow
def test_an_answer_cut_by_max_tokens_reaches_the_sdk_without_a_split_character(
    local_server: RunningServer,
) -> None:
    from tests.providers.test_llamacpp import CUT_PROMPT

    client = openai_client(local_server)
    messages = [{"role": "user", "content": CUT_PROMPT}]
    answers = []
    for n in range(1, 7):
        r = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=n, seed=1)  # type: ignore[arg-type]
        text = r.choices[0].message.content or ""
        assert r.choices[0].finish_reason == "length" and "\ufffd" not in text, (n, text)
        stream = client.chat.completions.create(
            model=MODEL,
            messages=messages,
            max_tokens=n,
            seed=1,
            stream=True,  # type: ignore[arg-type]
        )
        streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert streamed == text, n
        answers.append(text)
    assert any(len(a.encode()) > len(a) for a in answers)  # the answers do hold multi-byte characters
