"""Bad input fails before anything is sent, with a typed error that shows what to do; API keys
never show (repr, str, vars(), tracebacks with locals, pickles); the LLM object forwards only
the provider's public surface."""

from __future__ import annotations

import pickle
import secrets
import traceback
from typing import Any

import pytest

from abstractcore import (
    LLM,
    ConfigurationError,
    RetryConfig,
    StructuredOutputError,
    create_llm,
)
from abstractcore.core.secrets import Secret
from tests.servers.openai_fake import FakeOpenAI
from tests.support.reachable import paths_holding

pytestmark = pytest.mark.anyio
KEY = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"


def _walk(obj: Any, seen: set[int], depth: int = 0) -> list[str]:
    """repr() of ``obj`` and of everything reachable from it through vars()/slots/containers,
    inside abstractcore's own objects (third-party objects are shown by their repr only)."""
    if id(obj) in seen or depth > 8:
        return []
    seen.add(id(obj))
    out = [repr(obj)]
    if isinstance(obj, dict):
        for key, value in obj.items():
            out += _walk(key, seen, depth + 1) + _walk(value, seen, depth + 1)
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for value in obj:
            out += _walk(value, seen, depth + 1)
    elif type(obj).__module__.startswith("abstractcore"):
        attrs = dict(vars(obj)) if hasattr(obj, "__dict__") else {}
        for cls in type(obj).__mro__:
            for slot in getattr(cls, "__slots__", ()):
                if not slot.startswith("__") and hasattr(obj, slot):
                    attrs[slot] = getattr(obj, slot)
        for value in attrs.values():
            out += _walk(value, seen, depth + 1)
    return out


@pytest.mark.parametrize("provider", ["openai", "openrouter", "openai-compatible", "anthropic"])
async def test_the_key_is_reachable_through_no_attribute(provider: str, fake: FakeOpenAI) -> None:
    fake.require_key = False
    llm = create_llm(provider, api_key=KEY, base_url=fake.base_url, max_tokens=3)
    if provider != "anthropic":
        await llm.agenerate("hi")  # the pooled transport exists now too
    else:
        from abstractcore import ProviderError

        with pytest.raises(ProviderError):  # the fake OpenAI server has no /v1/messages
            await llm.agenerate("hi")
    shown = "\n".join(_walk(llm, set()) + _walk(llm.provider, set()) + [str(vars(llm.provider))])
    assert KEY not in shown
    assert KEY[3:20] not in shown  # no part of it either
    # ... while the server did receive it
    if provider != "anthropic":
        assert any(KEY in str(r["headers"]) for r in fake.requests)
    await llm.aclose()


HTTP_PROVIDERS = ["openai", "openrouter", "openai-compatible", "vllm", "anthropic", "ollama"]


def _fresh_key() -> str:
    """A key made for one test: no other object of the process holds its text."""
    return "sk-" + secrets.token_hex(20)


async def _call_both_ways(llm: LLM, provider: str) -> None:
    """One call on this loop and one through the sync face: both pooled transports exist then."""
    from abstractcore import ProviderError

    try:
        await llm.agenerate("hi", max_tokens=3)
    except ProviderError:  # anthropic, ollama: the fake OpenAI server has no /v1/messages, /api/chat
        assert provider in ("anthropic", "ollama")
    try:
        llm.generate("hi", max_tokens=3)
    except ProviderError:
        assert provider in ("anthropic", "ollama")


@pytest.mark.parametrize("provider", HTTP_PROVIDERS)
async def test_no_object_reachable_from_an_llm_holds_the_raw_key(provider: str, fake: FakeOpenAI) -> None:
    """Every object reachable from the LLM (attributes, slots, containers, closures, the pooled
    transport and its HTTP library's session), judged by its contents, never by its repr."""
    fake.require_key = False
    key = _fresh_key()
    llm = create_llm(provider, model="m", api_key=key, base_url=fake.base_url)
    await _call_both_ways(llm, provider)
    if provider not in ("anthropic", "ollama"):
        assert any(key in str(r["headers"]) for r in fake.requests)  # the server did receive it
    assert not (found := paths_holding(llm, key[3:20])), "\n".join(found)  # no part of it either
    await llm.aclose()
    llm.close()


