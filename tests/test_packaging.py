"""The extras install what their users need, and nothing that only the tests need."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
SERVER = ROOT / "src" / "abstractcore" / "server"


def _extras() -> tuple[list[str], dict[str, list[str]]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project["dependencies"], project["optional-dependencies"]


def _name(requirement: str) -> str:
    found = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert found is not None, requirement
    return found.group(0).lower().replace("_", "-")


def _modules_imported_by_the_server() -> set[str]:
    """Top-level modules the server's code imports, statically or through ``importlib.import_module``."""
    found: set[str] = set()
    for path in SERVER.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "import_module"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found.add(node.args[0].value.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"abstractcore", "__future__"}


def test_the_server_extra_installs_no_test_server() -> None:
    _, extras = _extras()
    names = {_name(r) for r in extras["server"]}
    assert "llama-cpp-python" not in names, "llama-cpp-python's server is a test dependency (dev extra)"


def test_every_module_the_server_imports_comes_with_the_core_or_the_server_extra() -> None:
    core, extras = _extras()
    declared = {_name(r) for r in core + extras["server"]}
    distributions = importlib.metadata.packages_distributions()
    for module in sorted(_modules_imported_by_the_server()):
        providers = {_name(d) for d in distributions.get(module, [module])}
        assert providers & declared, f"the server imports {module!r}: not installed by the core or [server]"


def test_the_test_servers_are_in_the_dev_extra() -> None:
    _, extras = _extras()
    assert any(_name(r) == "llama-cpp-python" and "server" in r for r in extras["dev"])
