"""``LLMProcessorConfig``: what a Ray Data stage needs to build one LLM per actor, as plain data.

The config is a pydantic model of plain values (the provider's name, the model, the keyword
arguments of ``create_llm``, the generation parameters), so Ray pickles it to every actor and
each actor builds its own LLM there: no connection, no event loop and no model weights cross
the wire. A router is ``provider="router"`` with ``llm_kwargs={"models": [...]}``, each
deployment a ``{"provider": ..., "base_url": ..., "model": ...}`` mapping.

API keys: best read by each worker from its environment (``OPENAI_API_KEY`` ...). One given
in ``llm_kwargs`` travels in the pickle (Ray's object store, not its logs) and is masked in
the config's ``repr`` / ``str``, as is anything under a key that names a secret (``api_key``,
``headers``, ``token``, ``password`` ...), at any depth (a router's deployments included).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from abstractcore.core.errors import ConfigurationError
from abstractcore.core.secrets import MASK

__all__ = ["OUTPUT_COLUMNS", "LLMProcessorConfig"]

#: The columns the stage adds to every row (``parsed`` too, with a ``response_model``).
OUTPUT_COLUMNS = (
    "content",
    "finish_reason",
    "input_tokens",
    "output_tokens",
    "cost",
    "model",
    "deployment",
    "error_type",
    "error_message",
)

#: A key naming a secret: ``api_key``, ``token``, ``access_token``, ``headers``, ``password`` ...
#: (``max_tokens`` is not one).
_SECRET_KEY = re.compile(r"(^|_)(key|token|secret|password|passwd|authorization|headers|credentials?)$", re.I)


def masked(value: Any) -> Any:
    """``value`` with whatever sits under a secret-naming key replaced by ``***``, recursively."""
    if isinstance(value, Mapping):
        return {k: MASK if _SECRET_KEY.search(str(k)) else masked(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(masked(v) for v in value)
    return value


class LLMProcessorConfig(BaseModel):
    """How to build the LLM of each Ray actor and how to run a block of rows through it.

    - ``provider``, ``model``, ``llm_kwargs``: ``create_llm(provider, model, **llm_kwargs)``,
      run once in each actor (``provider="router"`` with ``llm_kwargs={"models": [...],
      "strategy": ...}`` for a router over a fleet of endpoints);
    - ``generate_kwargs``: parameters of every call (``max_tokens``, ``temperature``,
      ``system_prompt``, ...);
    - ``response_model``: a pydantic model; its validated answer fills the ``parsed`` column;
    - ``input_column``: each row's prompt (a string) or conversation (a list of
      ``{"role": ..., "content": ...}`` messages);
    - ``concurrency``: actors (an int, or ``(min, max)`` for an autoscaling pool);
      ``batch_size``: rows handed to an actor at a time; ``max_in_flight``: calls each actor
      has in flight at once (``abatch``'s ``concurrency``); ``num_cpus``: reserved per actor;
    - ``fail_on_error``: a failed row stops the job (default: the row carries its error).
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, extra="forbid")

    provider: str
    model: str | None = None
    llm_kwargs: dict[str, Any] = Field(default_factory=dict)
    generate_kwargs: dict[str, Any] = Field(default_factory=dict)
    response_model: type[BaseModel] | None = None
    input_column: str = "prompt"
    concurrency: int | tuple[int, int] = 1
    batch_size: int = 32
    max_in_flight: int = 8
    num_cpus: float = 1.0
    fail_on_error: bool = False

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValueError as error:  # pydantic's ValidationError: our typed error, no values shown
            raise ConfigurationError(f"LLMProcessorConfig: {_summary(error)}") from None

    @field_validator("provider", "input_column")
    @classmethod
    def _named(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must be a non-empty string")
        return value

    @field_validator("batch_size", "max_in_flight")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be >= 1")
        return value

    @field_validator("num_cpus")
    @classmethod
    def _cpus(cls, value: float) -> float:
        if value < 0:
            raise ValueError("must be >= 0")
        return value

    @field_validator("concurrency")
    @classmethod
    def _actors(cls, value: int | tuple[int, int]) -> int | tuple[int, int]:
        low, high = (value, value) if isinstance(value, int) else value
        if low < 1 or high < low:
            raise ValueError("must be an int >= 1 or a (min, max) pair with 1 <= min <= max")
        return value

    @model_validator(mode="after")
    def _no_stream(self) -> LLMProcessorConfig:
        for key in ("stream", "prompt", "messages", "response_model"):
            if key in self.generate_kwargs:
                raise ValueError(f"generate_kwargs: {key!r} is set by the stage, not per job")
        return self

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, masked(value) if name in ("llm_kwargs", "generate_kwargs") else value

    def build(self) -> Any:
        """The LLM this config describes (what each actor runs once)."""
        from abstractcore import create_llm

        return create_llm(self.provider, self.model, **self.llm_kwargs)


def _summary(error: ValueError) -> str:
    errors: Callable[..., list[dict[str, Any]]] | None = getattr(error, "errors", None)
    if errors is None:
        return str(error)
    parts = []
    for item in errors(include_input=False, include_url=False):
        where = ".".join(str(p) for p in item.get("loc", ())) or "config"
        parts.append(f"{where}: {item.get('msg', 'invalid')}")
    return "; ".join(parts)
