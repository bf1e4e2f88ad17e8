"""The signatures this server puts on the ``thinking`` blocks it returns, checked when they come back.

Anthropic signs each thinking block so that what a client sends back is what the model
thought. A server in front of another back end signs the same way with its own key: an
HMAC-SHA256 of the thinking's text under a secret made when the process starts (so a signature
is good for the life of the server), written ``ac1.<base64>``. A block that comes back with
such a signature must match it (else the request is a 400, as Anthropic refuses a changed
block); a block with any other signature is Anthropic's own, passed through to an Anthropic
back end unchanged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

__all__ = ["PREFIX", "sign", "verify"]

#: How this server's signatures begin.
PREFIX = "ac1."
_KEY = secrets.token_bytes(32)


def sign(text: str) -> str:
    """This server's signature of a thinking block's text."""
    digest = hmac.new(_KEY, text.encode("utf-8"), hashlib.sha256).digest()
    return PREFIX + base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def verify(text: str, signature: str) -> bool:
    """Whether ``signature`` is this server's signature of ``text``."""
    return hmac.compare_digest(sign(text), signature)
