"""Tools from functions, pydantic models, dicts or ``ToolSpec``s, through pydantic.

A function's signature becomes a pydantic model of its arguments: type hints
(postponed annotations resolved), defaults, ``Annotated[..., Field(...)]``,
nested models, enums and ``Optional`` are kept, and each argument's
description comes from the docstring (Google, NumPy, Sphinx/reST or Epydoc
style, read by ``docstring_parser``). The arguments a model sends are
validated and coerced by that model before the function runs
(``Tool.validate``); invalid arguments raise ``ToolArgumentsError`` with
pydantic's errors, which the tool loop hands back to the model.

- ``@tool`` / ``@tool(name=..., description=...)`` mark a function (it stays
  callable as before);
- a pydantic model class is a tool whose arguments are that model (it has no
  function: calling it yields the validated instance);
- an OpenAI-style dict (``{"type": "function", "function": {...}}`` or
  ``{"name", "description", "parameters"}``) or a ``ToolSpec`` is a schema
  only (no validation, no function);
- a tool source (``ToolSource``: an object with ``__abstractcore_tools__()``,
  such as an ``MCPTools``) stands for the tools it holds now; ``to_tools``
  expands it in place.
"""

from __future__ import annotations

import inspect
import re
import typing
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from abstractcore.core.errors import ToolCallError
from abstractcore.core.types import ToolSpec
from abstractcore.features.tools.sources import expand_sources, has_sources

__all__ = [
    "TOOL_CHOICES",
    "TOOL_NAME",
    "Tool",
    "ToolArgumentsError",
    "normalise_tool_choice",
    "tool_definition_problem",
    "to_tool",
    "to_tool_spec",
    "to_tool_specs",
    "to_tools",
    "tool",
]

F = TypeVar("F", bound=Callable[..., Any])

#: The tool choices every provider understands (besides the name of one tool).
TOOL_CHOICES = ("auto", "none", "required")
#: The tool names OpenAI's and Anthropic's APIs accept (they answer 400 to others).
TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_ATTRIBUTE = "__abstractcore_tool__"
_BUILT: weakref.WeakKeyDictionary[Any, Tool] = weakref.WeakKeyDictionary()


class ToolArgumentsError(ToolCallError):
    """The arguments a model sent for a tool do not validate; ``errors`` are pydantic's."""

    errors: list[dict[str, Any]]

    def __init__(self, message: str, *, errors: list[dict[str, Any]] | None = None, **fields: Any) -> None:
        super().__init__(message, errors=errors or [], **fields)


@dataclass(frozen=True)
class Tool:
    """A tool: its spec (what the model sees), the function that runs it, the model of its arguments."""

    spec: ToolSpec
    function: Callable[..., Any] | None = field(default=None, compare=False)
    arguments: Any = field(default=None, compare=False, repr=False)  # a pydantic model class

    @property
    def name(self) -> str:
        """The tool's name."""
        return self.spec.name

    def validate(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """The arguments validated and coerced (keyword arguments for the function)."""
        if self.arguments is None:
            return dict(arguments)
        from pydantic import ValidationError

        try:
            model = self.arguments.model_validate(dict(arguments))
        except ValidationError as exc:
            errors: list[dict[str, Any]] = [
                dict(e) for e in exc.errors(include_url=False, include_context=False)
            ]
            lines = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(arguments)'}: {e['msg']}" for e in errors[:10]
            )
            raise ToolArgumentsError(
                f"Invalid arguments for tool {self.name!r}: {lines}", errors=errors
            ) from None
        if self.function is None:
            return {"value": model}
        return {name: getattr(model, name) for name in type(model).model_fields}


def _docstring(fn: Any) -> tuple[str, dict[str, str]]:
    """(the description, argument name -> its description) from the docstring, any common style."""
    import docstring_parser

    text = inspect.getdoc(fn) or ""
    if not text:
        return "", {}
    parsed = docstring_parser.parse(text)
    description = "\n\n".join(p for p in (parsed.short_description, parsed.long_description) if p)
    return description.strip(), {p.arg_name: p.description or "" for p in parsed.params}


def _has_description(annotation: Any) -> bool:
    if typing.get_origin(annotation) is not typing.Annotated:
        return False
    return any(getattr(meta, "description", None) for meta in typing.get_args(annotation)[1:])


