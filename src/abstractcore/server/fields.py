"""Typed reads of a JSON request body: each wrong or missing field is a 400 that names it.

``Fields(data, "messages[0]")`` wraps one JSON object; ``fields.string("role")`` and friends
return the value or raise ``ApiError`` with the field's path (``messages[0].role``) both as the
message's start and as OpenAI's ``param``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from abstractcore.server.errors import ApiError

__all__ = ["Fields", "parse_json_object"]

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
        raise ApiError.bad(None, "The request body is empty; send a JSON object.")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError.bad(None, f"The request body is not valid JSON: {exc}.") from None
    if not isinstance(data, dict):
        raise ApiError.bad(None, f"The request body must be a JSON object; got {_type_name(data)}.")
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
            raise ApiError.bad(self.path(key), "field required")
        return value

    def _wrong(self, key: str, expected: str, value: Any) -> ApiError:
        return ApiError.bad(self.path(key), f"expected {expected}, got {_type_name(value)}")

    def string(self, key: str, *, required: bool = False, nonempty: bool = False) -> str | None:
        """A string field."""
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self._wrong(key, "a string", value)
        if nonempty and not value:
            raise ApiError.bad(self.path(key), "must not be empty")
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
            raise ApiError.bad(self.path(key), f"must be >= {minimum}; got {value}")
        return value

    def number(self, key: str, low: float, high: float) -> float | None:
        """A number field in ``[low, high]``."""
        value = self._get(key, False)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise self._wrong(key, "a number", value)
        if not low <= value <= high:
            raise ApiError.bad(self.path(key), f"must be between {low:g} and {high:g}; got {value:g}")
        return float(value)

    def array(self, key: str, *, required: bool = False, nonempty: bool = False) -> list[Any] | None:
        """An array field."""
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, list):
            raise self._wrong(key, "an array", value)
        if nonempty and not value:
            raise ApiError.bad(self.path(key), "must not be empty")
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
                raise ApiError.bad(where, f"expected an object, got {_type_name(value)}")
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
            raise ApiError.bad(self.path(key), why)
