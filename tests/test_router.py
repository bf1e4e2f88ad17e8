"""The router over real servers: llama-cpp-python's and llama.cpp's (SmolLM2), plus fault deployments
(a refused port, 429 with Retry-After, slow past its timeout, 500 forever) on the fake OpenAI server.

Circuits run on a controllable clock: no test sleeps for the breaker.
"""

from __future__ import annotations

import base64
import logging
import secrets
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import anyio
import openai
import pytest
from pydantic import BaseModel

from abstractcore import (
    LLM,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ContextLengthExceededError,
    Deployment,
    GenerateResponse,
    ModelNotFoundError,
    NoDeploymentAvailableError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ResponseFormatError,
    RetryConfig,
    ServerError,
    StructuredOutputError,
    create_llm,
)
from tests.servers.ollama_server import OllamaServer
from tests.servers.openai_fake import KEY, WORDS, FakeOpenAI, Fault, running_fake_openai
from tests.support.reachable import paths_holding

FAST = RetryConfig(max_attempts=1)
ANSWER = "".join(WORDS)
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


class Person(BaseModel):
    name: str
    age: int


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, FakeOpenAI]]:
    """Four fake OpenAI servers: x, y, z (faults or witnesses, as each test scripts them) and w."""
    with ExitStack() as stack:
        yield {name: stack.enter_context(running_fake_openai()) for name in ("x", "y", "z", "w")}


@pytest.fixture
def fx(servers: dict[str, FakeOpenAI]) -> Iterator[dict[str, FakeOpenAI]]:
    for server in servers.values():
        server.reset()
    yield servers
    for server in servers.values():
        server.reset()


