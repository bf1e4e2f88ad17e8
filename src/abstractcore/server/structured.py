"""A JSON answer under a schema (OpenAI's ``response_format``, Anthropic's ``output_config``),
asked of any back end through its public API and handed back as the answer's text.

Without tools in the request the schema becomes one forced tool call: every back end constrains
a forced call (llama.cpp's grammar in process and in its servers, OpenAI's and Anthropic's tool
input), and the call's arguments are the JSON, streamed as they arrive. A request that also
offers tools gets the schema as an instruction instead (the model may still call its tools).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from abstractcore.core.types import GenerateResponse, Message, StreamChunk, ToolSpec
from abstractcore.features.structured import WRAP_KEY, OutputSpec
from abstractcore.server.call import Call

__all__ = ["JsonAnswer"]


class JsonAnswer:
    """The schema an answer must follow, and how to turn the back end's reply into that text."""

    def __init__(self, schema: dict[str, Any], name: str = "json_answer") -> None:
        self.spec = OutputSpec.from_schema(schema, name)
        self.wrapped = schema.get("type") != "object"  # a tool's input is always an object
        parameters = (
            {"type": "object", "properties": {WRAP_KEY: schema}, "required": [WRAP_KEY]}
            if self.wrapped
            else schema
        )
        self.tool = ToolSpec(self.spec.name, "Give the answer as this JSON.", parameters)
        self.forced = False

    def apply(self, call: Call) -> None:
        """Ask ``call`` for the JSON: a forced tool call, or an instruction beside the client's tools."""
        if call.tools:
            call.messages = [Message("system", self.spec.instruction), *call.messages]
            return
        self.forced = True
        call.tools = [self.tool]
        call.tool_choice = self.tool.name

    def _text(self, arguments: dict[str, Any]) -> str:
        value = arguments.get(WRAP_KEY) if self.wrapped else arguments
        return json.dumps(value, ensure_ascii=False)

    def response(self, response: GenerateResponse) -> GenerateResponse:
        """The reply with the forced call's arguments as its text."""
        if not self.forced or not response.tool_calls:
            return response
        finish = "stop" if response.finish_reason == "tool_calls" else response.finish_reason
        text = self._text(response.tool_calls[0].arguments)
        return replace(response, content=response.content + text, tool_calls=[], finish_reason=finish)

    async def chunks(self, chunks: AsyncIterator[StreamChunk]) -> AsyncIterator[StreamChunk]:
        """The stream with the forced call's arguments as text deltas (whole at the end when the
        back end delivers the call whole, or when the schema was wrapped). Only for a forced call."""
        fragments = False
        try:
            async for chunk in chunks:
                text = chunk.content
                pieces = [d.arguments_fragment for d in chunk.tool_call_deltas if d.arguments_fragment]
                fragments = fragments or bool(pieces)
                if pieces and not self.wrapped:
                    text += "".join(pieces)
                if chunk.tool_calls and (self.wrapped or not fragments):
                    text += self._text(chunk.tool_calls[0].arguments)
                finish = "stop" if chunk.finish_reason == "tool_calls" else chunk.finish_reason
                if text or finish or chunk.usage:
                    yield StreamChunk(
                        content=text, finish_reason=finish, usage=chunk.usage, model=chunk.model
                    )
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()
