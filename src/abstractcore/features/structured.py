"""Structured output: a pydantic model's schema in, a validated instance out."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from abstractcore.core.errors import ConfigurationError, StructuredOutputError

__all__ = ["instruction_for", "parse_structured", "schema_for"]

T = TypeVar("T")

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def schema_for(response_model: type[Any]) -> dict[str, Any]:
    """The JSON schema of a pydantic model class."""
    schema = getattr(response_model, "model_json_schema", None)
    if not callable(schema):
        raise ConfigurationError(
            f"response_model must be a pydantic BaseModel subclass; got {response_model!r}."
        )
    result: dict[str, Any] = schema()
    return result


def instruction_for(schema: dict[str, Any]) -> str:
    """The system instruction that asks for JSON matching ``schema``."""
    return (
        "Answer with one JSON object only, no prose and no code fence, matching this JSON "
        f"schema:\n{json.dumps(schema, separators=(',', ':'))}"
    )


def _candidates(text: str) -> list[str]:
    found = [text.strip()]
    found += [m.strip() for m in _FENCE.findall(text)]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        found.append(text[start : end + 1])
    return found


def parse_structured(response_model: type[T], text: str, *, finish_reason: str | None = None) -> T:
    """Validate the model's answer into ``response_model`` or raise ``StructuredOutputError``.

    An answer cut by ``max_tokens`` (``finish_reason == "length"``) is reported
    as cut, with the advice to raise ``max_tokens``.
    """
    from pydantic import ValidationError

    errors: list[Any] = []
    for candidate in _candidates(text):
        try:
            return response_model.model_validate_json(candidate)  # type: ignore[attr-defined,no-any-return]
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
    name = getattr(response_model, "__name__", "object")
    if finish_reason == "length":
        message = (
            f"The model's answer was cut by max_tokens before the {name} was complete "
            f"({len(text)} characters); raise max_tokens."
        )
    else:
        message = (
            f"The model's answer is not a valid {name}: {errors[:3]!r}. Try a larger "
            "model, a lower temperature or a clearer prompt."
        )
    raise StructuredOutputError(message, raw=text, validation_errors=errors, finish_reason=finish_reason)
