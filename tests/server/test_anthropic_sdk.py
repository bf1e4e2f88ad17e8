"""The official anthropic SDK against the server, backed by the embedded model in process and
by the real llama-cpp-python server: sync and async, plain and streamed (text and tool input),
system prompts, tools with a follow-up turn, structured output and images."""

from __future__ import annotations

import base64

import anthropic
import pytest
from pydantic import BaseModel

from abstractcore import create_llm
from tests.server.support import (
    MODEL,
    RunningServer,
    anthropic_client,
    async_anthropic_client,
    running_server,
)
from tests.servers.anthropic_server import API_KEY as ANTHROPIC_KEY
from tests.servers.anthropic_server import AnthropicServer

WEATHER = {
    "name": "get_weather",
    "description": "The current weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
FORCE_WEATHER = {"type": "tool", "name": "get_weather"}
SYSTEM = "You are a weather assistant."
QUESTION = [{"role": "user", "content": "What is the weather in Paris?"}]
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


class City(BaseModel):
    name: str
    country: str


def test_a_message_with_a_system_prompt(served: RunningServer) -> None:
    m = anthropic_client(served).messages.create(model=MODEL, system=SYSTEM, messages=QUESTION, max_tokens=8)
    assert m.type == "message" and m.role == "assistant" and m.id.startswith("msg_")
    assert m.model == MODEL
    assert m.content[0].type == "text" and m.content[0].text
    assert m.stop_reason in ("end_turn", "max_tokens")
    assert m.usage.input_tokens > 5 and 0 < m.usage.output_tokens <= 8


def test_a_streamed_message(served: RunningServer) -> None:
    client = anthropic_client(served)
    with client.messages.stream(model=MODEL, system=SYSTEM, messages=QUESTION, max_tokens=8) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text.strip() and final.content[0].type == "text" and final.content[0].text == text
    assert final.stop_reason in ("end_turn", "max_tokens")


def test_stream_usage_from_the_in_process_model(local_server: RunningServer) -> None:
    with anthropic_client(local_server).messages.stream(
        model=MODEL, messages=QUESTION, max_tokens=6
    ) as stream:
        final = stream.get_final_message()
    assert final.usage.input_tokens > 5 and 0 < final.usage.output_tokens <= 6


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_async_client(served: RunningServer, anyio_backend: str) -> None:
    client = async_anthropic_client(served)
    m = await client.messages.create(model=MODEL, messages=QUESTION, max_tokens=6)
    assert m.content and m.content[0].type == "text"
    async with client.messages.stream(model=MODEL, messages=QUESTION, max_tokens=6) as stream:
        text = "".join([t async for t in stream.text_stream])
    assert text.strip()
    await client.close()


def test_a_forced_tool_call_and_the_follow_up_turn(served: RunningServer) -> None:
    client = anthropic_client(served)
    m = client.messages.create(
        model=MODEL,
        system=SYSTEM,
        messages=QUESTION,
        tools=[WEATHER],
        tool_choice=FORCE_WEATHER,
        max_tokens=40,
    )
    assert m.stop_reason == "tool_use"
    uses = [b for b in m.content if b.type == "tool_use"]
    assert len(uses) == 1 and uses[0].name == "get_weather" and uses[0].id
    assert isinstance(uses[0].input, dict) and isinstance(uses[0].input.get("city"), str)
    follow_up = [
        *QUESTION,
        {"role": "assistant", "content": m.content},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": uses[0].id, "content": "Sunny, 24 degrees."}],
        },
    ]
    answer = client.messages.create(
        model=MODEL, system=SYSTEM, messages=follow_up, tools=[WEATHER], max_tokens=12
    )
    assert answer.content and answer.content[0].type == "text" and answer.content[0].text


def test_an_any_tool_choice_gives_a_tool_use_plain_and_streamed(served: RunningServer) -> None:
    client = anthropic_client(served)
    m = client.messages.create(
        model=MODEL, messages=QUESTION, tools=[WEATHER], tool_choice={"type": "any"}, max_tokens=40
    )
    assert m.stop_reason == "tool_use"
    assert [b.type for b in m.content] == ["tool_use"] and m.content[0].name == "get_weather"
    with client.messages.stream(
        model=MODEL, messages=QUESTION, tools=[WEATHER], tool_choice={"type": "any"}, max_tokens=40
    ) as stream:
        final = stream.get_final_message()
    uses = [b for b in final.content if b.type == "tool_use"]
    assert final.stop_reason == "tool_use" and len(uses) == 1 and uses[0].name == "get_weather"


def test_a_forced_tool_use_cut_by_max_tokens_stops_at_max_tokens(served: RunningServer) -> None:
    client = anthropic_client(served)
    m = client.messages.create(
        model=MODEL, messages=QUESTION, tools=[WEATHER], tool_choice={"type": "any"}, max_tokens=3
    )
    assert m.stop_reason == "max_tokens" and not [b for b in m.content if b.type == "tool_use"]
    with client.messages.stream(
        model=MODEL, messages=QUESTION, tools=[WEATHER], tool_choice={"type": "any"}, max_tokens=3
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "max_tokens"


def test_tool_input_streams_as_input_json_delta(served: RunningServer) -> None:
    client = anthropic_client(served)
    with client.messages.stream(
        model=MODEL, messages=QUESTION, tools=[WEATHER], tool_choice=FORCE_WEATHER, max_tokens=40
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()
    deltas = [e for e in events if e.type == "content_block_delta" and e.delta.type == "input_json_delta"]
    assert deltas
    use = next(b for b in final.content if b.type == "tool_use")
    assert use.name == "get_weather" and isinstance(use.input.get("city"), str)
    assert final.stop_reason == "tool_use"


def test_structured_output(served: RunningServer) -> None:
    m = anthropic_client(served).messages.parse(
        model=MODEL,
        messages=[{"role": "user", "content": "Which city is the capital of France?"}],
        output_format=City,
        max_tokens=60,
    )
    assert isinstance(m.parsed_output, City) and m.parsed_output.name
    assert m.stop_reason == "end_turn"


def test_images_and_the_system_prompt_reach_the_back_end(anthropic_test_server: AnthropicServer) -> None:
    llm = create_llm(
        "anthropic", model="claude-haiku-4-5", base_url=anthropic_test_server.url, api_key=ANTHROPIC_KEY
    )
    data = base64.b64encode(PNG).decode()
    with running_server({"claude": llm}) as server:
        m = anthropic_client(server).messages.create(
            model="claude",
            system=[{"type": "text", "text": "Be brief."}],
            messages=[
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": data},
                        },
                        {"type": "text", "text": "What is in this image?"},
                    ],
                }
            ],
            max_tokens=6,
        )
    assert m.content[0].type == "text"
    sent = anthropic_test_server.requests[-1]["body"]
    assert sent["system"] == "Be brief."
    assert sent["messages"][-1]["content"][0] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": data},
    }


def test_max_tokens_is_required(local_server: RunningServer) -> None:
    client = anthropic_client(local_server)
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.post(
            "/v1/messages",
            body={"model": MODEL, "messages": QUESTION},
            cast_to=object,
        )
    assert caught.value.status_code == 400
    body = caught.value.body
    assert isinstance(body, dict) and body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error" and "max_tokens" in body["error"]["message"]


def test_the_model_list_in_anthropic_form(local_server: RunningServer) -> None:
    client = anthropic_client(local_server)
    assert [m.id for m in client.models.list()] == [MODEL]
    assert client.models.retrieve(MODEL).id == MODEL
