"""Structured output: any output type in, a validated value out, re-asked when the model errs.

- ``OutputSpec.of(response_model)`` accepts a pydantic model, a dataclass, a
  TypedDict, ``list[Model]``, ``Literal`` / ``Enum`` and primitives, through
  pydantic's ``TypeAdapter``. A type whose JSON is not an object is wrapped as
  ``{"value": ...}`` where an API needs an object, and unwrapped on the way back.
- ``OutputSpec.strict_schema`` is the schema in the form OpenAI's strict mode
  takes (the transformation OpenAI's own SDK applies: every property required,
  ``additionalProperties: false``), or ``None`` when the schema cannot be made
  strict (free-form dicts, ``oneOf``/``not``/``patternProperties``).
- ``OutputSpec.parse`` validates an answer, repairing near-JSON first
  (``json-repair``: fences, trailing commas, unquoted keys, cut endings).
- ``OutputSpec.partial`` turns the JSON received so far into a partial value
  while streaming: parsed with jiter's partial mode (``pydantic_core.from_json``,
  trailing strings kept) and validated against a relaxed twin of the type
  (every field optional, recursively) with pydantic's partial validation, so
  strings grow as they stream and list items appear one by one.
- ``reask_messages`` is what the model is told after an invalid answer: its
  answer and the validation errors, so the next attempt can fix them.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import json
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from abstractcore.core.errors import ConfigurationError
from abstractcore.core.types import ToolSpec

__all__ = [
    "STRUCTURED_MODES",
    "STRUCTURED_TOOL",
    "structured_tool",
    "OutputSpec",
    "StructuredMode",
    "ValidationFailure",
    "instruction_for",
    "reask_messages",
    "strict_json_schema",
]

T = TypeVar("T")

#: How a provider may be asked for structure (``structured_mode=``): the API's own JSON-schema
#: output, a forced tool call, a grammar that constrains decoding in process, or the schema in
#: the prompt only.
StructuredMode = Literal["native", "tool", "grammar", "prompt"]
STRUCTURED_MODES: tuple[StructuredMode, ...] = ("native", "tool", "grammar", "prompt")
#: The name of the tool a "tool"-mode answer is given through.
STRUCTURED_TOOL = "final_answer"
#: The key a non-object output is wrapped under.
WRAP_KEY = "value"

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


class ValidationFailure(Exception):
    """An answer that did not validate: the errors, in pydantic's form, for the re-ask."""

    def __init__(self, errors: list[dict[str, Any]], text: str) -> None:
        super().__init__(f"{len(errors)} validation error(s)")
        self.errors = errors
        self.text = text


def instruction_for(schema: dict[str, Any]) -> str:
    """The system instruction that asks for JSON matching ``schema``."""
    return (
        "Answer with one JSON object only, no prose and no code fence, matching this JSON "
        f"schema:\n{json.dumps(schema, separators=(',', ':'))}"
    )


def structured_tool(output: OutputSpec[Any]) -> ToolSpec:
    """The tool whose arguments are the answer, for ``structured_mode="tool"``."""
    return ToolSpec(
        name=STRUCTURED_TOOL,
        description=f"Give the final answer: a {output.name} as this JSON object.",
        parameters=output.schema,
    )


def reask_messages(answer: str, errors: list[dict[str, Any]], *, cut: bool) -> list[dict[str, str]]:
    """The turns that show the model its invalid answer and what was wrong with it."""
    if cut:
        problem = "Your answer was cut off before the JSON was complete. Answer with shorter values."
    else:
        lines = [
            f"- {'.'.join(str(p) for p in e.get('loc', ())) or '(root)'}: {e.get('msg', e.get('type'))}"
            for e in errors[:10]
        ]
        problem = "Your answer does not match the schema:\n" + "\n".join(lines)
    return [
        {"role": "assistant", "content": answer},
        {"role": "user", "content": f"{problem}\nAnswer again with the corrected JSON object only."},
    ]


