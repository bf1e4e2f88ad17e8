"""Lazy re-exports of a package (PEP 562): each name is imported from its module on first use.

A package's ``__init__`` lists its names once here and imports them under ``TYPE_CHECKING`` too,
so mypy and IDEs see every name while ``import package`` loads none of the modules behind them::

    __getattr__, __dir__ = lazy_exports(__name__, {".client": ("request_body",), ".server": ("completion",)})

``typing`` is not imported: ``import abstractcore`` costs next to nothing because of this.
"""

from __future__ import annotations

import importlib
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, modules: Mapping[str, tuple[str, ...]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``modules`` maps a module (relative with a
    leading dot) to the names it gives; a name is imported once, then is a plain attribute."""
    where = {name: module for module, names in modules.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)  # later lookups do not come here
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *where})

    return __getattr__, __dir__
