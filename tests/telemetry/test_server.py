"""A request to ``abstractcore serve`` carrying a W3C ``traceparent`` continues that trace: the
server span is the caller's child and the back end's ``chat`` span is the server span's child
(the served model is a provider on the fake OpenAI server)."""

from __future__ import annotations

import httpx
import pytest
from opentelemetry.trace import SpanKind

from abstractcore import create_llm
from tests.server.support import KEY as SERVER_KEY
from tests.server.support import running_server
from tests.servers.openai_fake import KEY, FakeOpenAI
from tests.telemetry.conftest import Traced

pytestmark = pytest.mark.slow

TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
CALLER_SPAN_ID = 0x00F067AA0BA902B7


def test_a_served_request_continues_the_callers_trace(fake: FakeOpenAI, traced: Traced) -> None:
    backend = create_llm("openai", model="gpt-test", base_url=fake.base_url, api_key=KEY)
    with running_server({"gpt-test": backend}) as server:
        reply = httpx.post(
            f"{server.openai_url}/chat/completions",
            json={"model": "gpt-test", "messages": [{"role": "user", "content": "Hi"}]},
            headers={
                "authorization": f"Bearer {SERVER_KEY}",
                "traceparent": f"00-{TRACE_ID:032x}-{CALLER_SPAN_ID:016x}-01",
            },
            timeout=30,
        )
    assert reply.status_code == 200, reply.text
    served = traced.named("POST /v1/chat/completions")
    assert served.kind is SpanKind.SERVER
    assert served.context.trace_id == TRACE_ID
    assert served.parent is not None and served.parent.span_id == CALLER_SPAN_ID
    assert dict(served.attributes or {})["http.response.status_code"] == 200
    chat = traced.named("chat gpt-test")
    assert chat.context.trace_id == TRACE_ID
    assert chat.parent is not None and chat.parent.span_id == served.context.span_id