@pytest.fixture(scope="module")
def dead_url() -> str:
    """A 127.0.0.1 port nothing listens on: connections are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def on(server: FakeOpenAI, name: str, **config: Any) -> tuple[str, dict[str, Any]]:
    """A (provider, config) deployment on a fake server."""
    base = {"base_url": server.base_url, "model": "gpt-fake", "api_key": KEY, "retry_config": FAST}
    return ("openai-compatible", {**base, "name": name, **config})


def llama(url: str, name: str = "llama", **config: Any) -> tuple[str, dict[str, Any]]:
    return ("openai-compatible", {"base_url": url, "model": "smollm2", "name": name, **config})


def dead(url: str, name: str = "dead") -> tuple[str, dict[str, Any]]:
    return ("openai-compatible", {"base_url": url, "model": "m", "name": name, "retry_config": FAST})


def outcomes(response: Any) -> list[tuple[str, str]]:
    return [(a.deployment, a.outcome) for a in response.attempts]


def rate_limit(retry_after: str) -> Fault:
    body = {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}
    return Fault("status", 429, body=body, headers={"retry-after": retry_after})


# -- the request lands on the healthy one -----------------------------------------------------------


def test_the_request_lands_on_the_healthy_one(
    fx: dict[str, FakeOpenAI], dead_url: str, llama_base_url: str
) -> None:
    fx["x"].script.extend([rate_limit("120")] * 4)
    fx["y"].script.extend([Fault("delay", seconds=1.5)] * 2)
    fx["z"].script.extend([Fault("status", 500)] * 4)
    quick = RetryConfig(max_attempts=2, initial_delay=0.01, jitter=False)
    clock = Clock()
    llm = create_llm(
        "router",
        models=[
            dead(dead_url),
            on(fx["x"], "429", retry_config=quick),
            on(fx["y"], "slow", timeout=0.3),
            on(fx["z"], "500", retry_config=quick),
            llama(llama_base_url),
        ],
        clock=clock,
    )
    response = llm.generate("Say hello", max_tokens=4)
    assert isinstance(response, GenerateResponse) and response.content
    assert outcomes(response) == [
        ("dead", "failed"),
        ("429", "failed"),
        ("slow", "failed"),
        ("500", "failed"),
        ("llama", "ok"),
    ]
    kinds = [type(a.error) for a in response.attempts[:4]]
    assert kinds == [ProviderConnectionError, RateLimitError, ProviderTimeoutError, ServerError]
    assert response.model == "smollm2" and response.attempts[-1].seconds > 0
    assert len(fx["z"].requests) == 2  # the deployment's own retries first
    assert len(fx["x"].requests) == 1  # a Retry-After over max_retry_after is not retried
    health = llm.health()
    # a Retry-After over the budget opens the circuit at once, for as long as the server asked
    assert health["429"].state == "open" and health["429"].retry_in == pytest.approx(120)
    assert health["500"].state == "closed" and health["500"].failures == 1
    assert health["llama"].requests == 1 and health["llama"].latency is not None
    llm.close()


@pytest.mark.anyio
async def test_streams_fall_back_before_the_first_chunk(
    fx: dict[str, FakeOpenAI], dead_url: str, llama_base_url: str
) -> None:
    fx["x"].script.append(Fault("status", 500))
    llm = create_llm("router", models=[dead(dead_url), on(fx["x"], "500"), llama(llama_base_url)])
    chunks = [chunk async for chunk in llm.astream("Say hello", max_tokens=4)]
    assert "".join(c.content for c in chunks)
    assert outcomes(chunks[-1]) == [("dead", "failed"), ("500", "failed"), ("llama", "ok")]
    assert all(c.model == "smollm2" for c in chunks if c.model)
    await llm.aclose()


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault("stream_error", events=2), ServerError),
        (Fault("drop_stream", events=2), ProviderConnectionError),
    ],
    ids=["error-event", "dropped"],
)
def test_a_stream_that_fails_after_its_first_chunk_is_not_moved(
    fx: dict[str, FakeOpenAI], fault: Fault, error: type[Exception]
) -> None:
    fx["x"].script.append(fault)
    llm = create_llm("router", models=[on(fx["x"], "x"), on(fx["w"], "witness")])
    seen: list[str] = []
    with pytest.raises(error) as caught:
        for chunk in llm.stream("Tell a story"):
            seen.append(chunk.content)
    assert seen == WORDS[:2]
    assert fx["w"].requests == []
    assert [(a.deployment, a.outcome, a.reason) for a in caught.value.attempts] == [
        ("x", "failed", "failed after its first chunk")
    ]
    assert llm.health()["x"].errors == 1
    llm.close()


def test_a_stream_the_caller_leaves_early_is_closed_and_counts_as_served(fx: dict[str, FakeOpenAI]) -> None:
    fx["x"].script.append(Fault("delay_stream", seconds=0.05))
    llm = create_llm("router", models=[on(fx["x"], "x"), on(fx["w"], "witness")])
    for chunk in llm.stream("Tell a story"):
        assert chunk.content == "Hello"
        break
    health = llm.health()["x"]
    assert health.in_flight == 0 and health.errors == 0 and health.state == "closed"
    assert fx["w"].requests == []
    llm.close()


# -- which failures move: every row of the table in docs/production.md ----------------------------


@dataclass
class Row:
    """One row of the failure table: how deployment x fails, and whether the call moves to w."""

    setup: Callable[[FakeOpenAI, str], tuple[str, dict[str, Any]]]
    error: type[Exception]
    moves: bool
    x_requests: int | None = 1
    call: dict[str, Any] = field(default_factory=dict)


def scripted(*faults: Fault, **config: Any) -> Callable[[FakeOpenAI, str], tuple[str, dict[str, Any]]]:
    def setup(server: FakeOpenAI, dead_url: str) -> tuple[str, dict[str, Any]]:
        server.script.extend(faults)
        return on(server, "x", **config)

    return setup


BAD_REQUEST = Fault(
    "status",
    400,
    body={"error": {"message": "Invalid 'messages[0].role'", "type": "invalid_request_error", "code": None}},
)
ROWS = {
    "connection refused": Row(lambda s, url: dead(url, "x"), ProviderConnectionError, True, None),
    "timeout": Row(scripted(Fault("delay", seconds=1.0), timeout=0.2), ProviderTimeoutError, True),
    "5xx": Row(scripted(Fault("status", 500)), ServerError, True),
    "502 html": Row(scripted(Fault("html", 502)), ServerError, True),
    "429 within budget, after its own retries": Row(
        scripted(
            rate_limit("0.01"),
            rate_limit("0.01"),
            retry_config=RetryConfig(max_attempts=2, initial_delay=0.01),
        ),
        RateLimitError,
        True,
        x_requests=2,
    ),
    "429 over budget": Row(scripted(rate_limit("120")), RateLimitError, True),
    "model not found": Row(scripted(model="missing-model"), ModelNotFoundError, True),
    "authentication": Row(scripted(api_key="sk-wrong-key-000000"), AuthenticationError, True),
    "malformed reply": Row(scripted(Fault("invalid_json")), ResponseFormatError, True),
    "bad request": Row(scripted(BAD_REQUEST), BadRequestError, False),
    "structured output": Row(
        scripted(), StructuredOutputError, False, call={"response_model": Person, "max_retries": 0}
    ),
}


@pytest.mark.parametrize("row", ROWS.values(), ids=ROWS.keys())
def test_the_failure_table(fx: dict[str, FakeOpenAI], dead_url: str, row: Row) -> None:
    llm = create_llm("router", models=[row.setup(fx["x"], dead_url), on(fx["w"], "witness")])
    if row.moves:
        response = llm.generate("Hi", **row.call)
        assert outcomes(response) == [("x", "failed"), ("witness", "ok")]
        assert isinstance(response.attempts[0].error, row.error)
        assert len(fx["w"].requests) == 1
    else:
        with pytest.raises(row.error) as caught:
            llm.generate("Hi", **row.call)
        assert fx["w"].requests == []  # raised at once, the others untouched
        if isinstance(caught.value, ProviderError):
            assert outcomes(caught.value) == [("x", "failed")]
        assert llm.health()["x"].failures == 0  # the deployment answered: it is healthy
    if row.x_requests is not None:
        assert len(fx["x"].requests) == row.x_requests
    llm.close()


def test_a_429_over_the_budget_moves_without_the_deployments_retries(fx: dict[str, FakeOpenAI]) -> None:
    fx["x"].script.extend([rate_limit("120")] * 3)
    x = ("openai-compatible", {"base_url": fx["x"].base_url, "model": "m", "api_key": KEY, "name": "x"})
    llm = create_llm("router", models=[x, on(fx["w"], "witness")], retry_after_budget=5)
    assert outcomes(llm.generate("Hi")) == [("x", "failed"), ("witness", "ok")]
    assert len(fx["x"].requests) == 1
    llm.close()


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_cancellation_is_not_moved_and_not_held_against_the_deployment(
    fx: dict[str, FakeOpenAI],
) -> None:
    fx["x"].script.append(Fault("delay", seconds=1.0))
    llm = create_llm("router", models=[on(fx["x"], "x"), on(fx["w"], "witness")], failure_threshold=1)
    with anyio.move_on_after(0.2) as scope:
        await llm.agenerate("Hi")
    assert scope.cancelled_caught
    assert fx["w"].requests == []
    health = llm.health()["x"]
    assert (health.state, health.failures, health.in_flight, health.errors) == ("closed", 0, 0, 0)
    await llm.aclose()


def test_context_length_moves_only_to_a_larger_context(
    fx: dict[str, FakeOpenAI], llama_base_url: str
) -> None:
    message = "request (6030 tokens) exceeds the available context size (4096 tokens), try increasing it"
    fx["x"].script.append(
        Fault("status", 400, body={"error": {"message": message, "type": "exceed_context_size_error"}})
    )
    llm = create_llm(
        "router",
        models=[
            on(fx["x"], "x"),
            on(fx["y"], "same", capabilities={"context_window": 4096}),
            on(fx["z"], "unknown"),
            llama(llama_base_url, capabilities={"context_window": 8192}),
        ],
    )
    response = llm.generate("Say hello", max_tokens=4)
    assert outcomes(response) == [
        ("x", "failed"),
        ("same", "skipped"),
        ("unknown", "skipped"),
        ("llama", "ok"),
    ]
    assert isinstance(response.attempts[0].error, ContextLengthExceededError)
    assert "4,096" in (response.attempts[1].reason or "")
    assert fx["y"].requests == [] and fx["z"].requests == []
    llm.close()


def test_the_real_servers_context_error_moves_to_a_model_that_holds_the_prompt(
    fx: dict[str, FakeOpenAI], llama_base_url: str
) -> None:
    prompt = "hello " * 2500  # ~2,500 real tokens, over the server's 2,048; estimated 3,750
    llm = create_llm(
        "router",
        models=[
            llama(llama_base_url),  # says nothing of its context: tried
            on(fx["y"], "small", capabilities={"context_window": 3000}),
            on(fx["z"], "large", capabilities={"context_window": 32768}),
        ],
    )
    response = llm.generate(prompt, max_tokens=4)
    assert outcomes(response) == [("llama", "failed"), ("small", "skipped"), ("large", "ok")]
    assert isinstance(response.attempts[0].error, ContextLengthExceededError)
    assert fx["y"].requests == []
    # with nothing larger, the context error itself is raised
    only = create_llm(
        "router", models=[llama(llama_base_url), on(fx["y"], "small", capabilities={"context_window": 3000})]
    )
    with pytest.raises(ContextLengthExceededError) as caught:
        only.generate(prompt, max_tokens=4)
    assert outcomes(caught.value) == [("llama", "failed"), ("small", "skipped")]  # the fallback order
    llm.close()
    only.close()


# -- health: open, half-open probe, close -----------------------------------------------------------


def test_the_breaker_opens_probes_half_open_and_closes(
    fx: dict[str, FakeOpenAI], caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    fx["x"].script.extend([Fault("status", 500)] * 20)
    llm = create_llm(
        "router",
        models=[on(fx["x"], "x"), on(fx["w"], "w")],
        failure_threshold=2,
        failure_window=10,
        cooldown=30,
        clock=clock,
    )
    caplog.set_level(logging.INFO, logger="abstractcore.router")
    llm.generate("Hi")
    clock.advance(20)  # the first failure leaves the window
    llm.generate("Hi")
    assert llm.health()["x"].state == "closed" and llm.health()["x"].failures == 1
    llm.generate("Hi")  # two failures within 10 s: open
    health = llm.health()["x"]
    assert health.state == "open" and health.retry_in == pytest.approx(30)
    assert any("x is open after 2 failure(s)" in r.getMessage() for r in caplog.records)
    sent = len(fx["x"].requests)
    response = llm.generate("Hi")
    assert [(a.deployment, a.outcome, a.reason) for a in response.attempts] == [
        ("x", "skipped", "circuit open"),
        ("w", "ok", None),
    ]
    assert len(fx["x"].requests) == sent  # an open circuit is not hammered
    clock.advance(31)
    assert llm.health()["x"].state == "half_open"
    llm.generate("Hi")  # the probe fails: open again
    assert len(fx["x"].requests) == sent + 1 and llm.health()["x"].state == "open"
    assert any("x stays open" in r.getMessage() for r in caplog.records)
    clock.advance(31)
    fx["x"].script.clear()  # x recovers
    response = llm.generate("Hi")
    assert outcomes(response) == [("x", "ok")]
    assert llm.health()["x"].state == "closed" and llm.health()["x"].failures == 0
    assert any("x is closed again" in r.getMessage() for r in caplog.records)
    llm.close()


def test_the_cooldown_honours_retry_after_and_one_success_resets_the_count(fx: dict[str, FakeOpenAI]) -> None:
    clock = Clock()
    unavailable = Fault("status", 503, headers={"retry-after": "100"})
    fx["x"].script.extend([Fault("status", 500), unavailable])
    llm = create_llm(
        "router",
        models=[on(fx["x"], "x"), on(fx["w"], "w")],
        failure_threshold=2,
        cooldown=30,
        retry_after_budget=200,
        clock=clock,
    )
    llm.generate("Hi")  # failure 1
    assert outcomes(llm.generate("Hi")) == [("x", "failed"), ("w", "ok")]  # failure 2: opens
    assert llm.health()["x"].retry_in == pytest.approx(100)  # the server's 100 s, not the 30 s cooldown
    clock.advance(31)
    assert llm.health()["x"].state == "open"
    clock.advance(70)
    assert outcomes(llm.generate("Hi")) == [("x", "ok")]
    fx["x"].script.extend([Fault("status", 500), Fault("status", 500)])
    llm.generate("Hi")
    llm.generate("Hi")
    assert llm.health()["x"].state == "open"
    clock.advance(31)
    fx["x"].script.extend([Fault("status", 500)])
    llm.generate("Hi")  # the probe fails
    assert llm.health()["x"].state == "open"
    llm.close()


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_half_open_lets_one_probe_through(fx: dict[str, FakeOpenAI]) -> None:
    clock = Clock()
    fx["x"].script.extend([Fault("status", 500), Fault("delay", seconds=0.3)])
    llm = create_llm("router", models=[on(fx["x"], "x"), on(fx["w"], "w")], failure_threshold=1, clock=clock)
    await llm.agenerate("Hi")
    clock.advance(31)
    served: list[str] = []

    async def one() -> None:
        served.append((await llm.agenerate("Hi")).attempts[-1].deployment)

    async with anyio.create_task_group() as group:
        for _ in range(3):
            group.start_soon(one)
    assert sorted(served) == ["w", "w", "x"]
    assert llm.health()["x"].state == "closed"
    await llm.aclose()


def test_every_circuit_open_raises_no_deployment_available(fx: dict[str, FakeOpenAI]) -> None:
    clock = Clock()
    fx["x"].script.extend([Fault("status", 500)] * 2)
    llm = create_llm("router", models=[on(fx["x"], "x")], failure_threshold=1, cooldown=30, clock=clock)
    with pytest.raises(ServerError) as first:
        llm.generate("Hi")
    assert outcomes(first.value) == [("x", "failed")]
    clock.advance(5)
    with pytest.raises(NoDeploymentAvailableError) as caught:
        llm.generate("Hi")
    assert caught.value.retry_after == pytest.approx(25)
    assert [(a.outcome, a.reason) for a in caught.value.attempts] == [("skipped", "circuit open")]
    assert "router.health()" in str(caught.value)
    llm.close()


# -- routing on capabilities --------------------------------------------------------------------------


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def test_routing_on_the_servers_own_capabilities(
    fx: dict[str, FakeOpenAI], cpp_server_url: str, llama_base_url: str
) -> None:
    # llama.cpp's /props says: no tools (SmolLM2's template), no vision, a 4,096-token context
    llm = create_llm(
        "router",
        models=[
            llama(cpp_server_url, "cpp"),
            llama(llama_base_url),
            on(fx["w"], "large", capabilities={"context_window": 32768}),
        ],
    )
    assert outcomes(llm.generate("Say hello", max_tokens=4)) == [("cpp", "ok")]
    with_tools = llm.generate("Weather in Paris?", tools=[get_weather], max_tokens=4)
    assert outcomes(with_tools) == [("cpp", "skipped"), ("llama", "ok")]
    assert with_tools.attempts[0].reason == "takes no tools"
    long = llm.generate("word " * 4000, max_tokens=4)  # ~5,000 tokens estimated
    assert outcomes(long)[0] == ("cpp", "skipped") and outcomes(long)[-1] == ("large", "ok")
    assert long.attempts[0].reason == "has a 4,096-token context window"
    caps = llm.fetch_capabilities()
    assert caps.tools is True and caps.context_window == 32768 and caps.source == "router"
    llm.close()


@pytest.mark.parametrize(
    ("capabilities", "call", "reason"),
    [
        ({"tools": False}, {"tools": [get_weather]}, "takes no tools"),
        ({"vision": False}, {"media": [PNG]}, "takes no images"),
        ({"structured_output": False}, {"response_model": Person}, "has no structured output"),
        ({"context_window": 2048}, {"prompt": "x" * 20_000}, "has a 2,048-token context window"),
        ({"max_output_tokens": 1000}, {"max_tokens": 2000}, "answers at most 1,000 tokens"),
    ],
    ids=["tools", "images", "response_model", "long prompt", "max_tokens"],
)
def test_a_request_goes_only_to_deployments_that_can_take_it(
    fx: dict[str, FakeOpenAI], capabilities: dict[str, Any], call: dict[str, Any], reason: str
) -> None:
    fx["w"].script.append(Fault("reply", body={"content": '{"name": "Ann", "age": 31}'}))
    llm = create_llm("router", models=[on(fx["x"], "x", capabilities=capabilities), on(fx["w"], "w")])
    kwargs = {"prompt": "Ann, 31", **call}
    answer = llm.generate(**kwargs)
    if isinstance(answer, Person):
        assert answer == Person(name="Ann", age=31)
    else:
        assert [(a.deployment, a.outcome, a.reason) for a in answer.attempts] == [
            ("x", "skipped", reason),
            ("w", "ok", None),
        ]
    assert fx["x"].requests == [] and len(fx["w"].requests) == 1
    llm.close()


def test_a_request_no_deployment_can_take_names_what_is_missing(fx: dict[str, FakeOpenAI]) -> None:
    llm = create_llm(
        "router",
        models=[
            on(fx["x"], "x", capabilities={"tools": False}),
            on(fx["y"], "y", capabilities={"tools": False, "vision": False}),
        ],
    )
    with pytest.raises(ConfigurationError) as caught:
        llm.generate("Weather?", tools=[get_weather], media=[PNG])
    text = str(caught.value)
    assert "tools" in text and "images" in text and "x takes no tools" in text and "y takes no tools" in text
    assert fx["x"].requests == [] and fx["y"].requests == []
    llm.close()


# -- strategies and limits --------------------------------------------------------------------------


def served_by(llm: LLM, n: int, **call: Any) -> list[str]:
    return [llm.generate("Hi", **call).attempts[-1].deployment for _ in range(n)]


def test_round_robin_and_weighted(fx: dict[str, FakeOpenAI]) -> None:
    llm = create_llm("router", models=[on(fx["x"], "x"), on(fx["w"], "w")], strategy="round_robin")
    assert served_by(llm, 4) == ["x", "w", "x", "w"]
    heavy = create_llm(
        "router",
        models=[on(fx["x"], "x", weight=1000), Deployment(on(fx["w"], "w"), weight=1)],
        strategy="weighted",
    )
    assert served_by(heavy, 20).count("x") >= 15
    llm.close()
    heavy.close()


def test_latency_prefers_the_fastest_after_trying_each(fx: dict[str, FakeOpenAI]) -> None:
    fx["x"].script.append(Fault("delay", seconds=0.2))
    llm = create_llm("router", models=[on(fx["x"], "x"), on(fx["w"], "w")], strategy="latency")
    assert served_by(llm, 4) == ["x", "w", "w", "w"]
    llm.close()


def test_cost_takes_the_cheapest(fx: dict[str, FakeOpenAI]) -> None:
    def openai(model: str) -> tuple[str, dict[str, Any]]:
        config = {"base_url": fx["w"].base_url, "api_key": KEY, "model": model, "retry_config": FAST}
        return ("openai", {**config, "name": model})

    llm = create_llm("router", models=[openai("gpt-4o"), openai("gpt-4o-mini")], strategy="cost")
    response = llm.generate("Hi")
    assert response.attempts[-1].deployment == "gpt-4o-mini" and response.model == "gpt-4o-mini"
    assert response.cost is not None and response.cost > 0
    local = create_llm("router", models=[openai("gpt-4o-mini"), on(fx["w"], "self-hosted")], strategy="cost")
    assert served_by(local, 1) == ["self-hosted"]  # no price list: counted as free
    llm.close()
    local.close()


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_least_busy_and_concurrency_limits(fx: dict[str, FakeOpenAI]) -> None:
    fx["x"].script.extend([Fault("delay", seconds=0.3)] * 3)
    for strategy, limit in (("least_busy", None), ("fallback", 1)):
        llm = create_llm(
            "router", models=[on(fx["x"], "x", max_concurrency=limit), on(fx["w"], "w")], strategy=strategy
        )
        served: list[str] = []

        async def one(llm: LLM = llm, served: list[str] = served) -> None:
            served.append((await llm.agenerate("Hi")).attempts[-1].deployment)

        async with anyio.create_task_group() as group:
            group.start_soon(one)
            await anyio.sleep(0.05)
            group.start_soon(one)
        assert sorted(served) == ["w", "x"], strategy
        await llm.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_when_every_deployment_is_full_calls_wait_for_a_slot(fx: dict[str, FakeOpenAI]) -> None:
    fx["x"].script.extend([Fault("delay", seconds=0.1)] * 3)
    llm = create_llm("router", models=[on(fx["x"], "x", max_concurrency=1)])
    start = time.perf_counter()
    async with anyio.create_task_group() as group:
        for _ in range(3):
            group.start_soon(llm.agenerate, "Hi")
    assert time.perf_counter() - start >= 0.3  # one at a time
    assert len(fx["x"].requests) == 3 and llm.health()["x"].in_flight == 0
    await llm.aclose()


def test_rpm_and_tpm_budgets(fx: dict[str, FakeOpenAI]) -> None:
    clock = Clock()
    llm = create_llm("router", models=[on(fx["x"], "x", rpm=1), on(fx["w"], "w")], clock=clock)
    response = llm.generate("Hi")
    second = llm.generate("Hi")
    assert outcomes(response) == [("x", "ok")]
    assert [(a.deployment, a.reason) for a in second.attempts] == [("x", "over its rpm budget"), ("w", None)]
    clock.advance(61)
    assert served_by(llm, 1) == ["x"]
    tokens = create_llm("router", models=[on(fx["x"], "x", tpm=10), on(fx["w"], "w")], clock=clock)
    assert served_by(tokens, 3) == ["x", "w", "w"]  # the fake's answer uses 13 tokens
    clock.advance(61)
    assert served_by(tokens, 1) == ["x"]
    llm.close()
    tokens.close()


# -- the same API as any LLM ----------------------------------------------------------------------------


def test_run_streams_and_embeddings_go_through_the_router(
    dead_url: str, llama_base_url: str, ollama_test_server: OllamaServer
) -> None:
    llm = create_llm("router", models=[dead(dead_url), llama(llama_base_url)], max_tokens=24, temperature=0)
    result = llm.run("What is the weather in Paris?", tools=[get_weather], tool_choice="get_weather")
    first = result.steps[0]
    assert first.executions and first.executions[0].result == "sunny in Paris"
    assert outcomes(first.response) == [("dead", "failed"), ("llama", "ok")]
    assert result.content is not None
    embedder = create_llm(
        "router",
        models=[dead(dead_url), ("ollama", {"model": "smollm2:135m", "base_url": ollama_test_server.url})],
    )
    vectors = embedder.embed(["one", "two"])
    assert len(vectors) == 2 and len(vectors[0]) > 10
    assert outcomes(vectors) == [("dead", "failed"), ("ollama/smollm2:135m", "ok")]
    assert vectors.deployment == "ollama/smollm2:135m"
    llm.close()
    embedder.close()


@pytest.mark.anyio
async def test_the_async_face_on_both_loops(fx: dict[str, FakeOpenAI], dead_url: str) -> None:
    async with create_llm("router", models=[dead(dead_url), on(fx["w"], "w")]) as llm:
        response = await llm.agenerate("Hi")
        assert response.content == ANSWER and outcomes(response) == [("dead", "failed"), ("w", "ok")]
        chunks = [c async for c in await llm.agenerate("Hi", stream=True)]
        assert "".join(c.content for c in chunks) == ANSWER
        assert await llm.alist_models() == ["m", "gpt-fake"]


def test_the_router_is_an_llm(fx: dict[str, FakeOpenAI]) -> None:
    first = create_llm("openai-compatible", model="gpt-fake", base_url=fx["x"].base_url, api_key=KEY)
    llm = create_llm("router", models=[first, on(fx["w"], "w")], temperature=0.5, timeout=30)
    assert isinstance(llm, LLM) and llm.model == "router"
    assert llm.deployments == ["openai-compatible/gpt-fake", "w"]
    assert "Router(strategy='fallback'" in repr(llm)
    assert llm.generate("Hi").content == ANSWER
    assert fx["x"].requests[-1]["body"]["temperature"] == 0.5  # router defaults reach the deployment
    assert llm.generate("Hi", temperature=0.1).attempts[-1].deployment == "openai-compatible/gpt-fake"
    assert fx["x"].requests[-1]["body"]["temperature"] == 0.1
    with pytest.raises(ConfigurationError):  # checked before anything is sent, as by any provider
        llm.stream("Hi", temperature=9)
    llm.close()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"models": []}, "non-empty list"),
        ({"models": ["openai"]}, "models[0] must be"),
        ({"models": [("openai",)]}, "(provider, config) pair"),
        ({"models": [("nope", {"model": "m"})]}, "Unknown provider"),
        ({"strategy": "fastest"}, "strategy must be one of"),
        ({"retry_config": FAST}, "each deployment"),
        ({"failure_threshold": 0}, "failure_threshold"),
        ({"models": [Deployment(("ollama", {"model": "m"}), weight=0)]}, "weight"),
        ({"models": [("ollama", {"model": "m", "capabilities": {"colour": 1}})]}, "Capabilities fields"),
        (
            {"models": [("ollama", {"model": "m", "name": "a"}), ("ollama", {"model": "n", "name": "a"})]},
            "named 'a'",
        ),
        ({"temprature": 0.5}, "Did you mean 'temperature'"),
    ],
)
def test_bad_configuration_fails_in_create_llm(config: dict[str, Any], message: str) -> None:
    config = {"models": [("ollama", {"model": "m"})], **config}
    with pytest.raises(ConfigurationError) as caught:
        create_llm("router", **config)
    assert message in str(caught.value)


def test_no_key_is_reachable_through_a_router_built_from_pairs(fx: dict[str, FakeOpenAI]) -> None:
    """Judged by the objects, not their reprs: the walk also reaches the pooled transports and their
    HTTP library's sessions (a call went through the deployments first)."""
    secret = "sk-router-" + secrets.token_hex(16)
    for server in fx.values():
        server.require_key = False
    fx["x"].script.append(Fault("status", 500))
    llm = create_llm(
        "router",
        models=[
            (
                "openai",
                {
                    "model": "gpt-4o-mini",
                    "api_key": secret,
                    "base_url": fx["x"].base_url,
                    "retry_config": FAST,
                },
            ),
            ("anthropic", {"api_key": secret, "base_url": fx["y"].base_url}),  # no /v1/messages: 404
            ("openrouter", {"model": "m", "api_key": secret, "base_url": fx["w"].base_url}),
        ],
    )
    assert outcomes(llm.generate("Hi")) == [
        ("openai/gpt-4o-mini", "failed"),
        ("anthropic/claude-haiku-4-5", "failed"),
        ("openrouter/m", "ok"),
    ]
    assert f"Bearer {secret}" in str(fx["w"].requests[-1]["headers"])  # sent all the same
    found = paths_holding(llm, secret) + paths_holding(llm.health(), secret)
    assert not found, "\n".join(found)
    assert secret not in repr(llm) + str(llm.health())
    llm.close()


