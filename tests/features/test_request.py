"""The call is built once: every public method takes the keyword arguments declared in ``CallKwargs``."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

import abstractcore
from abstractcore import ConfigurationError, Message, Session
from abstractcore._llm_base import LLMBase
from abstractcore._sync import LLM
from abstractcore.features.request import CallKwargs, build_request
from abstractcore.providers.base import AsyncProvider
from abstractcore.session import AsyncSession

#: The public methods that take a call's keyword arguments, async and blocking.
CALLS = [
    (AsyncProvider, "agenerate"),
    (AsyncProvider, "astream"),
    (AsyncProvider, "acount_tokens"),
    (LLM, "agenerate"),
    (LLM, "generate"),
    (LLM, "astream"),
    (LLM, "stream"),
    (LLM, "acount_tokens"),
    (LLM, "count_tokens"),
    (LLMBase, "arun"),
    (LLMBase, "astream_run"),
    (LLM, "run"),
    (LLM, "stream_run"),
    (LLMBase, "abatch"),
    (LLM, "batch"),
    (AsyncSession, "asend"),
    (Session, "send"),
]


def _kwargs_annotation(cls: type, name: str) -> Any:
    parameters = inspect.signature(getattr(cls, name)).parameters.values()
    (var_keyword,) = [p for p in parameters if p.kind is inspect.Parameter.VAR_KEYWORD]
    return var_keyword.annotation  # as written (the modules use postponed annotations)


@pytest.mark.parametrize(("cls", "name"), CALLS, ids=[f"{c.__name__}.{n}" for c, n in CALLS])
def test_every_call_takes_the_one_declaration(cls: type, name: str) -> None:
    # a parameter added to CallKwargs is then on this method and its twin, with its type
    assert _kwargs_annotation(cls, name) == "Unpack[CallKwargs]"


def test_every_declared_keyword_is_understood_by_the_builder() -> None:
    values: dict[str, Any] = {
        "messages": [{"role": "user", "content": "Hi"}],
        "system_prompt": "Be brief.",
        "tools": [{"name": "f", "description": "d", "parameters": {"type": "object", "properties": {}}}],
        "tool_choice": "auto",
        "media": None,
        "structured_mode": "prompt",
        "max_retries": 1,
        "stop": ["\n"],
        "timeout": 5,
        "keep_alive": "5m",
        "extra_body": {"grammar": 'root ::= "x"'},
        "extra_headers": {"x-trace": "1"},
        "extra_query": {"api-version": "2"},
    }
    for key in CallKwargs.__annotations__:
        values.setdefault(key, 1)
    request = build_request(response_model=int, **values)
    assert [m.role for m in request.messages] == ["system", "user"]
    assert request.tools[0].name == "f" and request.tool_choice == "auto"
    assert request.max_retries == 1 and request.structured_mode == "prompt"
    assert request.extra_body == {"grammar": 'root ::= "x"'}
    assert request.extra_headers == {"x-trace": "1"} and request.extra_query == {"api-version": "2"}
    # whatever is left is a generation parameter, checked by the provider that binds the request
    left = set(CallKwargs.__annotations__) - set(values) | set(request.params)
    assert "temperature" in left and "messages" not in request.params
    assert not request.bound


def test_bad_escape_hatches_are_refused_before_sending() -> None:
    with pytest.raises(ConfigurationError, match="extra_body must be a dict"):
        build_request("Hi", extra_body=["grammar"])
    with pytest.raises(ConfigurationError, match="extra_headers values must be strings"):
        build_request("Hi", extra_headers={"x-n": 1})


def test_a_bound_request_has_the_providers_model_and_defaults_under_the_call() -> None:
    llm = abstractcore.create_llm(
        "openai", model="m", api_key="k", base_url="http://127.0.0.1:9/v1", temperature=0.5, top_p=0.9
    )
    bound = llm.provider._bind(build_request(messages=[Message("user", "Hi")], top_p=0.1, timeout=None))
    assert bound.bound and bound.model == "m"
    assert bound.params == {"temperature": 0.5, "top_p": 0.1}
    assert bound.timeout.total is None  # timeout=None on the call: no limit
    with pytest.raises(ConfigurationError, match="repeat_penalty"):
        llm.provider._bind(build_request("Hi", repeat_penalty=1.1))


def test_a_copied_request_keeps_every_field_but_the_changed_ones() -> None:
    """``Request.copy_with`` (on the path of every call) is written out field by field: a field
    added to ``Request`` must survive binding, whatever its kind."""
    import dataclasses

    from abstractcore.features.request import Request

    original = build_request("hi", temperature=0.5, extra_body={"grammar": "x"})
    for field in dataclasses.fields(Request):
        marker = object()
        changed = original.copy_with(**{field.name: marker})
        assert getattr(changed, field.name) is marker
        for other in dataclasses.fields(Request):
            if other.name != field.name:
                assert getattr(changed, other.name) is getattr(original, other.name), other.name
