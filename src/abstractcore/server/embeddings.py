"""OpenAI's embeddings wire format, server side: ``POST /v1/embeddings`` body -> texts, and
``EmbeddingResponse`` -> the ``list`` of ``embedding`` objects, as floats or as base64
(little-endian float32, what the openai SDK asks for by default and decodes itself)."""

from __future__ import annotations

import base64
import sys
from array import array
from typing import Any

from abstractcore.core.types import EmbeddingResponse
from abstractcore.server.errors import ApiError
from abstractcore.wire.fields import Fields

__all__ = ["EmbeddingCall", "embedding_list", "parse_embeddings"]


class EmbeddingCall:
    """One embeddings request: the model's name, the texts, ``dimensions`` and the encoding."""

    __slots__ = ("base64", "dimensions", "model", "texts")

    def __init__(self, model: str, texts: list[str], dimensions: int | None, base64: bool) -> None:
        self.model = model
        self.texts = texts
        self.dimensions = dimensions
        self.base64 = base64


def parse_embeddings(body: Fields) -> EmbeddingCall:
    """The texts to embed and how (400 naming the field when it is wrong)."""
    model = body.string("model", required=True, nonempty=True) or ""
    value = body.data.get("input")
    if value is None:
        raise ApiError.bad("input", "field required")
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts:
        raise ApiError.bad("input", "expected a string or a non-empty array of strings")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise ApiError.bad(f"input[{index}]", "expected a string (token arrays are not supported)")
        if not text:
            raise ApiError.bad(f"input[{index}]", "must not be empty")
    encoding = body.string("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise ApiError.bad("encoding_format", "must be 'float' or 'base64'")
    dimensions = body.integer("dimensions", minimum=1)
    return EmbeddingCall(model, texts, dimensions, encoding == "base64")


def _base64(vector: list[float]) -> str:
    packed = array("f", vector)
    if sys.byteorder == "big":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


def embedding_list(model: str, response: EmbeddingResponse, *, as_base64: bool) -> dict[str, Any]:
    """The ``list`` body of an embeddings answer."""
    tokens = response.usage.input_tokens if response.usage else 0
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": _base64(v) if as_base64 else v}
            for i, v in enumerate(response.vectors)
        ],
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