# -- when every deployment fails; who answered --------------------------------------------------------


def test_when_every_deployment_fails_the_error_names_each_with_its_failure(
    fx: dict[str, FakeOpenAI], dead_url: str
) -> None:
    fx["x"].script.append(Fault("status", 500))
    fx["y"].script.append(rate_limit("0"))
    no_tools = on(fx["z"], "no-tools", capabilities={"tools": False})
    llm = create_llm("router", models=[dead(dead_url), on(fx["x"], "x"), no_tools, on(fx["y"], "y")])
    with pytest.raises(RateLimitError) as caught:  # the last failure's class: except clauses keep working
        llm.generate("Weather in Paris?", tools=[get_weather])
    error = caught.value
    lines = str(error).splitlines()
    assert lines[0] == "The router tried 3 deployments; each failed:"
    assert lines[1].startswith(f"  - dead: ProviderConnectionError: openai-compatible at {dead_url}")
    assert lines[2].startswith("  - x: ServerError: ")
    assert lines[3].startswith(
        "  - y: RateLimitError: openai-compatible returned HTTP 429: Rate limit reached"
    )
    assert lines[4] == "Passed over: no-tools (takes no tools)."
    assert outcomes(error) == [("dead", "failed"), ("x", "failed"), ("no-tools", "skipped"), ("y", "failed")]
    assert error.__cause__ is error.attempts[-1].error  # the last failure itself, unchanged
    assert (error.status_code, error.retry_after) == (429, 0)  # and its fields
    assert fx["z"].requests == []
    llm.close()