def _from_function(fn: Callable[..., Any], name: str | None, description: str | None) -> Tool:
    from pydantic import ConfigDict, Field, create_model

    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception as exc:
        raise ToolCallError(
            f"The type hints of tool {getattr(fn, '__name__', fn)!r} cannot be resolved: {exc}"
        ) from None
    doc, params = _docstring(fn)
    fields: dict[str, Any] = {}
    for arg, param in inspect.signature(fn).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        annotation = hints.get(arg, Any)
        default = ... if param.default is inspect.Parameter.empty else param.default
        text = params.get(arg)
        if text and not _has_description(annotation):
            fields[arg] = (annotation, Field(default, description=text))
        else:
            fields[arg] = (annotation, default)
    tool_name = name or fn.__name__
    try:
        model = create_model(f"{tool_name}_arguments", __config__=ConfigDict(extra="forbid"), **fields)
        schema = _without_titles(model.model_json_schema())
    except Exception as exc:
        raise ToolCallError(f"Tool {tool_name!r} has arguments pydantic cannot describe: {exc}") from None
    return Tool(ToolSpec(tool_name, description if description is not None else doc, schema), fn, model)


def _without_titles(schema: Any) -> Any:
    """The schema without pydantic's generated ``title``s (noise to a model; property names stay)."""
    if isinstance(schema, list):
        return [_without_titles(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            out[key] = {name: _without_titles(child) for name, child in value.items()}
        else:
            out[key] = _without_titles(value)
    return out


def _from_model(model: Any, name: str | None, description: str | None) -> Tool:
    schema = _without_titles(model.model_json_schema())
    doc = (inspect.getdoc(model) or "") if model.__doc__ else ""
    return Tool(
        ToolSpec(name or model.__name__, description if description is not None else doc, schema), None, model
    )


def _from_mapping(value: Mapping[str, Any]) -> Tool:
    data = value.get("function", value) if value.get("type", "function") == "function" else value
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise ToolCallError(f"A tool dict needs a 'name'; got {dict(value)!r}.")
    parameters = data.get("parameters") or data.get("input_schema") or {"type": "object", "properties": {}}
    return Tool(
        _checked(ToolSpec(name=name, description=str(data.get("description", "")), parameters=parameters))
    )


def _checked(spec: ToolSpec) -> ToolSpec:
    """``spec``, or ``ConfigurationError`` for a definition the providers' APIs would refuse."""
    problem = tool_definition_problem(spec.name, spec.parameters)
    if problem is None:
        return spec
    from abstractcore.core.errors import ConfigurationError

    where, what = problem
    raise ConfigurationError(f"Tool {spec.name!r}: {what}" if where == "parameters" else f"Tool name {what}")


#: JSON Schema's type names.
_JSON_TYPES = ("string", "number", "integer", "boolean", "object", "array", "null")
#: Keywords whose value is one subschema, a list of them, or a map of names to them.
_SUB_ONE = ("items", "additionalItems", "additionalProperties", "contains", "not", "if", "then", "else")
_SUB_LIST = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUB_MAP = ("properties", "patternProperties", "$defs", "definitions")
#: Keywords beside which ``required`` may name properties declared elsewhere.
_OPEN_ENDED = ("patternProperties", "allOf", "anyOf", "oneOf", "$ref", "if", "dependentSchemas")


def tool_definition_problem(name: Any, parameters: Any) -> tuple[str, str] | None:
    """What OpenAI's and Anthropic's APIs would refuse in a tool's definition, or None.

    Returns ``("name", why)`` for a name outside ``[a-zA-Z0-9_-]{1,64}``, or
    ``("parameters", why)`` for a schema with an unknown ``type``, a
    ``required`` naming a property that is not declared, or a keyword whose
    value has the wrong shape (``why`` names where in the schema).
    """
    if not isinstance(name, str) or not TOOL_NAME.fullmatch(name):
        return "name", f"{name!r} is not allowed: use 1 to 64 letters, digits, '_' or '-'."
    if not isinstance(parameters, Mapping):
        return "parameters", f"the parameters must be a JSON Schema object; got {type(parameters).__name__}."
    found = _schema_problem(parameters, "")
    return None if found is None else ("parameters", found)


def _at(path: str) -> str:
    return f"at {path}" if path else "at the top level"


def _schema_problem(schema: Any, path: str) -> str | None:
    if isinstance(schema, bool):
        return None
    if not isinstance(schema, Mapping):
        return f"invalid schema {_at(path)}: expected an object, got {type(schema).__name__}."
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        bad = [k for k in kinds if k not in _JSON_TYPES]
        if bad or not kinds:
            return (
                f"invalid schema {_at(_join(path, 'type'))}: {bad[0] if bad else kind!r} is not a JSON "
                f"Schema type; use one of {', '.join(_JSON_TYPES)}."
            )
    for key in _SUB_MAP:
        value = schema.get(key)
        if value is None:
            continue
        if not isinstance(value, Mapping):
            return f"invalid schema {_at(_join(path, key))}: expected an object of schemas."
        for child, sub in value.items():
            found = _schema_problem(sub, _join(path, key, str(child)))
            if found:
                return found
    for key in _SUB_LIST:
        value = schema.get(key)
        if value is None:
            continue
        if not isinstance(value, list) or not value:
            return f"invalid schema {_at(_join(path, key))}: expected a non-empty array of schemas."
        for index, sub in enumerate(value):
            found = _schema_problem(sub, f"{_join(path, key)}[{index}]")
            if found:
                return found
    for key in _SUB_ONE:
        value = schema.get(key)
        if value is None:
            continue
        items = value if key == "items" and isinstance(value, list) else [value]  # draft-07 tuples
        for sub in items:
            found = _schema_problem(sub, _join(path, key))
            if found:
                return found
    return _required_problem(schema, path)


def _required_problem(schema: Mapping[str, Any], path: str) -> str | None:
    required = schema.get("required")
    if required is None:
        return None
    where = _at(_join(path, "required"))
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        return f"invalid schema {where}: expected an array of property names."
    if any(key in schema for key in _OPEN_ENDED):
        return None
    declared = schema.get("properties") or {}
    missing = [r for r in required if r not in declared]
    if missing:
        return (
            f"invalid schema {where}: {missing[0]!r} is required but not declared in properties; "
            "declare it or remove it from required."
        )
    return None


def _join(path: str, *keys: str) -> str:
    return ".".join([path, *keys] if path else keys)


def _is_model_class(value: Any) -> bool:
    return isinstance(value, type) and callable(getattr(value, "model_json_schema", None))


@overload
def tool(fn: F, /) -> F: ...


@overload
def tool(*, name: str | None = None, description: str | None = None) -> Callable[[F], F]: ...


def tool(fn: Any = None, /, *, name: str | None = None, description: str | None = None) -> Any:
    """Mark a function as a tool: ``@tool`` or ``@tool(name=..., description=...)``.

    Its signature and docstring become the schema the model sees; the function
    itself is returned unchanged (still callable as before).
    """

    def mark(target: F) -> F:
        built = (
            _from_model(target, name, description)
            if _is_model_class(target)
            else _from_function(target, name, description)
        )
        setattr(target, _ATTRIBUTE, built)
        return target

    return mark(fn) if fn is not None else mark


def to_tool(value: Any) -> Tool:
    """A ``Tool`` from a function, a pydantic model class, an OpenAI-style dict or a ``ToolSpec``.

    Built once per function or model class and cached (building the pydantic
    model of a signature takes ~1-3 ms; a tool loop passes the same tools
    every turn).
    """
    if isinstance(value, Tool):
        return value
    if isinstance(value, ToolSpec):
        return Tool(_checked(value))
    if isinstance(value, Mapping):
        return _from_mapping(value)
    marked = getattr(value, _ATTRIBUTE, None)
    if isinstance(marked, Tool):
        return marked
    try:
        cached = _BUILT.get(value)
    except TypeError:  # not weak-referenceable: build every time
        cached = None
    if cached is not None:
        return cached
    if _is_model_class(value):
        built = _from_model(value, None, None)
    elif callable(value):
        built = _from_function(value, None, None)
    else:
        built = None
    if built is not None:
        try:
            _BUILT[value] = built
        except TypeError:
            pass
        return built
    raise ToolCallError(
        "A tool must be a function, a pydantic model, a ToolSpec or a dict with a 'name'; "
        f"got {type(value).__name__}."
    )


def to_tools(values: Iterable[Any] | None) -> list[Tool]:
    """``to_tool`` over a list (tool sources expanded); duplicate and reserved names are an error."""
    given = list(values or [])
    tools = [to_tool(v) for v in expand_sources(given)]
    names = [t.name for t in tools]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        hint = (
            " Two tool sources offer the same name: give one a prefix (MCPTools.stdio(..., prefix='docs_'))."
            if has_sources(given)
            else ""
        )
        raise ToolCallError(f"Tool names must be unique; repeated: {', '.join(duplicates)}.{hint}")
    reserved = sorted(set(names) & {*TOOL_CHOICES, "any"})
    if reserved:
        raise ToolCallError(f"Tool names {reserved} are reserved words of tool_choice; rename the tool.")
    return tools


def to_tool_spec(value: Any) -> ToolSpec:
    """The ``ToolSpec`` (what the model sees) of anything ``to_tool`` takes."""
    return to_tool(value).spec


def to_tool_specs(values: Iterable[Any] | None) -> list[ToolSpec]:
    """``to_tool_spec`` over a list (names checked as by ``to_tools``)."""
    return [t.spec for t in to_tools(values)]


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
    name: Any = _INVALID
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
