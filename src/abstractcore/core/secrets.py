"""API keys that never show: not in a repr, a str, ``vars()``, a traceback's locals or a pickle.

``Secret`` holds a key; ``reveal()`` is the one way to read it. ``SecretHeader``
is the form a key takes inside HTTP headers: a real ``str`` (the HTTP
libraries write it to the wire as it is) whose ``repr`` is masked, so a dict
of headers printed, logged or shown by a debugger shows ``'***'``.
"""

from __future__ import annotations

import hmac
from typing import Any, NoReturn

__all__ = ["MASK", "Secret", "SecretHeader"]

MASK = "***"


class Secret:
    """A secret string. ``str()`` and ``repr()`` are masked; ``reveal()`` returns the value."""

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

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self


class SecretHeader(str):
    """A header value holding a secret: a real ``str`` for the wire, masked in ``repr``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"'{MASK}'"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a header holding an API key is never pickled")
