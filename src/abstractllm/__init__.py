"""``abstractllm``: a thin alias of ``abstractcore`` for code written against the older name."""

from __future__ import annotations

from abstractcore import __all__, create_llm  # noqa: F401
from abstractcore._version import __version__ as __version__

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from abstractcore import *  # noqa: F403
del TYPE_CHECKING


def __getattr__(name: str) -> Any:
    """The names of ``abstractcore``, imported on first use there too."""
    import abstractcore

    if name not in __all__:
        raise AttributeError(f"module 'abstractllm' has no attribute {name!r}")
    return getattr(abstractcore, name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