def _name_of(target: Any) -> str:
    name = getattr(target, "__name__", None)
    if isinstance(name, str) and name not in ("list", "dict", "Literal", "Union", "Optional"):
        return name
    text = re.sub(r"[^A-Za-z0-9_]+", "_", repr(target)).strip("_")
    return (text or "response")[:60]


def _inline_top_ref(schema: dict[str, Any]) -> dict[str, Any]:
    """A schema that is only ``{"$ref": "#/$defs/X", "$defs": ...}`` (a recursive model) as X itself."""
    ref = schema.get("$ref")
    defs = schema.get("$defs")
    if isinstance(ref, str) and ref.startswith("#/$defs/") and isinstance(defs, dict) and len(schema) == 2:
        target = defs.get(ref.removeprefix("#/$defs/"))
        if isinstance(target, dict):
            return {**target, "$defs": defs}
    return schema


def _is_object_schema(schema: Mapping[str, Any]) -> bool:
    return schema.get("type") == "object" and "properties" in schema


@dataclass(frozen=True)
class OutputSpec(Generic[T]):
    """What ``response_model`` asks for, and how to read the answer back."""

    target: Any
    #: The JSON schema sent to the provider (always an object; wrapped when ``wrapped``).
    schema: dict[str, Any]
    wrapped: bool
    name: str
    _adapter: Any = field(repr=False, compare=False)
    _partial_adapter: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def from_schema(
        cls, schema: dict[str, Any], name: str = "response", *, wrap: bool = False
    ) -> OutputSpec[Any]:
        """A spec from a raw JSON schema (no Python type): the schema is the constraint, and the
        answer is parsed (repaired where near-JSON) but not validated beyond being JSON.

        With ``wrap``, a schema whose root is not an object (an array, a string enum, ...) is
        wrapped as ``{"value": ...}`` the way ``of`` wraps a type, so a tool's input and OpenAI's
        strict schemas can carry it; ``parse`` and ``partial`` unwrap the answer."""
        if not isinstance(schema, dict):
            raise ConfigurationError(f"A JSON schema must be a dict; got {type(schema).__name__}.")
        clean = re.sub(r"[^A-Za-z0-9_-]+", "_", name)[:64] or "response"
        if wrap and schema.get("type") != "object":
            inner = dict(schema)
            defs = inner.pop("$defs", None)
            wrapped: dict[str, Any] = {
                "type": "object",
                "properties": {WRAP_KEY: inner},
                "required": [WRAP_KEY],
                "additionalProperties": False,
            }
            if defs:
                wrapped["$defs"] = defs
            return cls(None, wrapped, True, clean, None)
        return cls(None, dict(schema), False, clean, None)

    @classmethod
    def of(cls, target: Any) -> OutputSpec[Any]:
        """The spec for a type; ``ConfigurationError`` when pydantic cannot make a schema of it."""
        from pydantic import PydanticSchemaGenerationError, PydanticUserError, TypeAdapter

        if target is None or isinstance(target, (str, int, float, dict, list)):
            raise ConfigurationError(
                "response_model must be a type (a pydantic model, a dataclass, a TypedDict, "
                f"list[Model], a Literal or Enum, or a primitive such as int); got {target!r}."
            )
        try:
            adapter = TypeAdapter(target)
            inner = adapter.json_schema()
        except (PydanticSchemaGenerationError, PydanticUserError, TypeError, ValueError) as exc:
            raise ConfigurationError(
                f"response_model {target!r} has no JSON schema pydantic can make: {exc}"
            ) from None
        inner = _inline_top_ref(inner)
        wrapped = not _is_object_schema(inner)
        if wrapped:
            defs = inner.pop("$defs", None)
            schema: dict[str, Any] = {
                "type": "object",
                "properties": {WRAP_KEY: inner},
                "required": [WRAP_KEY],
                "additionalProperties": False,
            }
            if defs:
                schema["$defs"] = defs
        else:
            schema = inner
        return cls(target, schema, wrapped, _name_of(target), adapter)

    # -- sending ------------------------------------------------------------------

    @property
    def strict_schema(self) -> dict[str, Any] | None:
        """The schema in OpenAI's strict form, or None when it cannot be strict."""
        return strict_json_schema(self.schema)

    @property
    def instruction(self) -> str:
        """The prompt that asks for this schema."""
        return instruction_for(self.schema)

    # -- reading ------------------------------------------------------------------

    def _unwrap(self, data: Any) -> Any:
        if self.wrapped and isinstance(data, dict) and WRAP_KEY in data and len(data) == 1:
            return data[WRAP_KEY]
        return data

    def parse(self, text: str) -> T:
        """Validate ``text`` (repairing near-JSON first); ``ValidationFailure`` otherwise."""
        from pydantic import ValidationError

        errors: list[dict[str, Any]] = []
        candidates = _candidates(text)
        if self._adapter is None:  # a raw schema: any JSON value the constraint produced
            if self.wrapped:  # ... inside its wrapper
                candidates = [c for c in candidates if self._unwrap(c) is not c]
            if candidates:
                found: T = self._unwrap(candidates[0])
                return found
            what = f'JSON object {{"{WRAP_KEY}": ...}}' if self.wrapped else "JSON value"
            raise ValidationFailure(
                [{"loc": (), "msg": f"the answer holds no {what}", "type": "json_invalid"}], text
            )
        for candidate in candidates:
            try:
                value: T = self._adapter.validate_python(self._unwrap(candidate))
                return value
            except ValidationError as exc:
                errors = [dict(e) for e in exc.errors(include_url=False, include_context=False)]
        if not errors:
            errors = [{"loc": (), "msg": "the answer holds no JSON value", "type": "json_invalid"}]
        raise ValidationFailure(errors, text)

    def partial(self, text: str) -> T | None:
        """The value the JSON received so far describes (fields not yet received are None)."""
        import pydantic_core
        from pydantic import ValidationError

        start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
        if start < 0:
            return None
        try:
            data = pydantic_core.from_json(text[start:], allow_partial="trailing-strings")
        except ValueError:
            return None
        if self._adapter is None:
            return self._unwrap(data)  # type: ignore[no-any-return]
        adapter = self._relaxed()
        try:
            value: T = adapter.validate_python(self._unwrap(data), experimental_allow_partial=True)
        except ValidationError:
            return None
        return value

    def _relaxed(self) -> Any:
        if self._partial_adapter is None:
            from pydantic import TypeAdapter

            object.__setattr__(self, "_partial_adapter", TypeAdapter(_relaxed_type(self.target)))
        return self._partial_adapter


