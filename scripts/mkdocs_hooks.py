"""mkdocs hooks (mkdocs.yml ``hooks:``): the built site also serves each page's Markdown source.

docs/llms.txt, served at the site's root as /llms.txt, links to the pages' ``.md`` sources (the
llmstxt.org convention); this copies them beside the HTML pages, at the same relative paths.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any


def on_post_build(config: Any, **kwargs: Any) -> None:
    """Copy every docs/**/*.md into the built site."""
    docs, site = Path(config["docs_dir"]), Path(config["site_dir"])
    for page in docs.rglob("*.md"):
        target = site / page.relative_to(docs)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(page, target)
