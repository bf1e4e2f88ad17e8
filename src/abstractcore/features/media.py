"""Images attached to a prompt: file paths, bytes, URLs or ``ImagePart``s.

A base64 ``data:`` URL is decoded once, where it enters (``load_media`` for ``media=``, the
server's request parsers for a client's image), by ``decode_data_url``; from then on the image is
bytes, encoded for each wire body that needs base64, never decoded again.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from abstractcore.core.errors import ConfigurationError
from abstractcore.core.types import ImagePart

__all__ = ["base64_image", "decode_base64_image", "decode_data_url", "load_media"]

_MAGIC = {b"\x89PNG": "image/png", b"\xff\xd8\xff": "image/jpeg", b"GIF8": "image/gif", b"RIFF": "image/webp"}


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
    if isinstance(item, str) and item.startswith("data:"):
        return decode_data_url(item)
    if isinstance(item, str) and item.startswith(("http://", "https://")):
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
        f"media items must be file paths, bytes, URLs or ImagePart; got {type(item).__name__}."
    )


def load_media(items: Iterable[Any] | None) -> list[ImagePart]:
    """``ImagePart``s for every item (``ConfigurationError`` for a missing file or non-image)."""
    if items is None:
        return []
    if isinstance(items, (str, bytes, os.PathLike, ImagePart)):
        items = [items]
    return [_one(item) for item in items]


def decode_base64_image(payload: str, mime_type: str) -> ImagePart:
    """The image base64 text holds, as bytes (``ConfigurationError`` for invalid base64): the one
    place an image is decoded."""
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError("The image holds invalid base64.") from None
    return ImagePart(data=data, mime_type=mime_type)


def decode_data_url(url: str) -> ImagePart:
    """The image a base64 ``data:`` URL holds, as bytes (``ConfigurationError`` when the URL is not
    base64 or holds invalid base64)."""
    header, _, payload = url.partition(",")
    if not header.startswith("data:") or ";base64" not in header:
        raise ConfigurationError(
            "Images given as data: URLs must be base64-encoded (data:image/png;base64,...)."
        )
    return decode_base64_image(payload, header[5:].split(";", 1)[0] or "image/png")


def base64_image(part: ImagePart) -> tuple[str, str] | None:
    """``(mime type, base64 data)`` of an image given as bytes or a base64 ``data:`` URL.

    ``None`` for an image given as a link (``http(s)://``), which only some
    providers fetch themselves. A ``data:`` URL that is not base64, or holds
    invalid base64, raises ``ConfigurationError``.
    """
    if part.data is None:
        url = part.url or ""
        if not url.startswith("data:"):
            return None
        # an ImagePart built by hand (media= decodes at load): checked, and its payload sent as is
        return decode_data_url(url).mime_type, url.partition(",")[2]
    return part.mime_type, base64.b64encode(part.data).decode("ascii")
