"""Images attached to a prompt: file paths, bytes, URLs or ``ImagePart``s."""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from abstractcore.core.errors import ConfigurationError
from abstractcore.core.types import ImagePart

__all__ = ["load_media"]

_MAGIC = {b"\x89PNG": "image/png", b"\xff\xd8\xff": "image/jpeg", b"GIF8": "image/gif",
          b"RIFF": "image/webp"}


def _sniff(data: bytes) -> str:
    for magic, mime in _MAGIC.items():
        if data.startswith(magic):
            return mime
    return "application/octet-stream"


def _one(item: Any) -> ImagePart:
    if isinstance(item, ImagePart):
        return item
    if isinstance(item, (bytes, bytearray)):
        data = bytes(item)
        return ImagePart(data=data, mime_type=_sniff(data))
    if isinstance(item, str) and item.startswith(("http://", "https://", "data:")):
        return ImagePart(url=item)
    if isinstance(item, (str, os.PathLike)):
        path = Path(item)
        if not path.is_file():
            raise ConfigurationError(f"Media file {str(path)!r} does not exist.")
        data = path.read_bytes()
        mime = mimetypes.guess_type(path.name)[0] or _sniff(data)
        if not mime.startswith("image/"):
            raise ConfigurationError(f"Only images are supported as media; {path.name!r} is {mime}.")
        return ImagePart(data=data, mime_type=mime)
    raise ConfigurationError(
        f"media items must be file paths, bytes, URLs or ImagePart; got {type(item).__name__}.")


def load_media(items: Iterable[Any] | None) -> list[ImagePart]:
    """``ImagePart``s for every item (``ConfigurationError`` for a missing file or non-image)."""
    if items is None:
        return []
    if isinstance(items, (str, bytes, os.PathLike, ImagePart)):
        items = [items]
    return [_one(item) for item in items]
