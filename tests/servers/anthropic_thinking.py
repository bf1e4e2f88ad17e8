"""Extended thinking for the Anthropic test server, as the Messages API publishes it.

A request with ``thinking: {"type": "enabled", "budget_tokens": N}`` is answered with a
``thinking`` block (its text, then a ``signature``) before the text / tool_use blocks; streamed:
``content_block_start`` (type thinking, empty text and signature), ``thinking_delta`` events,
one ``signature_delta``, ``content_block_stop``. A user turn holding ``REDACTED_TRIGGER`` (the
string Anthropic documents for testing) adds a ``redacted_thinking`` block first (its ``data``,
no deltas). The thinking text has braces, as a model's draft often does.

``problem`` says (with the API's message) what the real API rejects: the thinking rules (budget
at least 1024 and below ``max_tokens``, temperature 1 only, no top_k, no forced tool_choice, a
model with thinking), a ``thinking`` block whose signature or a ``redacted_thinking`` block whose
data was changed, and, with thinking on, a final assistant turn whose tool calls are answered
but which does not start with its thinking; with thinking off, thinking in a final assistant
turn (a prefill).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import os
from typing import Any

from aiohttp import web

__all__ = ["REDACTED_TRIGGER", "answer_blocks", "problem", "thinking_on", "write_thinking"]

#: In a user turn, asks for a ``redacted_thinking`` block (the string from Anthropic's docs).
REDACTED_TRIGGER = (
    "ANTHROPIC_MAGIC_STRING_TRIGGER_REDACTED_THINKING_"
    "46C9A13E193C177646C7398A98432ECCCE4C1253D5E2D82641AC0E52CC2876CB"
)
_SECRET = os.urandom(32)
_DOCS = "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
#: Models of the server without extended thinking.
NO_THINKING = ("claude-3-5-haiku-20241022",)


def _mac(data: bytes) -> bytes:
    return hmac.new(_SECRET, data, hashlib.sha256).digest()


def signature(text: str) -> str:
    """The signature of a thinking text (only this server can make it)."""
    return base64.b64encode(b"sig1" + _mac(text.encode())).decode()


def redacted_data() -> str:
    """Encrypted-looking data that this server can recognise as its own."""
    nonce = os.urandom(24)
    return base64.b64encode(nonce + _mac(nonce)).decode()


def _redacted_ok(data: Any) -> bool:
    try:
        raw = base64.b64decode(str(data), validate=True)
    except ValueError:
        return False
    return len(raw) == 56 and hmac.compare_digest(raw[24:], _mac(raw[:24]))


def thinking_on(body: dict[str, Any]) -> bool:
    """Whether the request enables thinking."""
    thinking = body.get("thinking")
    return isinstance(thinking, dict) and thinking.get("type") == "enabled"


def _user_texts(body: dict[str, Any]) -> list[str]:
    texts = []
    for message in body.get("messages") or []:
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        else:
            texts += [str(b.get("text") or b.get("content") or "") for b in content or []]
    return texts


def _config_problem(body: dict[str, Any]) -> str | None:
    thinking = body.get("thinking")
    if thinking is None:
        return None
    if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "disabled"):
        return (
            "thinking: Input tag found using 'type' does not match any of the expected tags: "
            "'disabled', 'enabled'"
        )
    if thinking["type"] == "disabled":
        return None
    budget = thinking.get("budget_tokens")
    if isinstance(budget, bool) or not isinstance(budget, int):
        return "thinking.enabled.budget_tokens: Field required"
    if budget < 1024:
        return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
    if isinstance(body.get("max_tokens"), int) and body["max_tokens"] <= budget:
        return (
            "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our "
            f"documentation at {_DOCS}#max-tokens-and-context-window-size"
        )
    if body.get("temperature") not in (None, 1):
        return (
            "`temperature` may only be set to 1 when thinking is enabled. Please consult our "
            f"documentation at {_DOCS}#important-considerations-when-using-extended-thinking"
        )
    if body.get("top_k") is not None:
        return "`top_k` may not be set when thinking is enabled."
    if (body.get("tool_choice") or {}).get("type") in ("any", "tool"):
        return "Thinking may not be enabled when tool_choice forces tool use."
    return None


def _history_problem(body: dict[str, Any]) -> str | None:
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    for i, message in enumerate(messages):
        content = message.get("content")
        for j, block in enumerate(content if isinstance(content, list) else []):
            kind = block.get("type")
            if kind == "thinking" and (
                not isinstance(block.get("signature"), str)
                or not hmac.compare_digest(block["signature"], signature(str(block.get("thinking") or "")))
            ):
                return f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
            if kind == "redacted_thinking" and not _redacted_ok(block.get("data")):
                return f"messages.{i}.content.{j}: Invalid `data` in `redacted_thinking` block"
    assistants = [i for i, m in enumerate(messages) if m.get("role") == "assistant"]
    if not assistants:
        return None
    last = assistants[-1]
    content = messages[last].get("content")
    blocks = content if isinstance(content, list) else [{"type": "text"}]
    first = blocks[0].get("type") if blocks else "text"
    if not thinking_on(body):
        if last == len(messages) - 1 and any(
            b.get("type") in ("thinking", "redacted_thinking") for b in blocks
        ):
            return (
                f"messages.{last}.content.0: When thinking is disabled, an `assistant` message in the "
                "final position cannot contain `thinking`. To use thinking blocks, enable `thinking` "
                "in your request."
            )
        return None
    answered = last == len(messages) - 2 and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in messages[-1].get("content") or []
    )
    uses_tools = any(b.get("type") == "tool_use" for b in blocks)
    if uses_tools and answered and first not in ("thinking", "redacted_thinking"):
        return (
            f"messages.{last}.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
            f"`{first}`. When `thinking` is enabled, a final `assistant` message must start with a "
            "thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks). We "
            "recommend you include thinking blocks from previous turns. To avoid this requirement, "
            f"disable `thinking`. Please consult our documentation at {_DOCS}"
        )
    return None


def problem(body: dict[str, Any], model: str) -> str | None:
    """What the API rejects in ``body`` about thinking, in its words (None: nothing)."""
    if thinking_on(body) and model in NO_THINKING:
        return f"'{model}' does not support thinking."
    return _config_problem(body) or _history_problem(body)


def _thinking_text(body: dict[str, Any]) -> str:
    texts = _user_texts(body)
    last = (texts[-1] if texts else "").replace(REDACTED_TRIGGER, "").strip()
    return (
        f'The user wrote {last[:80]!r}. A first draft could be {{"draft": true, "steps": [1, 2}} '
        "but that is not it; I will answer as asked."
    )


def answer_blocks(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The thinking blocks that open the reply to ``body`` (none when thinking is off)."""
    if not thinking_on(body):
        return []
    blocks: list[dict[str, Any]] = []
    if any(REDACTED_TRIGGER in t for t in _user_texts(body)):
        blocks.append({"type": "redacted_thinking", "data": redacted_data()})
    text = _thinking_text(body)
    blocks.append({"type": "thinking", "thinking": text, "signature": signature(text)})
    return blocks


async def write_thinking(response: web.StreamResponse, blocks: list[dict[str, Any]], sse: Any) -> int:
    """Stream ``blocks`` as the API does (from index 0); the index of the next block."""
    for index, block in enumerate(blocks):
        if block["type"] == "redacted_thinking":
            start = dict(block)
        else:
            start = {"type": "thinking", "thinking": "", "signature": ""}
        await response.write(
            sse(
                "content_block_start", {"type": "content_block_start", "index": index, "content_block": start}
            )
        )
        if block["type"] == "thinking":
            text = block["thinking"]
            cuts = [0, len(text) // 3, 2 * len(text) // 3, len(text)]
            for a, b in itertools.pairwise(cuts):
                delta = {"type": "thinking_delta", "thinking": text[a:b]}
                event = {"type": "content_block_delta", "index": index, "delta": delta}
                await response.write(sse("content_block_delta", event))
            delta = {"type": "signature_delta", "signature": block["signature"]}
            await response.write(
                sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
            )
        await response.write(sse("content_block_stop", {"type": "content_block_stop", "index": index}))
    return len(blocks)
