"""Prompted tools: tool calling for servers and models that ignore ``tools``.

Seen here: llama.cpp's ``llama-server --jinja`` with a chat template without
tool support drops ``tools`` silently (same prompt tokens with and without)
and answers prose, even for ``tool_choice="required"``. For such a model the
request is rewritten:

- the tools go into the system prompt, with the instruction to answer a call
  as ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` (the Hermes
  format most open models are trained on);
- the conversation's earlier calls become that text, and tool results become
  user turns wrapped in ``<tool_response>`` (a template without tool support
  may not know the ``tool`` role);
- for ``tool_choice="required"`` or a named tool, ``call_schema`` is the JSON
  schema of a valid call, which the caller hands to the server's own grammar
  (``response_format`` json_schema, Ollama's ``format``, a grammar in process),
  so the call is valid by construction;
- the answer's calls are parsed back out of its text (``text_calls``), in
  every format open models write them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from abstractcore.core.types import Message, ToolSpec

__all__ = ["TOOL_CALL_OUTPUT", "call_schema", "prompted_messages", "tools_instruction"]

#: The name of the structured output a forced prompted call is constrained as (``call_schema``).
TOOL_CALL_OUTPUT = "tool_call"


def tools_instruction(tools: Sequence[ToolSpec], choice: str | None) -> str:
    """The system-prompt text that offers ``tools`` to a model without native tool calling."""
    listing = json.dumps(
        [{"name": t.name, "description": t.description, "parameters": dict(t.parameters)} for t in tools],
        ensure_ascii=False,
    )
    if choice == "required":
        must = "You must call one of these tools now."
    elif choice and choice not in ("auto", "none"):
        must = f"You must call the tool {choice!r} now."
    else:
        must = "Call a tool only when it helps to answer; otherwise answer directly."
    return (
        "You can call these tools (JSON schemas of their arguments):\n"
        f"{listing}\n"
        "To call a tool, write exactly one line per call and nothing else:\n"
        '<tool_call>{"name": "<tool name>", "arguments": {<arguments>}}</tool_call>\n'
        "The results come back as <tool_response>; then answer the user. " + must
    )


def _call_text(message: Message) -> str:
    calls = "".join(
        f"<tool_call>{json.dumps({'name': c.name, 'arguments': c.arguments}, ensure_ascii=False)}</tool_call>"
        for c in message.tool_calls
    )
    return (message.text + calls) if message.text else calls


def prompted_messages(
    messages: Sequence[Message], tools: Sequence[ToolSpec], choice: str | None
) -> list[Message]:
    """``messages`` for a model without native tools: tools in the system prompt, calls and
    results as text."""
    out: list[Message] = []
    for message in messages:
        if message.role == "assistant" and message.tool_calls:
            out.append(Message("assistant", _call_text(message)))
        elif message.role == "tool":
            payload = json.dumps({"name": message.name, "content": message.text}, ensure_ascii=False)
            result = f"<tool_response>\n{payload}\n</tool_response>"
            if out and out[-1].role == "user" and out[-1].text.startswith("<tool_response>"):
                out[-1] = replace(out[-1], content=out[-1].text + "\n" + result)
            else:
                out.append(Message("user", result))
        else:
            out.append(message)
    if choice == "none" or not tools:
        return out
    instruction = tools_instruction(tools, choice)
    for index, message in enumerate(out):
        if message.role == "system":
            out[index] = replace(message, content=f"{message.text}\n\n{instruction}")
            return out
    return [Message("system", instruction), *out]


def _one_call(tool: ToolSpec) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"name": {"const": tool.name}, "arguments": dict(tool.parameters)},
        "required": ["name", "arguments"],
        "additionalProperties": False,
    }


def call_schema(tools: Sequence[ToolSpec], choice: str | None) -> dict[str, Any] | None:
    """The JSON schema of one valid call for a forced ``choice`` ("required" or a tool's name), else None."""
    if choice in (None, "auto", "none"):
        return None
    chosen = [t for t in tools if choice == "required" or t.name == choice]
    if not chosen:
        return None
    if len(chosen) == 1:
        return _one_call(chosen[0])
    return {"anyOf": [_one_call(t) for t in chosen]}
