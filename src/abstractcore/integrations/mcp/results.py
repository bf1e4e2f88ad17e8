"""An MCP ``tools/call`` result as the tool result the loop hands back to the model.

- text blocks: the text (joined by newlines);
- ``structuredContent``: that object (the model reads it as JSON), when no image came;
- images: a list of ``TextPart`` / ``ImagePart`` (the loop sends the images to models
  that take images, a note in their place to others);
- embedded resources: their text, or a note naming a binary one; links and audio: a note;
- ``isError``: ``ToolCallError`` with the server's text, which the model sees as an error result.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

from abstractcore.core.errors import ToolCallError
from abstractcore.core.types import ContentPart, ImagePart, TextPart

if TYPE_CHECKING:
    from mcp_types import CallToolResult

__all__ = ["tool_result"]


def _block(block: Any, texts: list[str], images: list[ImagePart]) -> None:
    kind = getattr(block, "type", None)
    if kind == "text":
        texts.append(str(block.text))
    elif kind == "image":
        try:
            images.append(ImagePart(base64.b64decode(block.data, validate=True), str(block.mime_type)))
        except (binascii.Error, ValueError):
            texts.append(f"[an image ({block.mime_type}) the server sent was not valid base64]")
    elif kind == "resource":
        resource = block.resource
        text = getattr(resource, "text", None)
        texts.append(str(text) if text is not None else f"[binary resource {resource.uri}]")
    elif kind == "resource_link":
        texts.append(f"[resource {block.uri}]")
    elif kind == "audio":
        texts.append(f"[audio ({block.mime_type}) omitted]")
    else:
        texts.append(f"[{kind} content omitted]")


def tool_result(result: CallToolResult, *, tool: str, server: str) -> Any:
    """The value of ``result`` for the tool loop (see the module docstring)."""
    texts: list[str] = []
    images: list[ImagePart] = []
    for block in result.content:
        _block(block, texts, images)
    if result.is_error:
        detail = "\n".join(texts).strip() or "no detail given"
        raise ToolCallError(f"The tool {tool!r} failed on the MCP server {server}: {detail}")
    if images:
        parts: list[ContentPart] = [TextPart(t) for t in texts]
        return parts + list(images)
    if result.structured_content is not None:
        return dict(result.structured_content)
    return "\n".join(texts)