@pytest.mark.anyio
async def test_a_stream_no_deployment_could_start_names_each_too(
    fx: dict[str, FakeOpenAI], dead_url: str
) -> None:
    fx["x"].script.append(Fault("status", 500))
    async with create_llm("router", models=[dead(dead_url), on(fx["x"], "x")]) as llm:
        with pytest.raises(ServerError) as caught:
            async for _ in llm.astream("Hi"):
                raise AssertionError("no deployment streamed")
    lines = str(caught.value).splitlines()
    assert lines[0] == "The router tried 2 deployments; each failed:"
    assert lines[1].startswith("  - dead: ProviderConnectionError") and lines[2].startswith(
        "  - x: ServerError"
    )


def test_one_deployment_failing_alone_is_named_too(fx: dict[str, FakeOpenAI]) -> None:
    fx["x"].script.append(Fault("status", 500))
    llm = create_llm("router", models=[on(fx["x"], "x")])
    with pytest.raises(ServerError) as caught:
        llm.generate("Hi")
    assert str(caught.value).startswith("The router tried 1 deployment; each failed:\n  - x: ServerError: ")
    llm.close()


def test_the_server_answers_a_router_that_failed_everywhere_with_the_last_failures_status(
    fx: dict[str, FakeOpenAI], dead_url: str
) -> None:
    """The server picks the HTTP status by the error's class: the summary keeps the last one's."""
    from tests.server.support import openai_client, running_server

    fx["x"].script.extend([Fault("status", 500), Fault("status", 500)])
    router = create_llm("router", models=[dead(dead_url), on(fx["x"], "x")])
    alone = create_llm(
        "openai-compatible", model="m", base_url=fx["x"].base_url, api_key=KEY, retry_config=FAST
    )
    with running_server({"routed": router, "alone": alone}) as server:
        client = openai_client(server)
        failures = []
        for model in ("routed", "alone"):
            with pytest.raises(openai.APIStatusError) as caught:
                client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi"}])
            failures.append(caught.value)
    routed, single = failures
    assert routed.status_code == single.status_code >= 500
    assert "The router tried 2 deployments" in str(routed) and "  - x: ServerError" in str(routed)
    router.close()
    alone.close()


def test_the_response_and_every_chunk_name_the_deployment_that_answered(
    fx: dict[str, FakeOpenAI], dead_url: str
) -> None:
    fx["x"].script.append(Fault("status", 500))
    llm = create_llm("router", models=[dead(dead_url), on(fx["x"], "x"), on(fx["w"], "w")])
    response = llm.generate("Hi")
    assert response.deployment == "w" and response.attempts[-1].deployment == "w"
    chunks = list(llm.stream("Hi"))
    assert len(chunks) > 2 and {c.deployment for c in chunks} == {"x"}  # x is healthy again
    plain = create_llm("openai-compatible", model="m", base_url=fx["w"].base_url, api_key=KEY)
    assert plain.generate("Hi").deployment is None  # no router: no deployment
    llm.close()
    plain.close()


@pytest.mark.anyio
async def test_async_chunks_name_the_deployment_too(fx: dict[str, FakeOpenAI], dead_url: str) -> None:
    async with create_llm("router", models=[dead(dead_url), on(fx["w"], "w")]) as llm:
        chunks = [c async for c in llm.astream("Hi")]
        assert chunks and all(c.deployment == "w" for c in chunks)
        assert (await llm.agenerate("Hi")).deployment == "w"
