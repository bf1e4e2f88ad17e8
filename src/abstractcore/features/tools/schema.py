"""Tool specs from plain functions, dicts or ``ToolSpec`` objects."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from abstractcore.core.errors import ToolCallError
from abstractcore.core.types import ToolSpec

__all__ = ["TOOL_CHOICES", "normalise_tool_choice", "tool", "to_tool_spec", "to_tool_specs"]

F = TypeVar("F", bound=Callable[..., Any])

_JSON_TYPES: dict[Any, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    list: "array",
    tuple: "array",
    dict: "object",
}


def _json_type(annotation: Any) -> dict[str, Any]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _json_type(options[0]) if len(options) == 1 else {}
    if origin is typing.Literal:
        return {"enum": list(typing.get_args(annotation))}
    if origin in (list, tuple, set, frozenset, Iterable):
        args = typing.get_args(annotation)
        return {"type": "array", "items": _json_type(args[0])} if args else {"type": "array"}
    if origin in (dict, Mapping):
        return {"type": "object"}
    base = origin or annotation
    if base in _JSON_TYPES:
        return {"type": _JSON_TYPES[base]}
    schema = getattr(annotation, "model_json_schema", None)
    if callable(schema):
        result: dict[str, Any] = schema()
        return result
    return {}


def _spec_from_callable(fn: Callable[..., Any]) -> ToolSpec:
    try:
        hints = typing.get_type_hints(fn)
    except Exception:
        hints = {}
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, param in inspect.signature(fn).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        properties[name] = _json_type(hints.get(name, Any))
        if param.default is inspect.Parameter.empty:
            required.append(name)
    doc = inspect.getdoc(fn) or ""
    return ToolSpec(
        name=fn.__name__,
        description=doc.split("\n\n")[0].strip(),
        parameters={"type": "object", "properties": properties, "required": required},
    )


def tool(fn: F) -> F:
    """Mark a function as a tool; its signature and docstring become the spec."""
    fn.__abstractcore_tool__ = _spec_from_callable(fn)  # type: ignore[attr-defined]
    return fn


def to_tool_spec(value: Any) -> ToolSpec:
    """A ``ToolSpec`` from a ``ToolSpec``, an OpenAI-style dict or a function."""
    if isinstance(value, ToolSpec):
        return value
    if isinstance(value, Mapping):
        data = value.get("function", value) if value.get("type", "function") == "function" else value
        name = data.get("name")
        if not isinstance(name, str) or not name:
            raise ToolCallError(f"A tool dict needs a 'name'; got {dict(value)!r}.")
        return ToolSpec(
            name=name,
            description=str(data.get("description", "")),
            parameters=data.get("parameters")
            or data.get("input_schema")
            or {"type": "object", "properties": {}},
        )
    if callable(value):
        spec = getattr(value, "__abstractcore_tool__", None)
        return spec if isinstance(spec, ToolSpec) else _spec_from_callable(value)
    raise ToolCallError(
        f"A tool must be a function, a ToolSpec or a dict with a 'name'; got {type(value).__name__}."
    )


def to_tool_specs(values: Iterable[Any] | None) -> list[ToolSpec]:
    """``to_tool_spec`` over a list; duplicate names are an error."""
    specs = [to_tool_spec(v) for v in values or []]
    names = [s.name for s in specs]
    reserved = sorted(set(names) & {*TOOL_CHOICES, "any"})
    if reserved:
        raise ToolCallError(f"Tool names {reserved} are reserved words of tool_choice; rename the tool.")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ToolCallError(f"Tool names must be unique; repeated: {', '.join(duplicates)}.")
    return specs


#: The tool choices every provider understands (besides the name of one tool).
TOOL_CHOICES = ("auto", "none", "required")


def normalise_tool_choice(choice: Any, tools: list[ToolSpec]) -> str | None:
    """``tool_choice`` as "auto", "none", "required" or a tool's name, checked against ``tools``.

    Accepted forms: those strings, "any" (Anthropic's spelling of "required"), a
    tool's name, OpenAI's ``{"type": "function", "function": {"name": ...}}`` and
    Anthropic's ``{"type": "auto" | "any" | "tool" | "none", "name": ...}``.
    Anything else raises ``ConfigurationError`` before a request is sent.
    """
    if choice is None:
        return None
    from abstractcore.core.errors import ConfigurationError

    names = [t.name for t in tools]
    name: Any = None
    if isinstance(choice, str):
        if choice in TOOL_CHOICES or choice == "any":
            if not tools and choice in ("required", "any"):
                raise ConfigurationError(f"tool_choice={choice!r} needs tools=[...] to choose from.")
            return "required" if choice == "any" else choice
        name = choice
    elif isinstance(choice, Mapping):
        kind = choice.get("type")
        function = choice.get("function")
        if kind == "function" and isinstance(function, Mapping):
            name = function.get("name")
        elif kind == "tool":
            name = choice.get("name")
        elif kind in ("auto", "none", "any"):
            return normalise_tool_choice(kind, tools)
        else:
            name = _INVALID
    else:
        name = _INVALID
    if name is _INVALID or not isinstance(name, str):
        raise ConfigurationError(
            f"tool_choice must be 'auto', 'none', 'required', a tool's name or "
            f"{{'type': 'function', 'function': {{'name': ...}}}}; got {choice!r}."
        )
    if name not in names:
        offered = ", ".join(repr(n) for n in names) or "none (no tools were given)"
        raise ConfigurationError(
            f"tool_choice names the tool {name!r}, which is not in tools; tools offered: {offered}."
        )
    return name


_INVALID = object()
