"""The docs name only what exists, and their Python examples are valid Python.

Checked in README.md and every docs/**/*.md:

- every repository path they name (``src/...``, ``benchmarks/...``, ``scripts/...``,
  ``tests/...``, ``docs/...``, ``.ci/...``; a ``*`` is a glob that must match a file) exists, and
  a path up from the page (``../...``) stays inside the repository;
- every relative markdown link points at a file of the repository;
- every bare ``name.md`` resolves next to the page or at the repository root;
- a path inside the package written from ``src/abstractcore/`` (```providers/base.py```, in
  backticks) exists there, unless it is followed by "(planned)": docs/architecture.md names the
  modules of the planned request pipeline that way;
- every ``abstractcore.x.y`` / ``abstractllm.x.y`` name is a module of the package (or an
  attribute of one);
- every ```python block compiles as a script (top-level ``await`` only in a block whose first
  line is ``# inside async code``: a notebook cell, or the body of an ``async def``), sends no
  ``...`` as a value, and imports or defines every name it uses (ruff's F821).
"""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]
ASYNC_MARK = "# inside async code"

_TOP = r"(?:src|benchmarks|scripts|tests|docs|\.ci)"
#: A repository path: a top-level folder, then path characters (a trailing dot or comma is prose).
_REPO_PATH = re.compile(rf"(?<![\w./-]){_TOP}/[\w./*-]*[\w*]")
#: A path up from the page (``../x``): it must stay inside the repository.
_UP_PATH = re.compile(r"(?<![\w./-])\.\./[\w./-]*\w")
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_BARE_MD = re.compile(r"(?<![\w./-])([\w-]+\.md)\b")
_PACKAGE_PATH = re.compile(
    r"`((?:core|transport|engines|features|providers|server|wire|router)/[\w/]*\.py|_sync\.py|_llm_base\.py"
    r"|registry\.py|run\.py|session\.py|batch\.py|cli\.py)`(\s*\(planned\))?"
)
_MODULE = re.compile(r"(?<![\w.])(abstract(?:core|llm)(?:\.\w+)+)")
_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)


def _text(page: Path) -> str:
    return page.read_text(encoding="utf-8")


def _ids(pages: list[Path]) -> list[str]:
    return [str(p.relative_to(ROOT)) for p in pages]


def test_the_pages_exist() -> None:
    assert (ROOT / "docs" / "architecture.md").is_file()
    assert len(PAGES) >= 6


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_every_repository_path_exists(page: Path) -> None:
    missing = []
    for path in sorted(set(_REPO_PATH.findall(_text(page)))):
        found = list(ROOT.glob(path)) if "*" in path else [ROOT / path]
        if not any(p.exists() for p in found):
            missing.append(path)
    for path in sorted(set(_UP_PATH.findall(_text(page)))):
        where = (page.parent / path).resolve()
        if not where.exists() or not where.is_relative_to(ROOT):
            missing.append(path)
    assert not missing, f"{page.name} names paths that do not exist in the repository: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_every_relative_link_exists(page: Path) -> None:
    missing = []
    for target in _LINK.findall(_text(page)):
        if re.match(r"^[a-z][a-z+.-]*:", target) or target.startswith("#"):
            continue  # a web address, or an anchor on the same page
        path = (page.parent / target.split("#", 1)[0]).resolve()
        if not path.exists() or not path.is_relative_to(ROOT):
            missing.append(target)
    assert not missing, f"{page.name} links to files outside the repository or missing: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_every_named_page_exists(page: Path) -> None:
    missing = [
        name
        for name in sorted(set(_BARE_MD.findall(_text(page))))
        if not (page.parent / name).is_file() and not (ROOT / name).is_file()
    ]
    assert not missing, f"{page.name} names pages that do not exist: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_every_package_path_exists(page: Path) -> None:
    package = ROOT / "src" / "abstractcore"
    missing = [
        path
        for path, planned in _PACKAGE_PATH.findall(_text(page))
        if not planned and not (package / path).is_file()
    ]
    assert not missing, f"{page.name} names modules that do not exist under src/abstractcore/: {missing}"


#: Where tracing's own span attributes and events are spelled (``abstractcore.cost.usd`` ...): a
#: documented one must be written there, in quotes.
_SPAN_SOURCES = (
    *(ROOT / "src" / "abstractcore" / "features" / "telemetry").glob("*.py"),
    ROOT / "src" / "abstractcore" / "router" / "provider.py",
)


def _is_span_attribute(dotted: str) -> bool:
    return any(f'"{dotted}"' in path.read_text() for path in _SPAN_SOURCES)


def _is_logger_name(dotted: str) -> bool:
    """A logger the package logs to (``abstractcore.http``), named in its source as a logger."""
    spellings = (f'getLogger("{dotted}")', f'LOGGER_NAME = "{dotted}"')
    return any(
        any(spelling in path.read_text() for spelling in spellings)
        for path in (ROOT / "src" / "abstractcore").rglob("*.py")
    )


def _resolves(dotted: str) -> bool:
    if _is_span_attribute(dotted) or _is_logger_name(dotted):
        return True
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        base = ROOT / "src" / Path(*parts[:end])
        if base.with_suffix(".py").is_file() or (base / "__init__.py").is_file():
            obj: object = importlib.import_module(".".join(parts[:end]))
            for attribute in parts[end:]:
                if not hasattr(obj, attribute):
                    return False
                obj = getattr(obj, attribute)
            return True
    return False


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_every_named_module_exists(page: Path) -> None:
    missing = [name for name in sorted(set(_MODULE.findall(_text(page)))) if not _resolves(name)]
    assert not missing, f"{page.name} names modules that do not exist: {missing}"


def _python_blocks(page: Path) -> list[tuple[int, str]]:
    text = _text(page)
    return [
        (text[: m.start()].count("\n") + 1, m.group(2))
        for m in _FENCE.finditer(text)
        if m.group(1) == "python"
    ]


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_python_blocks_compile(page: Path) -> None:
    for line, code in _python_blocks(page):
        flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT if code.startswith(ASYNC_MARK) else 0
        try:
            compile(code, f"{page.name}:{line}", "exec", flags=flags, dont_inherit=True)
        except SyntaxError as exc:
            pytest.fail(f"{page.name}, the python block at line {line}: {exc}")


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_python_blocks_send_no_placeholder_values(page: Path) -> None:
    """``...`` may stand for a body (``for x in y: ...``), never for a value a call sends."""
    for line, code in _python_blocks(page):
        flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT if code.startswith(ASYNC_MARK) else 0
        tree = compile(code, page.name, "exec", flags=flags | ast.PyCF_ONLY_AST, dont_inherit=True)
        bodies = {
            id(stmt.value)
            for stmt in ast.walk(tree)
            if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
        }
        values = [
            node.lineno
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and node.value is Ellipsis and id(node) not in bodies
        ]
        assert not values, f"{page.name}, the python block at line {line}: `...` sent as a value"


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_python_blocks_use_no_undefined_name(page: Path) -> None:
    """Each block runs as pasted: it imports or defines every name it uses (ruff's F821)."""
    for line, code in _python_blocks(page):
        found = subprocess.run(
            [
                sys.executable,
                "-m",
                "ruff",
                "check",
                "--isolated",
                "--select",
                "F821",
                "--output-format",
                "concise",
                "--stdin-filename",
                f"{page.stem}_{line}.py",
                "-",
            ],
            input=code,
            capture_output=True,
            text=True,
            check=False,
        )
        assert found.returncode == 0, f"{page.name}, the python block at line {line}:\n{found.stdout}"
