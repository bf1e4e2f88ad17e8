"""Write docs/llms.txt and docs/llms-full.txt from mkdocs.yml's nav and the pages.

    python scripts/gen_llms_txt.py          # write both files
    python scripts/gen_llms_txt.py --check  # exit 1 if either is not what the pages give now

llms.txt follows llmstxt.org: an H1 (the site's name), a blockquote summary, then one section per
nav section, each a list of ``[title](page.md): what the page is about`` (the page's first
sentence). llms-full.txt is every page's text in nav order; an API reference entry
(``::: abstractcore.x.Name``) becomes the signature and docstring griffe reads from the source,
the same ones the site renders. Both sit in docs/, so the built site serves them at its root
(/llms.txt), beside the Markdown sources it links to (scripts/mkdocs_hooks.py copies them into the site).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import griffe
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
_ENTRY = re.compile(r"^::: ([\w.]+)\s*$", re.M)
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")


def _pages(nav: list[Any], section: str = "") -> list[tuple[str, str, str]]:
    """(section, title, path) for every page of the nav, in order."""
    found: list[tuple[str, str, str]] = []
    for item in nav:
        title, value = next(iter(item.items())) if isinstance(item, dict) else ("", item)
        if isinstance(value, list):
            found += _pages(value, title)
        else:
            found.append((section or title, title, value))
    return found


def _title(text: str) -> str:
    return next(line[2:].strip() for line in text.splitlines() if line.startswith("# "))


def _summary(text: str) -> str:
    """The page's first prose sentence after its H1, on one line, links as their text."""
    body = text.split("\n", 1)[1] if text.startswith("# ") else text
    body = re.sub(r"^```.*?^```", "", body, flags=re.M | re.S)
    for paragraph in re.split(r"\n\s*\n", body):
        lines = paragraph.strip()
        if not lines or lines[0] in "#|-*>:<!" or lines[0].isdigit():
            continue
        flat = _LINK.sub(r"\1", " ".join(lines.split()))
        sentence = re.split(r"(?<=\.)\s", flat, maxsplit=1)[0]
        return sentence.rstrip(":;") + ("" if sentence.endswith(".") else ".")
    return ""


def _signature(obj: Any) -> str:
    params = []
    star = False
    for p in obj.parameters:
        kind = p.kind.value if p.kind else ""
        if p.name in ("self", "cls"):
            continue
        if kind == "keyword-only" and not star:
            params.append("*")
            star = True
        prefix = {"variadic positional": "*", "variadic keyword": "**"}.get(kind, "")
        star = star or prefix == "*"
        text = prefix + p.name + (f": {p.annotation}" if p.annotation else "")
        if p.default is not None and not prefix:
            text += f" = {p.default}"
        params.append(text)
    returns = f" -> {obj.returns}" if obj.returns else ""
    return f"{obj.name}({', '.join(params)}){returns}"


def _entry(package: Any, dotted: str) -> str:
    """An API reference entry as text: heading, signature, docstring, and a class's members."""
    obj = package[dotted.removeprefix("abstractcore.")]
    obj = obj.final_target if obj.is_alias else obj
    doc = obj.docstring.value.strip() if obj.docstring else ""
    if obj.is_function:
        return f"### `{_signature(obj)}`\n\n{doc}\n"
    if obj.is_attribute:
        return f"### `{obj.name}`\n\n{doc}\n"
    init = obj.members.get("__init__")
    head = obj.name
    if init is not None and init.is_function:
        head = _signature(init).replace("__init__", obj.name, 1)
    out = [f"### `class {head}`\n\n{doc}\n"]
    for name, member in obj.members.items():
        if name.startswith("_") or member.is_alias or not member.docstring:
            continue
        what = _signature(member) if member.is_function else name
        out.append(f"- `{what}`: {' '.join(member.docstring.value.split())}")
    return "\n".join(out) + "\n"


def render() -> dict[str, str]:
    """The two files' text, from mkdocs.yml and the pages as they are now."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    package = griffe.load("abstractcore", search_paths=[str(ROOT / "src")], resolve_aliases=True)
    index = [f"# {config['site_name']}", "", f"> {config['site_description']}", ""]
    index += [
        "The API reference is generated from the docstrings; llms-full.txt has every page's text",
        "in one file, the reference entries expanded into their signatures and docstrings.",
    ]
    full = [f"# {config['site_name']}", "", f"> {config['site_description']}"]
    section = None
    for where, title, path in _pages(config["nav"]):
        text = (DOCS / path).read_text(encoding="utf-8")
        if where != section:
            index += ["", f"## {where}", ""]
            section = where
        index.append(f"- [{title or _title(text)}]({path}): {_summary(text)}")
        expanded = _ENTRY.sub(lambda m: _entry(package, m.group(1)), text)
        full += ["", "---", "", f"Source: docs/{path}", "", expanded.strip()]
    return {"llms.txt": "\n".join(index) + "\n", "llms-full.txt": "\n".join(full) + "\n"}


def main() -> int:
    """Write the files, or with ``--check`` report which one is stale (exit 1)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="fail if a file is not current")
    args = parser.parse_args()
    stale = []
    for name, text in render().items():
        path = DOCS / name
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"stale: {', '.join(stale)}; run python scripts/gen_llms_txt.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
