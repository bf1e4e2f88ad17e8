"""Timeouts and the validation of generation parameters.

Parameters given to ``create_llm`` are defaults; the same names given to a
call override them for that call. Every value is checked before a request is
sent, so a typo fails fast with a ``ConfigurationError``.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Union
from urllib.parse import urlsplit

from abstractcore.core.errors import ConfigurationError

__all__ = [
    "AUTOMATIC_CACHE_PARAMS",
    "GENERATION_PARAMS",
    "Timeout",
    "TimeoutLike",
    "check_base_url",
    "validate_params",
]

#: Generation parameters every provider accepts (providers add their own).
GENERATION_PARAMS = frozenset(
    {
        "temperature",
        "max_tokens",
        "top_p",
        "stop",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "timeout",
    }
)

#: The caching control a provider that caches by itself accepts (``cache=True`` changes nothing
#: there: the prefix cache is always on, and what it reused comes back in ``usage.cached_tokens``).
AUTOMATIC_CACHE_PARAMS = frozenset({"cache", "cache_ttl"})


@dataclass(frozen=True)
class Timeout:
    """Time limits of a request, in seconds (``None``: no limit).

    ``connect`` bounds opening the connection, ``read`` each wait for data,
    ``total`` the whole request. For streams, ``total`` bounds the wait for the
    response headers and ``read`` each gap between chunks, so a long stream is
    never cut while tokens keep coming.
    """

    connect: float | None = 10.0
    read: float | None = 600.0
    total: float | None = 600.0

    def __post_init__(self) -> None:
        for name in ("connect", "read", "total"):
            value = getattr(self, name)
            if value is not None and (
                not isinstance(value, (int, float))
                or isinstance(value, bool)
                or value <= 0
                or math.isnan(value)
            ):
                raise ConfigurationError(
                    f"Timeout.{name} must be a positive number of seconds or None; got {value!r}."
                )

    @classmethod
    def of(cls, value: TimeoutLike) -> Timeout:
        """A ``Timeout`` from a number (the total), ``None`` (no limit) or a ``Timeout``."""
        if isinstance(value, Timeout):
            return value
        if value is None:
            return cls(connect=None, read=None, total=None)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigurationError(
                f"timeout must be seconds (a number), a Timeout(connect, read, total) or None; got {value!r}."
            )
        if value <= 0 or math.isnan(value):
            raise ConfigurationError(f"timeout must be > 0 seconds; got {value!r}.")
        v = float(value)
        return cls(connect=min(10.0, v), read=v, total=v)


TimeoutLike = Union[Timeout, float, int, None]


def _number(
    name: str, value: Any, *, low: float, high: float | None = None, low_inclusive: bool = True
) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ConfigurationError(f"{name} must be a number; got {value!r}.")
    if value < low or (not low_inclusive and value == low) or (high is not None and value > high):
        bound = f"{'>=' if low_inclusive else '>'} {low}" + (f" and <= {high}" if high is not None else "")
        raise ConfigurationError(f"{name} must be {bound}; got {value!r}.")


#: name -> (low, high, low inclusive) for the float parameters (``None``: no upper bound).
_RANGES: dict[str, tuple[float, float | None, bool]] = {
    "temperature": (0.0, 2.0, True),
    "top_p": (0.0, 1.0, True),
    "min_p": (0.0, 1.0, True),
    "presence_penalty": (-2.0, 2.0, True),
    "frequency_penalty": (-2.0, 2.0, True),
    "repeat_penalty": (0.0, None, False),
}
#: Integer parameters that must be > 0.
_POSITIVE_INTS = frozenset({"max_tokens", "num_ctx", "top_k"})


def _check_value(name: str, value: Any) -> None:
    if value is None:
        return
    if name in _RANGES:
        low, high, inclusive = _RANGES[name]
        _number(name, value, low=low, high=high, low_inclusive=inclusive)
    elif name in _POSITIVE_INTS or name == "seed":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigurationError(f"{name} must be an integer; got {value!r}.")
        if name != "seed" and value <= 0:
            raise ConfigurationError(f"{name} must be > 0; got {value!r}.")
    elif name == "stop":
        if isinstance(value, str):
            return
        if not (isinstance(value, (list, tuple)) and all(isinstance(s, str) for s in value)):
            raise ConfigurationError(f"stop must be a string or a list of strings; got {value!r}.")
    elif name == "timeout":
        Timeout.of(value)
    elif name == "keep_alive" and not (
        isinstance(value, str) or (isinstance(value, (int, float)) and not isinstance(value, bool))
    ):
        raise ConfigurationError(
            f"keep_alive must be a duration such as '5m' or '1h', seconds, 0 (unload now) or -1 "
            f"(keep loaded); got {value!r}."
        )


def validate_params(params: Mapping[str, Any], allowed: Iterable[str], *, where: str) -> None:
    """Raise ``ConfigurationError`` for an unknown name or an invalid value."""
    allowed = frozenset(allowed)
    for name, value in params.items():
        if name not in allowed:
            close = difflib.get_close_matches(name, sorted(allowed), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigurationError(
                f"{where} got an unknown keyword argument {name!r}.{hint} "
                f"Accepted: {', '.join(sorted(allowed))}."
            )
        _check_value(name, value)


def check_base_url(url: str, *, default_scheme: str | None = None) -> str:
    """A normalised base URL (no trailing slash), or ``ConfigurationError``."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError(f"base_url must be a non-empty URL string; got {url!r}.")
    url = url.strip()
    if default_scheme and "://" not in url:
        url = f"{default_scheme}://{url}"
    parts = urlsplit(url)
    try:
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise ConfigurationError(f"base_url must look like http://host:port/path; got {url!r}.")
    return url.rstrip("/")
