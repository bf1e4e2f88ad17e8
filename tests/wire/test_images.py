"""A base64 image is decoded once, where it enters: ``media=`` at load, a server request at parse;
bad base64 is a typed error there, not a failure in a wire body later."""

from __future__ import annotations

import base64

import pytest

from abstractcore.core.errors import ConfigurationError
from abstractcore.features.media import base64_image, load_media
from abstractcore.wire import anthropic_messages, openai_chat
from abstractcore.wire.fields import FieldError, Fields

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(40))
URL = "data:image/png;base64," + base64.b64encode(PNG).decode()


def test_a_data_url_in_media_is_bytes_from_the_start() -> None:
    [part] = load_media(URL)
    assert (part.data, part.mime_type, part.url) == (PNG, "image/png", None)
    assert base64_image(part) == ("image/png", URL.partition(",")[2])


def test_bad_base64_is_refused_at_load_and_at_parse() -> None:
    with pytest.raises(ConfigurationError, match="invalid base64"):
        load_media("data:image/png;base64,@@@")
    user = {
        "role": "user",
        "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,@@"}}],
    }
    with pytest.raises(FieldError) as caught:
        openai_chat.parse_chat(Fields({"model": "m", "messages": [user]}, ""))
    assert caught.value.param == "messages[0].content[0].image_url.url"
    block = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "@@"}}
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [block]}]}
    with pytest.raises(FieldError) as caught:
        anthropic_messages.parse_messages(Fields(body, ""))
    assert caught.value.param == "messages[0].content[0].source.data"
