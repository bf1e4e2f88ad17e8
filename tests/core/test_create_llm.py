"""create_llm validates everything before a request is sent."""

from __future__ import annotations

import pickle

import pytest

from abstractcore import (
    AuthenticationError,
    BackendNotInstalledError,
    ConfigurationError,
    Message,
    ProviderError,
    RetryConfig,
    TextPart,
    Timeout,
    create_llm,
)
from abstractcore.core.errors import ServerError


def test_unknown_provider_lists_valid_names_and_closest_match() -> None:
    with pytest.raises(ConfigurationError) as info:
        create_llm("opnai")
    message = str(info.value)
    assert "Did you mean 'openai'?" in message and "Valid providers:" in message
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"temperature": -0.1}, "temperature must be >= 0.0"),
        ({"temperature": "hot"}, "temperature must be a number"),
        ({"max_tokens": 0}, "max_tokens must be > 0"),
        ({"max_tokens": 2.5}, "max_tokens must be an integer"),
        ({"top_p": 1.5}, "top_p must be"),
        ({"stop": 3}, "stop must be a string or a list of strings"),
        ({"timeout": -1}, "timeout must be > 0"),
        ({"temprature": 0.5}, "Did you mean 'temperature'?"),
        ({"base_url": "not a url"}, "base_url must look like"),
        ({"base_url": "ftp://host/v1"}, "base_url must look like"),
        ({"base_url": "http://host:99999/v1"}, "base_url must look like"),
        ({"retry_config": {"max_attempts": 3}}, "retry_config must be a RetryConfig"),
    ],
)
def test_invalid_configuration_is_rejected(config: dict[str, object], fragment: str) -> None:
    config.setdefault("base_url", "http://127.0.0.1:9/v1")
    with pytest.raises(ConfigurationError) as info:
        create_llm("openai", model="m", **config)
    assert fragment in str(info.value)


def test_invalid_call_parameters_raise_before_any_request() -> None:
    llm = create_llm("openai", model="m", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(ConfigurationError, match="max_tokens must be > 0"):
        llm.generate("hi", max_tokens=-5)
    with pytest.raises(ConfigurationError, match="unknown keyword argument 'maxtokens'"):
        llm.generate("hi", maxtokens=5)
    with pytest.raises(ConfigurationError, match="give a prompt or messages"):
        llm.generate()
    with pytest.raises(ConfigurationError, match="role"):
        llm.generate(messages=[{"content": "no role"}])


def test_retry_config_validation() -> None:
    with pytest.raises(ConfigurationError):
        RetryConfig(max_attempts=0)
    config = RetryConfig(initial_delay=0.5, max_delay=8, jitter=False)
    assert [config.delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert config.delay(1, retry_after=3.0) == 3.0
    assert config.delay(1, retry_after=120.0) == 0.5  # above the 60 s cap: backoff instead
    assert all(0 <= RetryConfig().delay(3) <= 2.0 for _ in range(50))


def test_timeout_forms() -> None:
    assert Timeout.of(30) == Timeout(connect=10.0, read=30.0, total=30.0)
    assert Timeout.of(None) == Timeout(None, None, None)
    custom = Timeout(connect=1, read=2, total=3)
    assert Timeout.of(custom) is custom
    with pytest.raises(ConfigurationError):
        Timeout(connect=0)


def test_openai_needs_a_key_only_for_api_openai_com(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        create_llm("openai", model="gpt-4o-mini")
    llm = create_llm("openai", model="local", base_url="http://127.0.0.1:8080/v1")
    assert llm.provider.base_url == "http://127.0.0.1:8080/v1"


def test_openai_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-secret-value")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:1234/v1/")
    llm = create_llm("openai")
    assert llm.model == "gpt-4o-mini"
    assert llm.provider.base_url == "http://127.0.0.1:1234/v1"
    assert "sk-env-secret-value" not in repr(llm) + repr(llm.provider) + str(vars(llm.provider))


def test_api_key_never_in_repr() -> None:
    llm = create_llm("openai", model="m", api_key="sk-super-secret-0001")
    assert "sk-super-secret-0001" not in repr(llm)
    assert "sk-super-secret-0001" not in repr(llm.provider)
    assert "sk-super-secret-0001" not in repr(llm.provider._http)


def test_errors_pickle_with_their_fields() -> None:
    err = ServerError(
        "boom", provider="openai", model="m", status_code=503, request_id="r1", retry_after=2.0, body="{}"
    )
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is ServerError and isinstance(copy, ProviderError)
    assert (copy.status_code, copy.request_id, copy.retry_after, str(copy)) == (503, "r1", 2.0, "boom")
    assert isinstance(pickle.loads(pickle.dumps(AuthenticationError("x"))), AuthenticationError)
    missing = BackendNotInstalledError("pip install x")
    assert isinstance(missing, ImportError) and isinstance(missing, ConfigurationError)


def test_abstractllm_alias_runs_seed_imports() -> None:
    from abstractllm import create_llm as alias
    from abstractllm.core.retry import RetryConfig as AliasRetry

    assert alias is create_llm and AliasRetry is RetryConfig


def test_messages_from_dicts_accept_both_tool_call_shapes_and_reject_bad_ones() -> None:

    openai_shape = Message.from_dict(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}
            ],
        }
    )
    flat_shape = Message.from_dict(
        {"role": "assistant", "tool_calls": [{"id": "c1", "name": "f", "arguments": {"x": 1}}]}
    )
    assert openai_shape.tool_calls == flat_shape.tool_calls
    assert openai_shape.tool_calls[0].arguments == {"x": 1} and openai_shape.content == ""
    with pytest.raises(ConfigurationError, match="not JSON"):
        Message.from_dict(
            {
                "role": "assistant",
                "tool_calls": [{"id": "c2", "function": {"name": "f", "arguments": "{oops"}}],
            }
        )
    with pytest.raises(ConfigurationError, match="role must be one of"):
        Message.from_dict({"role": "robot", "content": "hi"})


def test_a_messages_cache_control_marks_its_last_part_and_a_parts_its_own() -> None:
    control = {"type": "ephemeral"}
    message = Message.from_dict({"role": "user", "content": "Long document.", "cache_control": control})
    assert message.content == [TextPart("Long document.", cache_control=control)]
    parts = Message.from_dict(
        {"role": "user", "content": [{"type": "text", "text": "a", "cache_control": control}, "b"]}
    ).content
    assert parts == [TextPart("a", cache_control=control), TextPart("b")]
    assert repr(TextPart("a", cache_control=control)) == "TextPart(text='a')"