def _candidates(text: str) -> list[Any]:
    """The JSON values ``text`` may hold: as it is, inside a fence, the outermost braces, repaired."""
    found: list[Any] = []
    pieces = [text.strip(), *(m.strip() for m in _FENCE.findall(text))]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        pieces.append(text[start : end + 1])
    for piece in pieces:
        try:
            found.append(json.loads(piece))
        except ValueError:
            continue
    if not found:
        import json_repair

        repaired = json_repair.repair_json(text, return_objects=True)
        if repaired not in ("", None):
            found.append(repaired)
    return found


# -- the relaxed twin of a type, for partial values ------------------------------------------------

_relaxed_cache: dict[Any, Any] = {}


def _relaxed_type(target: Any) -> Any:
    """``target`` with every field optional (default None), recursively: what a partial value is."""
    try:
        return _relaxed_cache[target]
    except (KeyError, TypeError):
        pass
    relaxed = _relax(target)
    try:
        _relaxed_cache[target] = relaxed
    except TypeError:
        pass
    return relaxed


def _relax(target: Any) -> Any:
    from pydantic import BaseModel, create_model

    origin = typing.get_origin(target)
    if origin is typing.Annotated:
        return _relax(typing.get_args(target)[0])
    if origin in (list, set, frozenset, tuple) and typing.get_args(target):
        args = typing.get_args(target)
        if origin is tuple:
            return list[Any]
        return origin[_relax(args[0])]
    if origin in (typing.Union,) or type(target).__name__ == "UnionType":
        args = tuple(_relax(a) for a in typing.get_args(target))
        return typing.Union[args]
    if origin is dict:
        key, value = typing.get_args(target) or (str, Any)
        return dict.__class_getitem__((key, _relax(value)))
    if isinstance(target, type) and issubclass(target, BaseModel):
        fields = {
            name: (typing.Optional[_relax(info.annotation)], None)  # noqa: UP045
            for name, info in target.model_fields.items()
        }
        return create_model(f"Partial{target.__name__}", __base__=target, **fields)  # type: ignore[call-overload]
    if dataclasses.is_dataclass(target) and isinstance(target, type):
        hints = typing.get_type_hints(target)
        fields = {
            f.name: (typing.Optional[_relax(hints.get(f.name, Any))], None)  # noqa: UP045
            for f in dataclasses.fields(target)
        }
        return create_model(f"Partial{target.__name__}", **fields)  # type: ignore[call-overload]
    if _is_typeddict(target):
        hints = typing.get_type_hints(target)
        import typing_extensions

        return typing_extensions.TypedDict(  # type: ignore[operator]
            f"Partial{target.__name__}", {k: _relax(v) for k, v in hints.items()}, total=False
        )
    if isinstance(target, type) and issubclass(target, enum.Enum):
        return target
    return target


