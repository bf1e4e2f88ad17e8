"""Typed reads of a JSON request body, and the shape a chat request parses into.

``Fields(data, "messages[0]")`` wraps one JSON object; ``fields.string("role")`` and friends
return the value or raise ``FieldError`` with the field's path (``messages[0].role``), which the
server answers as a 400 naming the field (its message's start and OpenAI's ``param``).
``ParsedCall`` is what the server side of each wire module reads a chat request into;
``check_tools`` / ``checked_tool`` are the checks both formats make of the tools offered.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from abstractcore.core.types import Message, ToolSpec
from abstractcore.features.tools.schema import TOOL_CHOICES, normalise_tool_choice, tool_definition_problem

__all__ = [
    "answer_format",
    "FieldError",
    "Fields",
    "JsonFormat",
    "ParsedCall",
    "check_tools",
    "checked_tool",
    "parse_json_object",
]


class FieldError(ValueError):
    """A request body field that is wrong or missing: ``param`` is its path (None: the whole body)."""

    def __init__(self, param: str | None, message: str) -> None:
        super().__init__(f"{param}: {message}" if param else message)
        self.param = param
        self.detail = message


@dataclass(frozen=True, slots=True)
class JsonFormat:
    """The JSON answer a request asks for: its schema and a name for it."""

    schema: dict[str, Any]
    name: str = "json_answer"


@dataclass(slots=True)
class ParsedCall:
    """One chat request as a server reads it: the model's name as the client sent it, and the
    call's arguments (only the generation parameters the format defines)."""

    model: str
    messages: list[Message]
    params: dict[str, Any] = field(default_factory=dict)
    tools: list[ToolSpec] = field(default_factory=list)
    tool_choice: str | None = None
    stream: bool = False
    answer: JsonFormat | None = None


_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    list: "an array",
    dict: "an object",
    type(None): "null",
}


