"""The stage's output columns as Arrow: one fixed schema per job, whatever a block holds.

Each block's columns get explicit types, so a block whose rows all failed (every ``content``
null) has the same schema as one whose rows all answered, and Ray concatenates them. A
``response_model`` becomes one struct column, ``parsed``, typed from the model's fields:
``str`` string, ``int`` int64, ``float`` float64, ``bool`` bool, ``list[X]`` a list, a nested
model a struct, ``X | None`` nullable, anything else (dicts, unions, enums of mixed kinds) its
JSON text.
"""

from __future__ import annotations

import enum
import json
import types
import typing
from collections.abc import Sequence
from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel

from abstractcore.core.types import GenerateResponse

__all__ = ["answer_columns", "arrow_type", "output_schema"]

_SCALARS: dict[Any, pa.DataType] = {str: pa.string(), int: pa.int64(), float: pa.float64(), bool: pa.bool_()}


def _optional(annotation: Any) -> Any:
    """``X`` of ``X | None``; ``annotation`` itself otherwise."""
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        rest = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return annotation


def arrow_type(annotation: Any) -> pa.DataType:
    """The Arrow type of a field annotated ``annotation`` (JSON text for what has none)."""
    annotation = _optional(annotation)
    if annotation in _SCALARS:
        return _SCALARS[annotation]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return pa.struct([pa.field(n, arrow_type(f.annotation)) for n, f in annotation.model_fields.items()])
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        values = {type(m.value) for m in annotation}
        return _SCALARS.get(values.pop(), pa.string()) if len(values) == 1 else pa.string()
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        kinds = {type(a) for a in args}
        return _SCALARS.get(kinds.pop(), pa.string()) if len(kinds) == 1 else pa.string()
    if (
        origin in (list, tuple, set, frozenset, Sequence)
        and args
        and (origin is not tuple or args[-1] is ...)
    ):
        return pa.list_(arrow_type(args[0]))
    return pa.string()


def _to_arrow(value: Any, kind: pa.DataType) -> Any:
    """A JSON-mode dump of a field as ``kind`` holds it (JSON text where the type has no column)."""
    if value is None:
        return None
    if pa.types.is_struct(kind):
        return {
            kind.field(i).name: _to_arrow(value.get(kind.field(i).name), kind.field(i).type)
            for i in range(kind.num_fields)
        }
    if pa.types.is_list(kind):
        return [_to_arrow(v, kind.value_type) for v in value]
    if pa.types.is_string(kind) and not isinstance(value, str):
        return json.dumps(value)
    return value


def output_schema(response_model: type[BaseModel] | None) -> pa.Schema:
    """The columns the stage adds, ``parsed`` last when there is a ``response_model``."""
    fields = [
        pa.field("content", pa.string()),
        pa.field("finish_reason", pa.string()),
        pa.field("input_tokens", pa.int64()),
        pa.field("output_tokens", pa.int64()),
        pa.field("cost", pa.float64()),
        pa.field("model", pa.string()),
        pa.field("deployment", pa.string()),
        pa.field("error_type", pa.string()),
        pa.field("error_message", pa.string()),
    ]
    if response_model is not None:
        fields.append(pa.field("parsed", arrow_type(response_model)))
    return pa.schema(fields)


def _row(result: Any, response_model: type[BaseModel] | None, kind: pa.DataType | None) -> dict[str, Any]:
    if isinstance(result, BaseException):
        return {"error_type": type(result).__name__, "error_message": str(result)}
    if not isinstance(result, GenerateResponse):  # never: the stage asks for whole answers
        return {"error_type": "TypeError", "error_message": f"unexpected answer {type(result).__name__}"}
    row: dict[str, Any] = {
        "content": result.content,
        "finish_reason": result.finish_reason,
        "input_tokens": result.usage.input_tokens if result.usage else None,
        "output_tokens": result.usage.output_tokens if result.usage else None,
        "cost": result.cost,
        "model": result.model,
        "deployment": result.deployment,
    }
    if response_model is not None and kind is not None:
        try:
            value = response_model.model_validate_json(result.content)
        except ValueError as error:  # validated by the pipeline already: only a server gone odd
            return {**row, "error_type": type(error).__name__, "error_message": str(error)}
        row["parsed"] = _to_arrow(value.model_dump(mode="json"), kind)
    return row


def answer_columns(results: Sequence[Any], response_model: type[BaseModel] | None) -> dict[str, pa.Array]:
    """The added columns of a block: one entry per result (an answer or the error it got)."""
    schema = output_schema(response_model)
    kind = schema.field("parsed").type if response_model is not None else None
    rows = [_row(r, response_model, kind) for r in results]
    return {f.name: pa.array([r.get(f.name) for r in rows], type=f.type) for f in schema}
