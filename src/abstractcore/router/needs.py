"""What a call asks of a deployment, read from its built ``Request`` (never from the kwargs)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from abstractcore.core.types import ImagePart, TextPart
from abstractcore.features.request import Request

__all__ = ["LONG_PROMPT", "Needs", "needs_of"]

#: A request estimated (text length / 4) under this many tokens is not checked against context windows.
LONG_PROMPT = 1024


class Needs(NamedTuple):
    """What a call asks of a deployment."""

    tools: bool = False
    images: bool = False
    structured: bool = False
    embeddings: bool = False
    #: Estimated prompt tokens (text length / 4) and the output asked for (max_tokens).
    tokens: int = 0
    output: int = 0
    #: Whether the deployments' capabilities must be checked at all.
    check: bool = False

    def describe(self) -> str:
        wants = [
            name
            for name, wanted in (
                ("tools", self.tools),
                ("images", self.images),
                ("a response_model", self.structured),
                ("embeddings", self.embeddings),
            )
            if wanted
        ]
        if self.tokens + self.output >= LONG_PROMPT:
            wants.append(f"~{self.tokens + self.output:,} tokens of context")
        return ", ".join(wants) or "a plain request"


#: What an embeddings call needs.
EMBEDDINGS = Needs(embeddings=True, check=True)


def needs_of(request: Request, params: Mapping[str, Any]) -> Needs:
    """The needs of ``request`` whose parameters, the router's defaults merged in, are ``params``."""
    chars = 0
    images = False
    for message in request.messages:
        content = message.content
        if isinstance(content, str):
            chars += len(content)
            continue
        for part in content:
            if isinstance(part, TextPart):
                chars += len(part.text)
            elif isinstance(part, ImagePart):
                images = True
    tokens = chars // 4
    output = params.get("max_tokens") if params else None
    out = output if isinstance(output, int) and not isinstance(output, bool) else 0
    tools = bool(request.tools) and request.tool_choice != "none"
    structured = request.output is not None
    check = tools or images or structured or tokens + out >= LONG_PROMPT
    return Needs(tools, images, structured, False, tokens, out, check)
