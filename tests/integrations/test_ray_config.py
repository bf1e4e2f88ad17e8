"""``LLMProcessorConfig``: plain data that pickles to the actors, secrets masked, bad values refused."""

from __future__ import annotations

import pickle

import pytest
from pydantic import BaseModel

from abstractcore import ConfigurationError
from abstractcore.integrations.ray import LLMProcessorConfig, build_llm_processor


class Person(BaseModel):
    name: str
    age: int


def _router(key: str) -> LLMProcessorConfig:
    return LLMProcessorConfig(
        provider="router",
        llm_kwargs={
            "models": [
                {"provider": "openai", "model": "gpt-4o-mini", "api_key": key},
                {"provider": "openai-compatible", "base_url": "http://h:1/v1", "headers": {"X-Key": key}},
            ]
        },
        generate_kwargs={"max_tokens": 16},
        response_model=Person,
    )


def test_the_config_pickles_whole_and_its_repr_masks_every_secret() -> None:
    config = _router("sk-live-123")
    assert pickle.loads(pickle.dumps(config)) == config  # what Ray ships to each actor
    for text in (repr(config), str(config), repr(build_llm_processor(config))):
        assert "sk-live-123" not in text and "***" in text
        assert "'max_tokens': 16" in text and "gpt-4o-mini" in text  # the rest stays readable


@pytest.mark.parametrize(
    "bad",
    [
        {"concurrency": 0},
        {"concurrency": (3, 2)},
        {"batch_size": 0},
        {"max_in_flight": 0},
        {"input_column": " "},
        {"generate_kwargs": {"stream": True}},
        {"response_model": dict},
        {"unknown": 1},
    ],
)
def test_bad_options_are_configuration_errors(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError, match="LLMProcessorConfig"):
        LLMProcessorConfig(provider="openai", **bad)


def test_a_bad_llm_config_fails_on_the_driver_before_any_actor_starts() -> None:
    config = LLMProcessorConfig(
        provider="openai-compatible", llm_kwargs={"base_url": "http://h/v1", "tempo": 1}
    )
    with pytest.raises(ConfigurationError, match="tempo"):
        build_llm_processor(config)
