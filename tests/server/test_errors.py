"""Bad input and failing back ends: each gets the status and error shape of the API asked, the
field at fault named, never a traceback or the back end's key, and the server stays up."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from abstractcore import LLM, create_llm
from tests.server.support import (
    KEY,
    MODEL,
    NO_RETRY,
    RunningServer,
    anthropic_client,
    openai_client,
    running_server,
)
from tests.servers.anthropic_server import API_KEY as ANTHROPIC_KEY
from tests.servers.anthropic_server import AnthropicServer
from tests.servers.common import Fault as AnthropicFault
from tests.servers.openai_fake import KEY as FAKE_KEY
from tests.servers.openai_fake import FakeOpenAI, Fault

CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"
OK_CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}
OK_MESSAGES = {**OK_CHAT}


def _schema(**changes: Any) -> dict[str, Any]:
    return {"type": "object", "properties": {"city": {"type": "string"}}, **changes}


def _openai_tool(name: str = "get_weather", **changes: Any) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": _schema(**changes)}}


def _anthropic_tool(name: str = "get_weather", **changes: Any) -> dict[str, Any]:
    return {"name": name, "input_schema": _schema(**changes)}


def _send(
    server: RunningServer, path: str, content: bytes | str | dict[str, Any], key: str | None = KEY
) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    raw = json.dumps(content).encode() if isinstance(content, dict) else content
    return httpx.post(f"{server.url}{path}", content=raw, headers=headers, timeout=60)


def _openai_error(r: httpx.Response, status: int, param: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["param"] == param
    assert "Traceback" not in r.text
    error: dict[str, Any] = body["error"]
    return error


def _anthropic_error(r: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["type"] == "error" and body["request_id"].startswith("req_")
    assert r.headers["request-id"] == body["request_id"]
    assert set(body["error"]) == {"type", "message"} and body["error"]["type"] == kind
    assert "Traceback" not in r.text
    error: dict[str, Any] = body["error"]
    return error


@pytest.fixture
def still_up(local_server: RunningServer) -> Iterator[RunningServer]:
    """The in-process server; after the test it must still answer (a generation is checked at the end)."""
    yield local_server
    assert httpx.get(f"{local_server.url}/health").json() == {"status": "ok"}
    r = httpx.get(f"{local_server.url}/v1/models", headers={"authorization": f"Bearer {KEY}"})
    assert r.status_code == 200 and r.json()["data"][0]["id"] == MODEL


@pytest.mark.parametrize(
    ("body", "param", "needle"),
    [
        (b"{not json", None, "not valid JSON"),
        (b"", None, "empty"),
        (b"[1, 2]", None, "JSON object"),
        ({"messages": [{"role": "user", "content": "Hi"}]}, "model", "field required"),
        ({"model": MODEL}, "messages", "field required"),
        ({"model": MODEL, "messages": []}, "messages", "must not be empty"),
        ({"model": MODEL, "messages": "Hi"}, "messages", "expected an array, got a string"),
        ({"model": MODEL, "messages": [{"content": "Hi"}]}, "messages[0].role", "field required"),
        ({"model": MODEL, "messages": [{"role": "robot", "content": "Hi"}]}, "messages[0].role", "must be"),
        ({**OK_CHAT, "temperature": "hot"}, "temperature", "expected a number, got a string"),
        ({**OK_CHAT, "temperature": 7}, "temperature", "between 0 and 2"),
        ({**OK_CHAT, "max_tokens": 0}, "max_tokens", ">= 1"),
        ({**OK_CHAT, "stop": [1]}, "stop", "strings"),
        ({**OK_CHAT, "n": 2}, "n", "n=1"),
        ({**OK_CHAT, "tools": [{"type": "function", "function": {}}]}, "tools[0].function.name", "required"),
        ({**OK_CHAT, "tool_choice": "required"}, "tool_choice", "needs tools"),
        (
            {**OK_CHAT, "tools": [_openai_tool(properties={"city": {"type": "nonsense"}})]},
            "tools[0].function.parameters",
            "properties.city.type: 'nonsense' is not a JSON Schema type",
        ),
        (
            {**OK_CHAT, "tools": [_openai_tool(required=["city", "country"])]},
            "tools[0].function.parameters",
            "'country' is required but not declared",
        ),
        ({**OK_CHAT, "tools": [_openai_tool("get weather")]}, "tools[0].function.name", "not allowed"),
        (
            {
                "model": MODEL,
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:x,y"}}]}
                ],
            },
            "messages[0].content[0].image_url.url",
            "base64",
        ),
        ({**OK_CHAT, "response_format": {"type": "yaml"}}, "response_format.type", "json_schema"),
    ],
)
def test_a_bad_chat_request_is_a_400_naming_the_field(
    still_up: RunningServer, body: Any, param: str | None, needle: str
) -> None:
    error = _openai_error(_send(still_up, CHAT, body), 400, param)
    assert error["type"] == "invalid_request_error" and needle in error["message"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"{not json", "not valid JSON"),
        ({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]}, "max_tokens: field required"),
        ({**OK_MESSAGES, "max_tokens": "2"}, "max_tokens: expected an integer, got a string"),
        ({**OK_MESSAGES, "temperature": 1.5}, "temperature: must be between 0 and 1"),
        ({**OK_MESSAGES, "messages": [{"role": "system", "content": "x"}]}, "top-level 'system'"),
        (
            {**OK_MESSAGES, "messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]},
            "messages[0].content[0].type: 'document' blocks are not supported",
        ),
        ({**OK_MESSAGES, "tools": [{"name": "t"}]}, "tools[0].input_schema: field required"),
        (
            {**OK_MESSAGES, "tools": [_anthropic_tool(properties={"city": {"type": "nonsense"}})]},
            "tools[0].input_schema: invalid schema at properties.city.type",
        ),
        (
            {**OK_MESSAGES, "tools": [_anthropic_tool(required=["city", "country"])]},
            "tools[0].input_schema: invalid schema at required: 'country' is required",
        ),
        ({**OK_MESSAGES, "tools": [_anthropic_tool("get.weather")]}, "tools[0].name: 'get.weather' is not"),
        ({**OK_MESSAGES, "tool_choice": {"type": "tool", "name": "nope"}}, "tool_choice"),
    ],
)
def test_a_bad_messages_request_is_a_400_in_anthropic_form(
    still_up: RunningServer, body: Any, needle: str
) -> None:
    error = _anthropic_error(_send(still_up, MESSAGES, body), 400, "invalid_request_error")
    assert needle in error["message"]


def test_an_unknown_model_is_a_404_in_both_forms(still_up: RunningServer) -> None:
    error = _openai_error(_send(still_up, CHAT, {**OK_CHAT, "model": "gpt-9"}), 404, "model")
    assert error["code"] == "model_not_found" and "'gpt-9'" in error["message"] and MODEL in error["message"]
    error = _anthropic_error(
        _send(still_up, MESSAGES, {**OK_MESSAGES, "model": "gpt-9"}), 404, "not_found_error"
    )
    assert "gpt-9" in error["message"]
    with pytest.raises(openai.NotFoundError):
        openai_client(still_up).chat.completions.create(model="gpt-9", messages=OK_CHAT["messages"])
    with pytest.raises(anthropic.NotFoundError):
        anthropic_client(still_up).messages.create(model="gpt-9", messages=OK_CHAT["messages"], max_tokens=2)


def test_a_wrong_or_missing_key_is_a_401_in_both_forms(still_up: RunningServer) -> None:
    for key in ("sk-wrong", None):
        error = _openai_error(_send(still_up, CHAT, OK_CHAT, key=key), 401)
        assert error["code"] == "invalid_api_key"
        _anthropic_error(_send(still_up, MESSAGES, OK_MESSAGES, key=key), 401, "authentication_error")
    r = httpx.post(f"{still_up.url}{MESSAGES}", json=OK_MESSAGES, headers={"x-api-key": KEY}, timeout=60)
    assert r.status_code == 200  # Anthropic's header is accepted as well as a bearer token
    with pytest.raises(openai.AuthenticationError):
        openai_client(still_up, key="sk-wrong").models.list()
    with pytest.raises(anthropic.AuthenticationError):
        anthropic_client(still_up, key="sk-wrong").messages.create(
            model=MODEL, messages=QUESTION, max_tokens=2
        )


QUESTION = [{"role": "user", "content": "Hi"}]


def test_an_oversized_body_is_a_413_and_the_server_stays_up(local_llm: LLM) -> None:
    with running_server({MODEL: local_llm}, max_request_bytes=4096) as server:
        big = {**OK_CHAT, "messages": [{"role": "user", "content": "x" * 10_000}]}
        error = _openai_error(_send(server, CHAT, big), 413)
        assert "4096" in error["message"] and error["code"] == "request_too_large"
        _anthropic_error(_send(server, MESSAGES, big), 413, "request_too_large")
        assert _send(server, CHAT, OK_CHAT).status_code == 200


def test_unknown_routes_and_methods(still_up: RunningServer) -> None:
    _openai_error(httpx.get(f"{still_up.url}/v1/nothing", headers={"authorization": f"Bearer {KEY}"}), 404)
    _openai_error(httpx.get(f"{still_up.url}{CHAT}", headers={"authorization": f"Bearer {KEY}"}), 405)
    assert _send(still_up, "/chat/completions", OK_CHAT).status_code == 200  # /v1 may be left out


# -- failing back ends ---------------------------------------------------------------------------


@pytest.fixture
def fake_served(fake: FakeOpenAI) -> Iterator[RunningServer]:
    llm = create_llm(
        "openai-compatible", model="gpt-fake", base_url=fake.base_url, api_key=FAKE_KEY, retry_config=NO_RETRY
    )
    with running_server({MODEL: llm}) as server:
        yield server


def test_a_back_end_429_is_passed_through_with_retry_after(
    fake: FakeOpenAI, fake_served: RunningServer
) -> None:
    limited = {
        "error": {
            "message": "Rate limit reached for requests",
            "type": "requests",
            "code": "rate_limit_exceeded",
        }
    }
    fake.script.extend([Fault("status", 429, body=limited, headers={"retry-after": "7"})] * 3)
    r = _send(fake_served, CHAT, OK_CHAT)
    error = _openai_error(r, 429)
    assert r.headers["retry-after"] == "7" and "Rate limit reached" in error["message"]
    r = _send(fake_served, MESSAGES, OK_MESSAGES)
    _anthropic_error(r, 429, "rate_limit_error")
    r = _send(fake_served, CHAT, {**OK_CHAT, "stream": True})  # a stream that fails at once: a status
    assert r.status_code == 429 and r.headers["retry-after"] == "7"


@pytest.mark.parametrize(("status", "kind"), [(500, "api_error"), (503, "overloaded_error")])
def test_a_back_end_5xx_is_passed_through(
    fake: FakeOpenAI, fake_served: RunningServer, status: int, kind: str
) -> None:
    fake.script.extend([Fault("status", status), Fault("status", status)])
    _openai_error(_send(fake_served, CHAT, OK_CHAT), status)
    _anthropic_error(_send(fake_served, MESSAGES, OK_MESSAGES), status, kind)


def test_an_error_after_the_stream_began_is_an_error_event(
    fake: FakeOpenAI, fake_served: RunningServer
) -> None:
    fake.script.append(Fault("stream_error", events=2))
    r = _send(fake_served, CHAT, {**OK_CHAT, "stream": True})
    assert r.status_code == 200
    events = [json.loads(line[6:]) for line in r.text.split("\n\n") if line.startswith("data: {")]
    assert events[-1]["error"]["type"] == "server_error" and "Traceback" not in r.text
    fake.script.append(Fault("stream_error", events=2))
    with pytest.raises(openai.APIError, match="error"):
        list(openai_client(fake_served).chat.completions.create(model=MODEL, messages=QUESTION, stream=True))
    fake.script.append(Fault("stream_error", events=2))
    r = _send(fake_served, MESSAGES, {**OK_MESSAGES, "stream": True})
    assert r.text.rstrip().split("\n\n")[-1].startswith("event: error\ndata: ")


def test_a_back_end_that_cannot_be_reached_is_a_502() -> None:
    llm = create_llm("openai-compatible", model="m", base_url="http://127.0.0.1:9/v1", retry_config=NO_RETRY)
    with running_server({MODEL: llm}) as server:
        error = _openai_error(_send(server, CHAT, OK_CHAT), 502)
        assert "127.0.0.1:9" in error["message"]


def test_the_back_end_key_never_reaches_the_client_or_the_log(
    anthropic_test_server: AnthropicServer, caplog: pytest.LogCaptureFixture
) -> None:
    script = anthropic_test_server.script(AnthropicFault("echo_key"), AnthropicFault("echo_key"))
    llm = create_llm(
        "anthropic",
        model="claude-haiku-4-5",
        base_url=anthropic_test_server.url,
        api_key=ANTHROPIC_KEY,
        headers=script.headers,
        retry_config=NO_RETRY,
    )
    caplog.set_level(logging.DEBUG)
    with running_server({MODEL: llm}) as server:
        chat = _send(server, CHAT, OK_CHAT)
        messages = _send(server, MESSAGES, OK_MESSAGES)
    assert chat.status_code == messages.status_code == 400
    assert "proxy rejected the request" in chat.text  # the back end's message, scrubbed
    for text in (chat.text, messages.text, caplog.text):
        assert ANTHROPIC_KEY not in text and KEY not in text


def test_after_all_that_the_server_still_generates(local_server: RunningServer) -> None:
    r = _send(local_server, CHAT, OK_CHAT)
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"]