def _is_typeddict(target: Any) -> bool:
    return (
        isinstance(target, type)
        and issubclass(target, dict)
        and hasattr(target, "__annotations__")
        and (hasattr(target, "__total__"))
    )


# -- OpenAI's strict form ----------------------------------------------------------------------

#: Keywords strict mode refuses; a schema holding one is sent non-strict.
_NOT_STRICT = frozenset({"oneOf", "not", "patternProperties", "if", "then", "else", "dependentSchemas"})


def strict_json_schema(schema: Mapping[str, Any]) -> dict[str, Any] | None:
    """``schema`` as OpenAI's strict mode takes it, or None when that is impossible.

    The transformation of openai-python's ``to_strict_json_schema``: every
    object gets ``additionalProperties: false`` and lists all its properties
    as required (an optional field keeps its ``null`` alternative); a lone
    ``allOf`` is merged; ``default: null`` is dropped. Free-form objects
    (``dict[str, X]``) cannot be strict.
    """
    result = copy.deepcopy(dict(schema))
    try:
        _strictify(result, root=result)
    except _CannotBeStrict:
        return None
    return result


class _CannotBeStrict(Exception):
    pass


def _strictify(node: Any, *, root: dict[str, Any]) -> None:
    if isinstance(node, list):
        for item in node:
            _strictify(item, root=root)
        return
    if not isinstance(node, dict):
        return
    if _NOT_STRICT & node.keys():
        raise _CannotBeStrict
    all_of = node.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1:
        node.pop("allOf")
        node.update(all_of[0])
    if node.get("type") == "object" or "properties" in node:
        extra = node.get("additionalProperties")
        if extra not in (None, False):
            raise _CannotBeStrict  # a free-form dict
        node["additionalProperties"] = False
        properties = node.setdefault("properties", {})
        node["required"] = list(properties)
    if "default" in node and node["default"] is None:
        node.pop("default")
    for key in ("properties", "$defs", "definitions"):
        value = node.get(key)
        if isinstance(value, dict):
            for child in value.values():
                _strictify(child, root=root)
    for key in ("items", "anyOf", "allOf", "prefixItems"):
        if key in node:
            _strictify(node[key], root=root)
