"""The documentation site builds without a warning, and its API reference covers the public API.

- ``mkdocs build --strict`` (mkdocs.yml at the root: mkdocs-material, mkdocstrings) succeeds and
  logs no warning: a broken link, an anchor that does not exist, a page left out of the nav or a
  reference entry that does not resolve fails it;
- every name of ``abstractcore.__all__`` has an entry (``::: module.name``) in docs/reference/,
  naming the very object ``abstractcore`` exports;
- every such name has a docstring, as griffe (what mkdocstrings renders from) reads it;
- docs/llms.txt and docs/llms-full.txt are what scripts/gen_llms_txt.py writes from the pages now.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import griffe

import abstractcore

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "reference"
_ENTRY = re.compile(r"^::: ([\w.]+)\s*$", re.M)


def _entries() -> list[str]:
    return [m for page in sorted(REFERENCE.glob("*.md")) for m in _ENTRY.findall(page.read_text())]


def _load(dotted: str) -> object:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def test_the_site_builds_with_no_warning(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT / "src")},
    )
    log = built.stdout + built.stderr
    warnings = [line for line in log.splitlines() if "WARNING" in line or "ERROR" in line]
    assert built.returncode == 0 and not warnings, log
    # the reference is rendered from the code: the signature of create_llm is on its page
    page = (tmp_path / "site" / "reference" / "client" / "index.html").read_text()
    assert 'id="abstractcore.create_llm"' in page and "ConfigurationError" in page


def test_every_public_name_has_a_reference_entry() -> None:
    documented = {id(_load(entry)) for entry in _entries()}
    missing = [name for name in abstractcore.__all__ if id(getattr(abstractcore, name)) not in documented]
    assert not missing, f"public names with no `::: ...` entry in docs/reference/: {missing}"


def test_every_reference_entry_is_public() -> None:
    public = {id(getattr(abstractcore, name)) for name in abstractcore.__all__}
    private = [entry for entry in _entries() if id(_load(entry)) not in public]
    assert not private, f"docs/reference/ documents names abstractcore does not export: {private}"


def test_every_public_name_has_a_docstring() -> None:
    package = griffe.load("abstractcore", search_paths=[str(ROOT / "src")], resolve_aliases=True)
    bare = [
        name for name in abstractcore.__all__ if not (doc := package[name].docstring) or not doc.value.strip()
    ]
    assert not bare, f"public names without a docstring: {bare}"


def test_llms_txt_and_llms_full_txt_are_current() -> None:
    checked = subprocess.run(
        [sys.executable, "scripts/gen_llms_txt.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    index = (ROOT / "docs" / "llms.txt").read_text()
    assert index.startswith("# abstractcore\n\n> ") and "](reference/client.md)" in index
    assert "# Tools, the tool loop and sessions" in (ROOT / "docs" / "llms-full.txt").read_text()