async def test_no_object_reachable_from_a_session_holds_the_raw_key(fake: FakeOpenAI) -> None:
    fake.require_key = False
    key = _fresh_key()
    session = create_llm("openai", api_key=key, base_url=fake.base_url).session(system_prompt="Be brief.")
    await session.asend("hi")
    session.send("again")
    assert not (found := paths_holding(session, key[3:20])), "\n".join(found)
    session.llm.close()


def test_the_walk_finds_a_key_however_it_is_held() -> None:
    """The walk itself: a key behind a masked repr, in a slot, a closure, a partial, a bound method."""
    import functools

    key = _fresh_key()

    class Masked(str):
        def __repr__(self) -> str:
            return "'***'"

    class Slotted:
        __slots__ = ("__hidden",)

        def __init__(self, value: object) -> None:
            self.__hidden = value

        def method(self) -> None: ...

    def closure() -> object:
        held = Masked(key)
        return lambda: held

    holders: list[object] = [
        {"authorization": Masked(f"Bearer {key}")},
        Slotted(Masked(key)),
        closure(),
        functools.partial(print, key.encode()),
        Slotted(key).method,
        [(frozenset({key}),)],
    ]
    for holder in holders:
        assert paths_holding(holder, key), holder
    assert paths_holding(Secret(key), key) == []  # the one holder allowed


def test_a_secret_is_masked_and_never_pickled() -> None:
    secret = Secret(KEY)
    assert KEY not in repr(secret) + str(secret) + f"{secret}" + f"{secret:>60}" + "{}".format(secret)  # noqa: UP032
    assert f"{secret:>5}" == "  ***"  # a format spec is honoured on the mask, not refused
    assert secret.reveal() == KEY
    with pytest.raises(TypeError):
        pickle.dumps(secret)


def test_a_traceback_with_locals_shows_no_key(fake: FakeOpenAI) -> None:
    llm = create_llm(
        "openai", api_key=KEY, base_url="http://127.0.0.1:9/v1", retry_config=RetryConfig(max_attempts=1)
    )
    try:
        llm.generate("hi", timeout=2)
    except Exception as exc:
        rendered = "".join(traceback.TracebackException.from_exception(exc, capture_locals=True).format())
        assert KEY not in rendered
        assert KEY not in str(pickle.loads(pickle.dumps(exc)).__dict__)
    else:
        raise AssertionError("nothing listens on port 9")


def test_private_names_are_not_forwarded() -> None:
    llm = create_llm("openai", api_key=KEY, base_url="http://127.0.0.1:9/v1")
    with pytest.raises(AttributeError):
        llm._api_key  # noqa: B018
    with pytest.raises(AttributeError):
        llm._http  # noqa: B018
    assert llm.base_url == "http://127.0.0.1:9/v1"  # the public surface is
    assert "base_url" in dir(llm) and "_api_key" not in dir(llm)


@pytest.fixture
def offline() -> LLM:
    """A provider pointing at a closed port: anything that reaches the network fails differently."""
    return create_llm("openai-compatible", base_url="http://127.0.0.1:9/v1")


