"""API keys that never show: not in a repr, a str, a format, ``vars()``, a traceback's locals or a pickle.

``Secret`` holds a key, and the HTTP header made of it (``Secret("Bearer sk-...")``);
``reveal()`` is the one way to read it. Nothing keeps the revealed text: the
transport reveals a header while it hands one request to the HTTP library
(``transport.base.wire_headers``), so no object an LLM holds contains the raw key.
"""

from __future__ import annotations

import hmac
from typing import Any, NoReturn

__all__ = ["MASK", "Secret"]

MASK = "***"


class Secret:
    """A secret string. ``str()``, ``repr()`` and ``format()`` are masked, pickling refused;
    ``reveal()`` returns the value."""

    __slots__ = ("__value",)

    def __init__(self, value: str) -> None:
        self.__value = value

    def reveal(self) -> str:
        """The secret itself (for building a request header; never for printing)."""
        return self.__value

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return format(MASK, spec)

    def __bool__(self) -> bool:
        return bool(self.__value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self.__value.encode(), other.__value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self.__value))

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret (an API key) is never pickled; pass the key again where it is needed")

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self
