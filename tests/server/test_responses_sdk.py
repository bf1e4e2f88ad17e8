"""The official openai SDK's Responses client against ``abstractcore serve``, over the embedded
model in process and over llama.cpp's C++ server: create, stream with the SDK's event helpers,
parse into a Pydantic model, a two-step function-tool round trip, ``previous_response_id``
against the server's store (and ``store: false``), errors in the API's own shape, usage."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import BaseModel, TypeAdapter

from abstractcore import create_llm
from tests.server.support import MODEL, RunningServer, openai_client, running_server

pytestmark = pytest.mark.slow

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The current weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
SYSTEM = "You are a helpful assistant. Answer briefly."


class City(BaseModel):
    name: str
    country: str


@pytest.fixture(scope="module")
def cpp_server_backed(cpp_server_url: str) -> Iterator[RunningServer]:
    """The server in front of llama.cpp's C++ server."""
    llm = create_llm("openai-compatible", model=MODEL, base_url=cpp_server_url, temperature=0)
    with running_server({MODEL: llm}) as server:
        yield server


@pytest.fixture(params=["in-process", "llama-server"])
def backed(request: pytest.FixtureRequest) -> RunningServer:
    """The server in front of the in-process model, and of llama.cpp's C++ server."""
    name = "local_server" if request.param == "in-process" else "cpp_server_backed"
    server: RunningServer = request.getfixturevalue(name)
    return server


def test_create_answers_with_a_message_and_usage(backed: RunningServer) -> None:
    client = openai_client(backed)
    r = client.responses.create(
        model=MODEL, instructions=SYSTEM, input="What is the capital of France?", max_output_tokens=12
    )
    Response.model_validate(r.model_dump())  # the SDK's own model, strictly
    assert r.id.startswith("resp_") and r.object == "response" and r.model == MODEL
    assert r.status in ("completed", "incomplete") and r.output_text
    assert r.output[-1].type == "message" and r.output[-1].role == "assistant"
    assert r.usage is not None and r.usage.input_tokens > 5 and 0 < r.usage.output_tokens <= 12
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens
    assert r.usage.input_tokens_details.cached_tokens >= 0
    assert r.usage.output_tokens_details.reasoning_tokens == 0
    if r.status == "incomplete":
        assert r.incomplete_details is not None and r.incomplete_details.reason == "max_output_tokens"


def test_stream_sends_the_published_events_and_the_final_response(backed: RunningServer) -> None:
    client = openai_client(backed)
    whole = client.responses.create(
        model=MODEL, instructions=SYSTEM, input="Name a colour.", max_output_tokens=10
    )
    with client.responses.stream(
        model=MODEL, instructions=SYSTEM, input="Name a colour.", max_output_tokens=10
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed" if final.status == "completed" else "response.incomplete",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == final.output_text == whole.output_text  # greedy: the same answer both ways
    assert final.usage is not None and final.usage.output_tokens == whole.usage.output_tokens  # type: ignore[union-attr]
    for event in events:  # each event is the SDK's typed event, as published
        TypeAdapter(ResponseStreamEvent).validate_python(event.model_dump(warnings=False))


def test_parse_fills_a_pydantic_model(local_server: RunningServer) -> None:
    client = openai_client(local_server)
    r = client.responses.parse(
        model=MODEL,
        input="Give the city Paris and its country as JSON.",
        text_format=City,
        max_output_tokens=60,
    )
    assert isinstance(r.output_parsed, City) and r.output_parsed.name and r.output_parsed.country


def test_a_function_tool_round_trip(local_server: RunningServer) -> None:
    client = openai_client(local_server)
    ask = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = client.responses.create(
        model=MODEL,
        input=ask,  # type: ignore[arg-type]
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "function", "name": "get_weather"},
        max_output_tokens=60,
        store=False,
    )
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather" and calls[0].call_id
    assert isinstance(json.loads(calls[0].arguments).get("city"), str)
    follow = [
        *ask,
        calls[0].model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": calls[0].call_id, "output": "Sunny, 24 C."},
    ]
    second = client.responses.create(model=MODEL, input=follow, tools=[WEATHER], max_output_tokens=30)  # type: ignore[arg-type,list-item]
    assert second.status in ("completed", "incomplete") and second.output_text
    assert second.usage is not None and second.usage.input_tokens > first.usage.input_tokens  # type: ignore[union-attr]


def test_a_streamed_function_call_arrives_in_the_published_order(local_server: RunningServer) -> None:
    client = openai_client(local_server)
    with client.responses.stream(
        model=MODEL,
        input="What is the weather in Paris?",
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "function", "name": "get_weather"},
        max_output_tokens=60,
        store=False,
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    start = kinds.index("response.function_call_arguments.delta")
    assert kinds[start - 1] == "response.output_item.added"
    assert kinds[-3:] == [
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    (call,) = [item for item in final.output if item.type == "function_call"]
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert done.arguments == call.arguments and call.name == "get_weather"  # type: ignore[union-attr]


def test_previous_response_id_continues_a_stored_response(local_server: RunningServer) -> None:
    client = openai_client(local_server)
    first = client.responses.create(model=MODEL, input="My name is Alice.", max_output_tokens=10)
    again = client.responses.create(
        model=MODEL, input="What is my name?", previous_response_id=first.id, max_output_tokens=10
    )
    alone = client.responses.create(model=MODEL, input="What is my name?", max_output_tokens=10, store=False)
    assert again.previous_response_id == first.id
    assert again.usage is not None and alone.usage is not None
    assert again.usage.input_tokens > alone.usage.input_tokens + first.usage.output_tokens  # type: ignore[union-attr]
    kept = client.responses.retrieve(first.id)
    assert kept.id == first.id and kept.output_text == first.output_text
    with client.responses.stream(model=MODEL, input="Say hi.", max_output_tokens=5) as stream:
        last = list(stream)[-1]  # response.completed, or response.incomplete when cut at 5 tokens
    assert last.type in ("response.completed", "response.incomplete")
    assert client.responses.retrieve(last.response.id).output_text == last.response.output_text


def test_store_false_keeps_nothing(local_server: RunningServer) -> None:
    client = openai_client(local_server)
    r = client.responses.create(model=MODEL, input="Hello.", max_output_tokens=5, store=False)
    assert r.store is False
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model=MODEL, input="And?", previous_response_id=r.id, max_output_tokens=5)
    error = caught.value.body
    assert isinstance(error, dict) and error["code"] == "previous_response_not_found"
    assert error["param"] == "previous_response_id" and r.id in error["message"]
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)


def test_bad_requests_are_the_sdks_bad_request_error(local_server: RunningServer) -> None:
    client = openai_client(local_server)
    with pytest.raises(openai.BadRequestError, match="'web_search' tools are not supported") as caught:
        client.responses.create(model=MODEL, input="News?", tools=[{"type": "web_search"}])
    assert isinstance(caught.value.body, dict) and caught.value.body["param"] == "tools[0].type"
    with pytest.raises(openai.BadRequestError, match="background responses are not supported"):
        client.responses.create(model=MODEL, input="Hi", background=True)
    with pytest.raises(openai.BadRequestError, match="temperature"):
        client.responses.create(model=MODEL, input="Hi", temperature=5)
    with pytest.raises(openai.NotFoundError, match="nope"):
        client.responses.create(model="nope", input="Hi")
