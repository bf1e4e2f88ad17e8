"""Provider-neutral data types: messages in, responses and stream chunks out.

Plain dataclasses, so ``import abstractcore`` stays cheap (no pydantic import).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Union

__all__ = [
    "ContentPart",
    "EmbeddingResponse",
    "GenerateResponse",
    "ImagePart",
    "Message",
    "ReasoningPart",
    "Role",
    "StreamChunk",
    "TextPart",
    "ToolCall",
    "ToolCallDelta",
    "ToolSpec",
    "Usage",
]

Role = Literal["system", "user", "assistant", "tool"]
_ROLES = ("system", "user", "assistant", "tool")
_MESSAGE_KEYS = ("role", "content", "tool_calls", "tool_call_id", "name", "reasoning", "cache_control")


@dataclass(frozen=True)
class TextPart:
    """A piece of text inside a message.

    ``cache_control`` (e.g. ``{"type": "ephemeral"}``) marks a prompt-cache breakpoint after this
    part, sent unchanged to a provider that caches on request (Anthropic); others ignore it.
    """

    text: str
    cache_control: Mapping[str, Any] | None = field(default=None, hash=False, repr=False)


@dataclass(frozen=True)
class ImagePart:
    """An image inside a message: raw bytes with a MIME type, or a URL."""

    data: bytes | None = None
    mime_type: str = "image/png"
    url: str | None = None
    #: A prompt-cache breakpoint after this image, as on ``TextPart``.
    cache_control: Mapping[str, Any] | None = field(default=None, hash=False)

    def __repr__(self) -> str:
        size = f"{len(self.data)} bytes" if self.data is not None else self.url
        return f"ImagePart({self.mime_type}, {size})"


ContentPart = Union[TextPart, ImagePart]


@dataclass(frozen=True, slots=True)
class ReasoningPart:
    """One block of a model's thinking, kept so the conversation can go on with it.

    ``text`` is the thinking as the model gave it (empty for a redacted block). ``signature``
    (Anthropic's) and ``redacted`` (the encrypted data of Anthropic's ``redacted_thinking``)
    must go back unchanged to the provider that made them; ``source`` names that provider
    ("anthropic", "openai", ...), and a wire format sends a part back only to its own kind:
    anywhere else it is dropped, never sent in a shape the other side rejects. ``id`` is the
    provider's id of the block (OpenAI Responses' reasoning item ``rs_...``, whose
    ``encrypted_content`` is then the ``signature``).
    """

    text: str = ""
    signature: str | None = None
    redacted: str | None = None
    source: str | None = None
    id: str | None = None

    def __repr__(self) -> str:
        kind = "redacted" if self.redacted is not None else f"{len(self.text)} chars"
        signed = ", signed" if self.signature else ""
        return f"ReasoningPart({kind}{signed}, source={self.source!r})"

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "a reasoning part") -> ReasoningPart:
        """A part from ``{"text": ..., "signature": ..., "redacted": ..., "source": ..., "id": ...}``
        (or a plain string: thinking text with no signature)."""
        if isinstance(data, ReasoningPart):
            return data
        if isinstance(data, str):
            return cls(data)
        if isinstance(data, Mapping) and set(data) <= {"text", "signature", "redacted", "source", "id"}:
            return cls(
                str(data.get("text") or ""),
                _optional_str(data.get("signature")),
                _optional_str(data.get("redacted")),
                _optional_str(data.get("source")),
                _optional_str(data.get("id")),
            )
        from abstractcore.core.errors import ConfigurationError

        raise ConfigurationError(
            f"{where} must be a ReasoningPart, a string or a dict with the keys text, signature, "
            f"redacted, source, id; got {data!r:.100}."
        )


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call requested by the model; ``arguments`` is already parsed JSON."""

    id: str
    name: str
    arguments: dict[str, Any]

    def arguments_json(self) -> str:
        """The arguments as a JSON string (the wire form most providers use)."""
        return json.dumps(self.arguments, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A fragment of a tool call while streaming, keyed by ``index``."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments_fragment: str = ""


@dataclass(frozen=True)
class ToolSpec:
    """A tool the model may call: a name, a description and a JSON-Schema for its arguments."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


@dataclass
class Message:
    """One turn of a conversation.

    ``content`` is text or a list of content parts (text and images). An
    assistant turn may carry ``tool_calls``, and the model's thinking as
    ``reasoning`` (``ReasoningPart``s, sent back to the provider that made
    them: ``GenerateResponse.message()`` keeps them); a ``tool`` turn answers
    one call and names it with ``tool_call_id``.
    """

    role: Role
    content: str | list[ContentPart] = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None
    reasoning: list[ReasoningPart] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.role not in _ROLES:
            from abstractcore.core.errors import ConfigurationError

            raise ConfigurationError(f"Message role must be one of {', '.join(_ROLES)}; got {self.role!r}.")

    @property
    def text(self) -> str:
        """The text of this message, image parts left out."""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content if isinstance(p, TextPart))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "a message") -> Message:
        """Build a message from the common ``{"role": ..., "content": ...}`` form."""
        from abstractcore.core.errors import ConfigurationError

        unknown = sorted(str(k) for k in data if k not in _MESSAGE_KEYS)
        if "role" not in data or unknown:
            problem = (
                f"has unknown keys {unknown}"
                if unknown and "role" in data
                else f"needs a 'role' (system/user/assistant/tool); got keys {sorted(map(str, data))}"
            )
            raise ConfigurationError(
                f"{where} {problem}. A message looks like {{'role': 'user', 'content': 'Hi'}}; "
                f"its keys are {', '.join(_MESSAGE_KEYS)}."
            )
        content = data.get("content") or ""
        parts: str | list[ContentPart]
        if isinstance(content, str):
            parts = content
        elif isinstance(content, list):
            parts = [_part_from_dict(p) for p in content]
        else:
            raise ConfigurationError(
                f"{where}: content must be a string or a list of parts; got {type(content).__name__}. "
                "A message looks like {'role': 'user', 'content': 'Hi'}."
            )
        if data.get("cache_control") is not None:  # the message's breakpoint: after its last part
            parts = _cached_last(parts, _cache_control_of(data, where))
        raw_calls = data.get("tool_calls") or []
        if not isinstance(raw_calls, list) or not all(isinstance(c, (ToolCall, Mapping)) for c in raw_calls):
            raise ConfigurationError(f"{where}: tool_calls must be a list of calls (dicts or ToolCall).")
        calls = [
            c
            if isinstance(c, ToolCall)
            else ToolCall(
                id=str(c.get("id", "")),
                name=str(c.get("name") or c.get("function", {}).get("name", "")),
                arguments=_arguments_of(c),
            )
            for c in raw_calls
        ]
        raw_reasoning = data.get("reasoning") or []
        if isinstance(raw_reasoning, (str, Mapping, ReasoningPart)):
            raw_reasoning = [raw_reasoning]
        if not isinstance(raw_reasoning, list):
            raise ConfigurationError(f"{where}: reasoning must be a list of ReasoningPart (or dicts).")
        return cls(
            role=data["role"],
            content=parts,
            tool_calls=calls,
            tool_call_id=data.get("tool_call_id"),
            name=data.get("name"),
            reasoning=[
                ReasoningPart.from_dict(r, where=f"{where}: reasoning[{i}]")
                for i, r in enumerate(raw_reasoning)
            ],
        )


def _arguments_of(call: Mapping[str, Any]) -> dict[str, Any]:
    args = call.get("arguments")
    if args is None:
        args = call.get("function", {}).get("arguments", {})
    if isinstance(args, str):
        try:
            args = json.loads(args or "{}")
        except ValueError:
            from abstractcore.core.errors import ConfigurationError

            raise ConfigurationError(
                f"tool call {call.get('id', '')!r} has arguments that are not JSON: {args[:100]!r}"
            ) from None
    if not isinstance(args, dict):
        from abstractcore.core.errors import ConfigurationError

        raise ConfigurationError(f"tool call arguments must be a JSON object; got {args!r}.")
    return dict(args)


def _cache_control_of(data: Mapping[str, Any], where: str) -> Mapping[str, Any] | None:
    control = data.get("cache_control")
    if control is None or (isinstance(control, Mapping) and isinstance(control.get("type"), str)):
        return control
    from abstractcore.core.errors import ConfigurationError

    raise ConfigurationError(
        f"{where}: cache_control must be a dict like {{'type': 'ephemeral'}} "
        f"(or {{'type': 'ephemeral', 'ttl': '1h'}}); got {control!r}."
    )


def _cached_last(parts: str | list[ContentPart], control: Mapping[str, Any] | None) -> list[ContentPart]:
    """``parts`` with ``control`` on the last one (a string becomes one text part)."""
    listed: list[ContentPart] = [TextPart(parts)] if isinstance(parts, str) else list(parts)
    if listed:
        last = listed[-1]
        listed[-1] = replace(last, cache_control=control)
    return listed


def _part_from_dict(part: Any) -> ContentPart:
    from abstractcore.core.errors import ConfigurationError

    if isinstance(part, (TextPart, ImagePart)):
        return part
    if isinstance(part, str):
        return TextPart(part)
    if isinstance(part, Mapping):
        kind = part.get("type")
        control = _cache_control_of(part, "a content part")
        if kind == "text":
            return TextPart(str(part.get("text", "")), cache_control=control)
        if kind == "image_url":
            url = part.get("image_url")
            url = url.get("url") if isinstance(url, Mapping) else url
            return ImagePart(url=str(url), cache_control=control)
    raise ConfigurationError(
        f"Unknown content part {part!r}; use {{'type': 'text', 'text': ...}} or an ImagePart."
    )


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one generation.

    ``counted`` is False when the back end reported the counts and True when
    abstractcore counted them itself, with the back end's own tokenizer, because
    the back end reported none (llama-cpp-python's server in streams): the
    prompt exactly as the back end tokenizes it, the answer token by token.
    ``reasoning_tokens`` are the thinking tokens among ``output_tokens``, where
    the back end reports them (0 otherwise). ``input_tokens`` counts every
    prompt token, cached ones included, on every provider; ``cached_tokens``
    are the prompt tokens read from the back end's cache and
    ``cache_write_tokens`` those written to it (Anthropic's cache writes), both
    among ``input_tokens``.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    counted: bool = False
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        """Counts summed (over the attempts of a re-ask, the steps of a tool loop, ...); counted
        when either part was."""
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.total_tokens + other.total_tokens,
            self.counted or other.counted,
            self.reasoning_tokens + other.reasoning_tokens,
            self.cached_tokens + other.cached_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
        )

    @classmethod
    def of(
        cls,
        input_tokens: int | None,
        output_tokens: int | None,
        *,
        counted: bool = False,
        reasoning_tokens: int | None = None,
        cached_tokens: int | None = None,
        cache_write_tokens: int | None = None,
    ) -> Usage:
        """Usage from two counts, with the total computed."""
        i, o = int(input_tokens or 0), int(output_tokens or 0)
        return cls(
            i,
            o,
            i + o,
            counted,
            int(reasoning_tokens or 0),
            int(cached_tokens or 0),
            int(cache_write_tokens or 0),
        )


@dataclass(slots=True)
class GenerateResponse:
    """The answer to one ``generate`` call.

    ``content`` is the answer only; a thinking model's thinking is in ``reasoning`` (None when
    there is none) and, as the blocks to send back, in ``reasoning_parts``.
    """

    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage | None = None
    finish_reason: str | None = None
    model: str | None = None
    provider: str | None = None
    raw: Any = field(default=None, repr=False)
    #: USD, from genai-prices' offline data; None for local and unpriced models.
    cost: float | None = None
    #: How tools reached the model: "native", "prompted" (in the prompt, calls parsed from the
    #: text) or "prompted+grammar" (the forced call constrained by the server's grammar).
    tool_strategy: str | None = None
    #: The router's deployment that answered (its name); None when no router served the call.
    deployment: str | None = None
    #: The model's thinking, apart from the answer (None when it gave none).
    reasoning: str | None = None
    #: The thinking as the blocks that continue the conversation (signatures, redacted data).
    reasoning_parts: list[ReasoningPart] = field(default_factory=list)

    def __str__(self) -> str:
        return self.content

    def message(self) -> Message:
        """This answer as the assistant turn of a conversation: text, tool calls and the thinking
        blocks the provider needs back on the next call."""
        return Message(
            "assistant", self.content, tool_calls=list(self.tool_calls), reasoning=list(self.reasoning_parts)
        )


class _DeferredCost:
    """A price computed when ``cost`` is first read (``defer_cost``)."""

    __slots__ = ("compute",)

    def __init__(self, compute: Callable[[], float | None]) -> None:
        self.compute = compute


_COST_SLOT: Any = GenerateResponse.__dict__["cost"]  # the slot's own descriptor


def _read_cost(self: GenerateResponse) -> float | None:
    value = _COST_SLOT.__get__(self, GenerateResponse)
    if type(value) is _DeferredCost:
        value = value.compute()
        _COST_SLOT.__set__(self, value)
    return value  # type: ignore[no-any-return]


# ``cost`` reads through a property, so an answer can be priced when it is first read: a fresh
# process's first call then does not wait for the price list to load (genai-prices, ~0.1-0.3 s).
setattr(GenerateResponse, "cost", property(_read_cost, _COST_SLOT.__set__, doc="USD; None when unpriced."))  # noqa: B010


def defer_cost(response: GenerateResponse, compute: Callable[[], float | None]) -> None:
    """Price ``response`` with ``compute()`` when its ``cost`` is first read (once)."""
    _COST_SLOT.__set__(response, _DeferredCost(compute))


@dataclass(slots=True)
class StreamChunk:
    """One piece of a streamed answer.

    ``content`` is the text delta. Each tool call is delivered whole, with its
    full arguments, exactly once, on the chunk where it completes
    (``tool_calls``; for OpenAI-style streams, which do not mark the end of a
    call, that is the last chunk): collect ``tool_calls`` across chunks.
    ``tool_call_deltas`` carries the raw fragments for callers who want them.
    The last chunk carries ``finish_reason`` and ``usage`` (reported by the
    back end, or counted where it reports none: ``usage.counted``).
    ``reasoning`` is a delta of the model's thinking (kept out of ``content``);
    the last chunk also has the whole thinking's ``reasoning_parts``, the
    blocks to send back (signatures included).
    """

    content: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_deltas: list[ToolCallDelta] = field(default_factory=list)
    model: str | None = None
    raw: Any = field(default=None, repr=False)
    #: USD of the whole answer, on the last chunk (None for local and unpriced models).
    cost: float | None = None
    #: The router's deployment streaming the answer (its name); None when no router serves the call.
    deployment: str | None = None
    #: A delta of the model's thinking.
    reasoning: str = ""
    #: On the last chunk: the whole thinking as the blocks to send back.
    reasoning_parts: list[ReasoningPart] = field(default_factory=list)

    def __str__(self) -> str:
        return self.content


@dataclass(slots=True)
class EmbeddingResponse:
    """The answer to one ``embed`` call: one vector (a list of floats) per input text, in order."""

    vectors: list[list[float]] = field(default_factory=list)
    usage: Usage | None = None
    model: str | None = None
    provider: str | None = None
    #: USD, where the provider has a price list (as on ``GenerateResponse``).
    cost: float | None = None

    def __len__(self) -> int:
        return len(self.vectors)

    def __getitem__(self, index: int) -> list[float]:
        return self.vectors[index]
