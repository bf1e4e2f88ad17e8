"""A tool result that holds images (an MCP tool's), as the ``tool`` turn a model reads.

A result is usually a value the loop writes as text. A list of ``TextPart`` /
``ImagePart`` (with at least one image) is content: models that take images get the
parts themselves in the tool turn; others get the text with a note in each image's place.
"""

from __future__ import annotations

from typing import Any

from abstractcore.core.types import ContentPart, ImagePart, TextPart

__all__ = ["image_parts", "tool_content"]


def image_parts(result: Any) -> list[ContentPart] | None:
    """``result`` as content parts when it is a list of parts with an image, else None."""
    if not isinstance(result, list) or not result:
        return None
    if not all(isinstance(p, (TextPart, ImagePart)) for p in result):
        return None
    if not any(isinstance(p, ImagePart) for p in result):
        return None
    return list(result)


def tool_content(parts: list[ContentPart], *, images: bool) -> str | list[ContentPart]:
    """The content of the tool turn: the parts (``images``: the model takes them), else text."""
    if images:
        return parts
    return "\n".join(
        p.text
        if isinstance(p, TextPart)
        else f"[an image ({p.mime_type}) this model cannot see was left out]"
        for p in parts
    )