@pytest.mark.parametrize(
    ("messages", "needle"),
    [
        ({"role": "user", "content": "hi"}, "got dict"),
        ("hi", "pass a prompt string"),
        ([("user", "hi")], "messages[0] is a tuple"),
        ([{"role": "user", "text": "hi"}], "unknown keys ['text']"),
        ([{"content": "hi"}], "needs a 'role'"),
        ([{"role": "user", "content": 3}], "content must be a string"),
        (["hi"], "messages[0] is a str"),
    ],
)
def test_messages_of_the_wrong_shape(offline: LLM, messages: Any, needle: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        offline.generate(messages=messages)
    assert needle in str(info.value)
    assert "{'role': 'user', 'content'" in str(info.value)  # the expected shape is shown


def get_weather(city: str) -> str:
    """Weather in a city."""
    return "sunny"


@pytest.mark.parametrize(
    ("choice", "needle"),
    [
        ("get_time", "not in tools; tools offered: 'get_weather'"),
        (123, "tool_choice must be"),
        ({"type": "function", "function": {"name": "nope"}}, "'nope', which is not in tools"),
        ({"type": "bogus"}, "tool_choice must be"),
    ],
)
def test_tool_choice_is_checked_against_the_tools(offline: LLM, choice: Any, needle: str) -> None:
    with pytest.raises(ConfigurationError, match="tool_choice") as info:
        offline.generate("hi", tools=[get_weather], tool_choice=choice)
    assert needle in str(info.value)


def test_a_required_tool_choice_needs_tools(offline: LLM) -> None:
    with pytest.raises(ConfigurationError, match="needs tools"):
        offline.generate("hi", tool_choice="required")


def _tool(name: str = "get_weather", **schema: Any) -> dict[str, Any]:
    parameters = {"type": "object", "properties": {"city": {"type": "string"}}, **schema}
    return {"type": "function", "function": {"name": name, "parameters": parameters}}


@pytest.mark.parametrize(
    ("tool", "needle"),
    [
        (_tool(properties={"city": {"type": "nonsense"}}), "properties.city.type: 'nonsense' is not a JSON"),
        (_tool(required=["city", "country"]), "'country' is required but not declared"),
        (_tool("get weather"), "'get weather' is not allowed"),
        (_tool("x" * 65), "1 to 64"),
        (_tool(properties={"days": {"type": "array", "items": {"type": "int"}}}), "days.items.type"),
    ],
)
def test_a_tool_dict_the_apis_would_refuse_is_refused_before_sending(
    offline: LLM, tool: dict[str, Any], needle: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        offline.generate("hi", tools=[tool])
    assert needle in str(info.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("min_p", 1.5),
        ("min_p", -0.1),
        ("repeat_penalty", 0),
        ("repeat_penalty", -1.0),
        ("top_k", 0),
        ("top_k", 2.5),
        ("presence_penalty", 3),
        ("frequency_penalty", -2.5),
        ("top_p", 1.1),
        ("max_tokens", 0),
        ("seed", "x"),
    ],
)
def test_every_sampling_parameter_is_range_checked(name: str, value: Any) -> None:
    with pytest.raises(ConfigurationError, match=name):
        create_llm("huggingface", **{name: value})
    llm = create_llm("huggingface")
    with pytest.raises(ConfigurationError, match=name):
        llm.generate("hi", **{name: value})


async def test_an_explicit_timeout_none_lifts_the_default(fake: FakeOpenAI) -> None:
    from tests.servers.openai_fake import Fault

    fake.require_key = False
    llm = create_llm(
        "openai-compatible", base_url=fake.base_url, timeout=0.3, retry_config=RetryConfig(max_attempts=1)
    )
    fake.script.append(Fault("delay", seconds=0.8))
    from abstractcore import ProviderTimeoutError

    with pytest.raises(ProviderTimeoutError):
        await llm.agenerate("hi")
    fake.script.append(Fault("delay", seconds=0.8))
    r = await llm.agenerate("hi", timeout=None)  # no limit for this call
    assert r.content
    await llm.aclose()


async def test_a_structured_answer_cut_by_max_tokens_says_so(fake: FakeOpenAI) -> None:
    from pydantic import BaseModel

    from tests.servers.openai_fake import Fault

    class Person(BaseModel):
        name: str
        age: int

    fake.require_key = False
    llm = create_llm("openai-compatible", base_url=fake.base_url)
    fake.script.append(Fault("reply", body={"content": '{"name": "Ann", "a', "finish_reason": "length"}))
    with pytest.raises(StructuredOutputError) as info:
        await llm.agenerate("Ann is 31", response_model=Person, max_tokens=8)
    assert info.value.finish_reason == "length"
    assert "cut by max_tokens" in str(info.value) and "raise max_tokens" in str(info.value)
    assert "larger model" not in str(info.value)
    await llm.aclose()
