"""A package with lazy exports (``abstractcore._lazy``) names each export three times: imported
under ``TYPE_CHECKING`` (what mypy and IDEs see), in the table ``lazy_exports`` reads (what
``import`` resolves at run time) and in ``__all__`` (what ``from package import *`` and the API
reference list). The three must say the same, or a name type-checks but fails at run time, or
is importable but undocumented; this test reads each ``__init__`` and compares them.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGES = sorted(
    path for path in SRC.glob("abstractcore/**/__init__.py") if "lazy_exports(" in path.read_text("utf-8")
)


def _module_name(path: Path) -> str:
    return ".".join(path.parent.relative_to(SRC).parts)


def _absolute(module: str, package: str) -> str:
    return importlib.util.resolve_name(module, package) if module.startswith(".") else module


def _typing_imports(tree: ast.Module, package: str) -> dict[str, set[str]]:
    """``{module: names}`` imported under ``if TYPE_CHECKING:`` (private aliases left out)."""
    found: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for item in node.body:
                assert isinstance(item, ast.ImportFrom), f"{package}: only imports under TYPE_CHECKING"
                module = "." * item.level + (item.module or "")
                names = {alias.asname or alias.name for alias in item.names}
                names = {name for name in names if not name.startswith("_")}  # the package's own
                if names:
                    found.setdefault(_absolute(module, package), set()).update(names)
    return found


def _lazy_table(tree: ast.Module, package: str) -> dict[str, set[str]]:
    """The ``{module: names}`` literal handed to ``lazy_exports``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "").endswith("lazy_exports"):
            table = ast.literal_eval(node.args[1])
            return {_absolute(module, package): set(names) for module, names in table.items()}
    raise AssertionError(f"{package}: no lazy_exports(...) call")


def _all(tree: ast.Module) -> list[str]:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in node.targets):
            value = ast.literal_eval(node.value)
            assert isinstance(value, list)
            return value
    raise AssertionError("no __all__")


def test_the_packages_are_found() -> None:
    assert {_module_name(p) for p in PACKAGES} >= {"abstractcore", "abstractcore.wire.openai_chat"}


@pytest.mark.parametrize("path", PACKAGES, ids=_module_name)
def test_the_three_lists_agree(path: Path) -> None:
    package = _module_name(path)
    tree = ast.parse(path.read_text("utf-8"))
    lazy = _lazy_table(tree, package)
    assert _typing_imports(tree, package) == lazy, f"{package}: TYPE_CHECKING imports != lazy table"
    exported = _all(tree)
    assert len(exported) == len(set(exported)), f"{package}: a name twice in __all__"
    lazily = {name for names in lazy.values() for name in names}
    eager = set(exported) - lazily  # names the package defines or imports itself
    for name in eager:
        assert name in vars(importlib.import_module(package)), f"{package}.{name}: in __all__, not defined"


@pytest.mark.parametrize("path", PACKAGES, ids=_module_name)
def test_every_lazy_name_is_exported_and_resolves(path: Path) -> None:
    package = _module_name(path)
    tree = ast.parse(path.read_text("utf-8"))
    lazy = _lazy_table(tree, package)
    exported = set(_all(tree))
    for module, names in lazy.items():
        for name in sorted(names):
            assert name in exported, f"{package}.{name}: lazy, but not in __all__"
            assert getattr(importlib.import_module(module), name) is getattr(
                importlib.import_module(package), name
            )
