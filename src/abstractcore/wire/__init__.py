"""The wire protocols, one module per protocol, both directions in it.

- ``openai_chat``: OpenAI Chat Completions (client: the OpenAI-compatible providers; server:
  ``abstractcore.server``'s ``/v1/chat/completions``);
- ``anthropic_messages``: Anthropic Messages (client: the ``anthropic`` provider; server:
  ``/v1/messages``);
- ``ollama_chat``: Ollama's ``/api/chat`` (client only: the server does not speak it);
- ``fields``: typed reads of a request body (``FieldError`` names the field at fault) and the
  ``ParsedCall`` a server reads a chat request into; ``encoding``: compact JSON, SSE framing, ids.

Pure translation, no I/O: a client's request body from ``Message``s and ``ToolSpec``s and its
reply or stream events back to ``GenerateResponse`` / ``StreamChunk``; a server's request body to
a ``ParsedCall`` and its answer back to a reply or stream. The two directions of a protocol share
its shapes and its one finish-reason map, so a request built by one is parsed back by the other
unchanged (``tests/wire`` proves it).
"""
