"""A conversation that remembers: ``chat = llm.session(system_prompt=..., tools=[...])``.

``await chat.asend("...")`` (and its blocking twin ``chat.send``) adds the
user's turn, asks the model (running the tool loop when the session has
tools) and keeps the answer, so the next ``send`` continues the conversation.
``chat.messages`` is the history; ``chat.save(path)`` writes it as JSON (a
schema with a ``version`` field) and ``Session.load(path, llm)`` reads it
back. With ``max_history_tokens`` the oldest turns are dropped first when
the prompt grows past that budget (the system prompt always stays; a turn is
dropped whole, so tool results never lose the call they answer; the newest
turn is always sent). The budget is the prompt's tokens as the back end
counts them (``llm.count_tokens``: chat template, system prompt and tool
definitions included) where it can count: the model in process, llama.cpp's
servers. Where it cannot, tokens are estimated at four characters each (the
system prompt included, the tool definitions not).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from abstractcore.core.errors import ConfigurationError
from abstractcore.core.types import GenerateResponse, ImagePart, Message, TextPart, Usage
from abstractcore.features.request import CallKwargs, build_request
from abstractcore.run import RunResult, arun, as_text, pipeline_of

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["SESSION_VERSION", "AsyncSession"]

#: Version of the JSON that ``save`` writes; ``load`` refuses newer ones.
SESSION_VERSION = 1
_CHARS_PER_TOKEN = 4
_S = TypeVar("_S", bound="AsyncSession")


def _message_json(message: Message) -> dict[str, Any]:
    content: Any
    if isinstance(message.content, str):
        content = message.content
    else:
        content = []
        for part in message.content:
            if isinstance(part, TextPart):
                content.append({"type": "text", "text": part.text})
            elif part.url:
                content.append({"type": "image_url", "image_url": {"url": part.url}})
            else:
                from abstractcore.features.media import base64_image

                encoded = base64_image(part)
                url = f"data:{encoded[0]};base64,{encoded[1]}" if encoded else ""
                content.append({"type": "image_url", "image_url": {"url": url}})
    out: dict[str, Any] = {"role": message.role, "content": content}
    if message.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "name": c.name, "arguments": c.arguments} for c in message.tool_calls
        ]
    if message.tool_call_id:
        out["tool_call_id"] = message.tool_call_id
    if message.name:
        out["name"] = message.name
    return out


def _tokens(message: Message) -> int:
    size = len(message.text) + sum(len(json.dumps(c.arguments)) + len(c.name) for c in message.tool_calls)
    if not isinstance(message.content, str):
        size += 1000 * sum(isinstance(p, ImagePart) for p in message.content)
    return size // _CHARS_PER_TOKEN + 4


class AsyncSession:
    """A conversation with one model; see the module docstring.

    The async part, written by hand: ``abstractcore.Session`` (generated in
    ``_sync_session.py`` by ``scripts/gen_sync.py``) adds a blocking twin of
    every public ``a…`` method (``asend`` -> ``send``).
    """

    def __init__(
        self,
        llm: Any,
        *,
        system_prompt: str | None = None,
        tools: Sequence[Any] | None = None,
        max_history_tokens: int | None = None,
        max_turns: int = 10,
        **params: Any,
    ) -> None:
        if max_history_tokens is not None and (
            isinstance(max_history_tokens, bool)
            or not isinstance(max_history_tokens, int)
            or max_history_tokens <= 0
        ):
            raise ConfigurationError(
                f"max_history_tokens must be a positive integer; got {max_history_tokens!r}."
            )
        self.llm = llm
        self.system_prompt = system_prompt
        self.tools = list(tools or [])
        self.max_history_tokens = max_history_tokens
        self.max_turns = max_turns
        self.params = params
        self.messages: list[Message] = []
        self.usage = Usage()
        #: False once the back end said it cannot count tokens (the budget is then estimated).
        self._counts = True

    def __repr__(self) -> str:
        return f"Session({self.llm!r}, {len(self.messages)} messages)"

    # -- talking ----------------------------------------------------------------------------

    async def asend(
        self, prompt: str, *, response_model: Any = None, **kwargs: Unpack[CallKwargs]
    ) -> RunResult | Any:
        """Add ``prompt`` as the user's turn, get the answer, keep both; returns the answer.

        With tools the tool loop runs and a ``RunResult`` is returned; without,
        the ``GenerateResponse`` (or the ``response_model`` value). The keyword
        arguments (``CallKwargs``) override the session's for this turn.
        """
        if not isinstance(prompt, str) or not prompt.strip():
            raise ConfigurationError(f"send() needs a non-empty prompt string; got {prompt!r}.")
        history = [*self.messages, Message("user", prompt)]
        merged: dict[str, Any] = {**self.params, **kwargs}
        sent = await self._fitted(history, merged, response_model)
        if self.tools:
            result = await arun(
                self.llm,
                messages=sent,
                tools=self.tools,
                system_prompt=self.system_prompt,
                max_turns=self.max_turns,
                response_model=response_model,
                **merged,
            )
            new = result.messages[len(sent) + (1 if self.system_prompt else 0) :]
            self.messages = [*history, *new]
            self.usage = self.usage + result.usage
            return result
        request = build_request(
            messages=sent, system_prompt=self.system_prompt, response_model=response_model, **merged
        )
        answer = await pipeline_of(self.llm)._send(request)
        reply = (
            answer.message()
            if isinstance(answer, GenerateResponse)
            else Message("assistant", as_text(answer))
        )
        self.messages = [*history, reply]
        usage = getattr(answer, "usage", None)
        if usage is not None:
            self.usage = self.usage + usage
        return answer

    def clear(self) -> None:
        """Forget the conversation (the system prompt and tools stay)."""
        self.messages = []

    async def _fitted(
        self, history: list[Message], params: dict[str, Any], response_model: Any
    ) -> list[Message]:
        """The most recent turns of ``history`` within the token budget, counted by the back end
        where it can (a binary search over the turns' starts), else estimated."""
        budget = self.max_history_tokens
        if budget is None:
            return history
        if self._counts:
            try:
                return await self._counted_fit(history, budget, params, response_model)
            except ConfigurationError as exc:
                if "cannot count tokens" not in str(exc):
                    raise
                self._counts = False
        return self._estimated_fit(history, budget)

    async def _counted_fit(
        self, history: list[Message], budget: int, params: dict[str, Any], response_model: Any
    ) -> list[Message]:
        pipeline = pipeline_of(self.llm)

        async def fits(messages: list[Message]) -> bool:
            request = build_request(
                messages=messages,
                system_prompt=self.system_prompt,
                tools=self.tools or None,
                response_model=response_model,
                **params,
            )
            return bool(await pipeline._count(request) <= budget)

        if await fits(history):
            return history
        starts = [i for i, m in enumerate(history) if m.role == "user" and i > 0]
        best = starts[-1] if starts else 0  # the newest turn goes, whatever it costs
        low, high = 0, len(starts) - 2
        while low <= high:  # the earliest turn start whose suffix fits (counts fall as turns go)
            middle = (low + high) // 2
            if await fits(history[starts[middle] :]):
                best, high = starts[middle], middle - 1
            else:
                low = middle + 1
        return history[best:]

    def _estimated_fit(self, history: list[Message], budget: int) -> list[Message]:
        budget -= len(self.system_prompt or "") // _CHARS_PER_TOKEN
        kept: list[Message] = []
        used = 0
        for message in reversed(history):
            cost = _tokens(message)
            if kept and used + cost > budget:
                break
            kept.append(message)
            used += cost
        kept.reverse()
        while kept and kept[0].role in ("tool", "assistant") and len(kept) > 1:
            kept.pop(0)  # start at a user turn: a tool result must not lose its call
        return kept

    # -- saving -----------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The session as plain JSON data (what ``save`` writes)."""
        return {
            "version": SESSION_VERSION,
            "model": getattr(self.llm, "model", None),
            "system_prompt": self.system_prompt,
            "max_history_tokens": self.max_history_tokens,
            "messages": [_message_json(m) for m in self.messages],
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the conversation to ``path`` as JSON (tools are code: they are not saved)."""
        target = Path(path)
        target.write_text(json.dumps(self.to_json(), ensure_ascii=False, indent=2))
        return target

    @classmethod
    def load(
        cls: type[_S],
        path: str | os.PathLike[str],
        llm: Any,
        *,
        tools: Sequence[Any] | None = None,
        **params: Any,
    ) -> _S:
        """A session continuing the conversation saved at ``path``, with ``llm`` (and ``tools``)."""
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"Cannot read a session from {str(path)!r}: {exc}") from None
        version = data.get("version") if isinstance(data, dict) else None
        if not isinstance(version, int) or version > SESSION_VERSION:
            raise ConfigurationError(
                f"{str(path)!r} is not a session this version of abstractcore can read "
                f"(version {version!r}; this one reads up to {SESSION_VERSION})."
            )
        session = cls(
            llm,
            system_prompt=data.get("system_prompt"),
            tools=tools,
            max_history_tokens=data.get("max_history_tokens"),
            **params,
        )
        session.messages = [
            Message.from_dict(m, where=f"messages[{i}]") for i, m in enumerate(data.get("messages") or [])
        ]
        return session
