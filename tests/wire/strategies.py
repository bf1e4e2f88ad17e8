"""Hypothesis strategies for the wire round trips: calls in the canonical form both directions of a
protocol keep (what a parser gives back is what a builder was given)."""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import strategies as st

from abstractcore.core.types import (
    ContentPart,
    GenerateResponse,
    ImagePart,
    Message,
    TextPart,
    ToolCall,
    ToolSpec,
    Usage,
)

#: Plain text of any kind (no surrogates: JSON carries them, but a model never sends them alone).
texts = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=30)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=6,
)
arguments = st.dictionaries(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), json_values, max_size=3)
tool_names = st.from_regex(r"[a-zA-Z][a-zA-Z0-9_-]{0,20}", fullmatch=True).filter(
    lambda n: n not in ("auto", "none", "required", "any")
)
call_ids = st.from_regex(r"call_[a-z0-9]{1,10}", fullmatch=True)
images = st.builds(
    ImagePart, data=st.binary(min_size=1, max_size=40), mime_type=st.sampled_from(["image/png", "image/jpeg"])
)
usages = st.builds(Usage.of, st.integers(0, 10**6), st.integers(0, 10**6))


@st.composite
def tool_specs(draw: st.DrawFn) -> list[ToolSpec]:
    """Tools with unique names and small object schemas."""
    names = draw(st.lists(tool_names, max_size=3, unique=True))
    return [
        ToolSpec(
            name=name,
            description=draw(st.sampled_from(["", "Does a thing."])),
            parameters={
                "type": "object",
                "properties": {
                    key: {"type": "string"} for key in draw(st.lists(st.sampled_from("abc"), unique=True))
                },
            },
        )
        for name in names
    ]


def tool_calls(*, min_size: int = 0) -> st.SearchStrategy[list[ToolCall]]:
    """Calls with unique ids."""
    call = st.builds(ToolCall, id=call_ids, name=tool_names, arguments=arguments)
    return st.lists(call, min_size=min_size, max_size=3, unique_by=lambda c: c.id)


@st.composite
def conversations(draw: st.DrawFn, *, images_in_user_turns: bool) -> list[Message]:
    """A conversation in canonical form: an optional system prompt, then turns where a user's
    text or images, an assistant's text and/or calls, and the results of those calls alternate."""
    out: list[Message] = []
    if draw(st.booleans()):
        out.append(Message("system", draw(texts)))
    for _ in range(draw(st.integers(1, 3))):
        if images_in_user_turns and draw(st.booleans()):
            parts: list[ContentPart] = [
                TextPart(draw(texts)),
                *draw(st.lists(images, min_size=1, max_size=2)),
            ]
            out.append(Message("user", parts))
        else:
            out.append(Message("user", draw(texts)))
        calls = draw(tool_calls())
        out.append(
            Message("assistant", draw(texts) if not calls or draw(st.booleans()) else "", tool_calls=calls)
        )
        out += [Message("tool", draw(texts), tool_call_id=call.id) for call in calls]
        if not calls:
            continue
        out.append(Message("user", draw(texts)))
        out.append(Message("assistant", draw(texts)))
    return out


@st.composite
def answers(draw: st.DrawFn, *, finish_reasons: list[str]) -> GenerateResponse:
    """An answer: text and/or calls, usage, a finish reason consistent with the calls."""
    calls = draw(tool_calls())
    content = draw(texts) if not calls or draw(st.booleans()) else ""
    reason = "tool_calls" if calls else draw(st.sampled_from(finish_reasons))
    return GenerateResponse(content=content, tool_calls=calls, usage=draw(usages), finish_reason=reason)


def split(text: str, cuts: list[int]) -> list[str]:
    """``text`` in pieces at the ``cuts`` (sorted, inside it), no empty piece."""
    points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    return [text[a:b] for a, b in itertools.pairwise(points) if b > a]


def as_any(value: Any) -> Any:
    """``value`` through JSON, as the bytes on the wire would give it back."""
    return json.loads(json.dumps(value))