def _type_name(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def parse_json_object(body: bytes) -> Fields:
    """The request body as ``Fields`` (400 when it is not a JSON object)."""
    if not body:
        raise FieldError(None, "The request body is empty; send a JSON object.")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FieldError(None, f"The request body is not valid JSON: {exc}.") from None
    if not isinstance(data, dict):
        raise FieldError(None, f"The request body must be a JSON object; got {_type_name(data)}.")
    return Fields(data, "")


class Fields:
    """One JSON object of a request and where it sits in the body (for error messages)."""

    __slots__ = ("data", "where")

    def __init__(self, data: Mapping[str, Any], where: str) -> None:
        self.data = data
        self.where = where

    def path(self, key: str | int) -> str:
        """The full path of ``key`` inside this object (``messages[0].content``)."""
        if isinstance(key, int):
            return f"{self.where}[{key}]"
        return f"{self.where}.{key}" if self.where else key

    def has(self, key: str) -> bool:
        """True when ``key`` is present and not null."""
        return self.data.get(key) is not None

    def _get(self, key: str, required: bool) -> Any:
        value = self.data.get(key)
        if value is None and required:
            raise FieldError(self.path(key), "field required")
        return value

    def _wrong(self, key: str, expected: str, value: Any) -> FieldError:
        return FieldError(self.path(key), f"expected {expected}, got {_type_name(value)}")

    def string(self, key: str, *, required: bool = False, nonempty: bool = False) -> str | None:
        """A string field."""
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self._wrong(key, "a string", value)
        if nonempty and not value:
            raise FieldError(self.path(key), "must not be empty")
        return value

    def boolean(self, key: str) -> bool | None:
        """A boolean field."""
        value = self._get(key, False)
        if value is not None and not isinstance(value, bool):
            raise self._wrong(key, "a boolean", value)
        return value

    def integer(self, key: str, *, required: bool = False, minimum: int | None = None) -> int | None:
        """An integer field, at least ``minimum``."""
        value = self._get(key, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise self._wrong(key, "an integer", value)
        if minimum is not None and value < minimum:
            raise FieldError(self.path(key), f"must be >= {minimum}; got {value}")
        return value

    def number(self, key: str, low: float, high: float) -> float | None:
        """A number field in ``[low, high]``."""
        value = self._get(key, False)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise self._wrong(key, "a number", value)
        if not low <= value <= high:
            raise FieldError(self.path(key), f"must be between {low:g} and {high:g}; got {value:g}")
        return float(value)

    def array(self, key: str, *, required: bool = False, nonempty: bool = False) -> list[Any] | None:
        """An array field."""
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, list):
            raise self._wrong(key, "an array", value)
        if nonempty and not value:
            raise FieldError(self.path(key), "must not be empty")
        return value

    def object(self, key: str, *, required: bool = False) -> Fields | None:
        """An object field, as ``Fields``."""
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self._wrong(key, "an object", value)
        return Fields(value, self.path(key))

    def objects(self, key: str, *, required: bool = False, nonempty: bool = False) -> list[Fields]:
        """An array of objects, each as ``Fields``."""
        items = self.array(key, required=required, nonempty=nonempty) or []
        out: list[Fields] = []
        for index, value in enumerate(items):
            where = f"{self.path(key)}[{index}]"
            if not isinstance(value, dict):
                raise FieldError(where, f"expected an object, got {_type_name(value)}")
            out.append(Fields(value, where))
        return out

    def strings(self, key: str) -> list[str] | None:
        """A string or an array of strings, as a list (``stop`` and ``stop_sequences``)."""
        value = self._get(key, False)
        if value is None:
            return None
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._wrong(key, "a string or an array of strings", value)
        return list(value)

    def refuse(self, key: str, allowed: Any, why: str) -> None:
        """400 when ``key`` is present with a value other than ``allowed`` (or null)."""
        value = self.data.get(key)
        if value is not None and value != allowed:
            raise FieldError(self.path(key), why)


def checked_tool(spec: ToolSpec, *, name_param: str, schema_param: str) -> ToolSpec:
    """``spec``, or a ``FieldError`` for what OpenAI and Anthropic refuse in a definition: a name
    outside ``[a-zA-Z0-9_-]{1,64}``, an unknown JSON Schema type, ``required`` naming an
    undeclared property (``tool_definition_problem``)."""
    problem = tool_definition_problem(spec.name, spec.parameters)
    if problem is None:
        return spec
    where, what = problem
    raise FieldError(name_param if where == "name" else schema_param, what)


def check_tools(tools: list[ToolSpec], choice: Any, *, tools_param: str, choice_param: str) -> str | None:
    """``choice`` normalised ("auto", "none", "required" or a tool's name) after checking that the
    tool names are unique and not reserved words; a ``FieldError`` otherwise."""
    seen: set[str] = set()
    for index, spec in enumerate(tools):
        if spec.name in seen:
            raise FieldError(f"{tools_param}[{index}].name", f"the tool name {spec.name!r} is repeated")
        if spec.name in (*TOOL_CHOICES, "any"):
            raise FieldError(f"{tools_param}[{index}].name", f"{spec.name!r} is a reserved word")
        seen.add(spec.name)
    if choice is None:
        return None
    try:
        return normalise_tool_choice(choice, tools)
    except ValueError as exc:
        raise FieldError(choice_param, str(exc)) from None


def answer_format(form: Fields | None, schema_of: Callable[[Fields], JsonFormat]) -> JsonFormat | None:
    """An answer-format field (``{"type": "text" | "json_object" | "json_schema", ...}``, as Chat
    Completions' ``response_format`` and the Responses API's ``text.format`` have it) as a
    ``JsonFormat``: None for text, any JSON object, or the schema ``schema_of`` reads."""
    if form is None:
        return None
    kind = form.string("type", required=True)
    if kind == "text":
        return None
    if kind == "json_object":
        return JsonFormat({"type": "object"}, "json_object")
    if kind != "json_schema":
        raise FieldError(form.path("type"), "must be 'text', 'json_object' or 'json_schema'")
    return schema_of(form)
