"""abstractcore: one API for every LLM, remote or in-process, sync and async.

from abstractcore import create_llm
llm = create_llm("openai", model="gpt-4o-mini")
print(llm.generate("Hello").content)          # blocking
r = await llm.agenerate("Hello")               # asyncio or trio
"""

from __future__ import annotations

from abstractcore._lazy import lazy_exports as _lazy_exports
from abstractcore._version import __version__ as __version__

# ``typing`` is not imported: a bare interpreter has not loaded it either (mypy reads this name).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any as _Any

    from abstractcore._sync import LLM
    from abstractcore._sync_session import Session
    from abstractcore.batch import BatchError
    from abstractcore.batch_jobs import BatchJob, BatchLimits
    from abstractcore.core.capabilities import Capabilities
    from abstractcore.core.config import Timeout
    from abstractcore.core.errors import (
        AbstractCoreError,
        AuthenticationError,
        BackendNotInstalledError,
        BadRequestError,
        BatchItemError,
        ConfigurationError,
        ContextLengthExceededError,
        EndpointNotFoundError,
        LocalBackendError,
        MCPConnectionError,
        ModelLoadError,
        ModelNotFoundError,
        PermissionDeniedError,
        ProviderConnectionError,
        ProviderError,
        ProviderStatusError,
        ProviderTimeoutError,
        RateLimitError,
        ResponseFormatError,
        RunTimeoutError,
        ServerError,
        StructuredOutputError,
        ToolCallError,
        ToolLoopError,
    )
    from abstractcore.core.retry import RetryConfig
    from abstractcore.core.types import (
        EmbeddingResponse,
        GenerateResponse,
        ImagePart,
        Message,
        ReasoningPart,
        StreamChunk,
        TextPart,
        ToolCall,
        ToolSpec,
        Usage,
    )
    from abstractcore.features.telemetry import instrument
    from abstractcore.features.tools.schema import Tool, tool
    from abstractcore.integrations.mcp import MCPTools
    from abstractcore.registry import PROVIDERS
    from abstractcore.router import Deployment, NoDeploymentAvailableError, RouteAttempt
    from abstractcore.run import RunEvent, RunResult
del TYPE_CHECKING

# Every public name but ``create_llm`` and ``__version__`` is imported on first use (PEP 562), so
# ``import abstractcore`` costs next to nothing and a call loads only what it needs.
__getattr__, __dir__ = _lazy_exports(
    __name__,
    {
        "abstractcore._sync": ("LLM",),
        "abstractcore._sync_session": ("Session",),
        "abstractcore.batch": ("BatchError",),
        "abstractcore.batch_jobs": ("BatchJob", "BatchLimits"),
        "abstractcore.core.capabilities": ("Capabilities",),
        "abstractcore.core.config": ("Timeout",),
        "abstractcore.core.retry": ("RetryConfig",),
        "abstractcore.core.errors": (
            "AbstractCoreError",
            "AuthenticationError",
            "BackendNotInstalledError",
            "BadRequestError",
            "BatchItemError",
            "ConfigurationError",
            "ContextLengthExceededError",
            "EndpointNotFoundError",
            "LocalBackendError",
            "MCPConnectionError",
            "ModelLoadError",
            "ModelNotFoundError",
            "PermissionDeniedError",
            "ProviderConnectionError",
            "ProviderError",
            "ProviderStatusError",
            "ProviderTimeoutError",
            "RateLimitError",
            "ResponseFormatError",
            "RunTimeoutError",
            "ServerError",
            "StructuredOutputError",
            "ToolCallError",
            "ToolLoopError",
        ),
        "abstractcore.core.types": (
            "EmbeddingResponse",
            "GenerateResponse",
            "ImagePart",
            "Message",
            "ReasoningPart",
            "StreamChunk",
            "TextPart",
            "ToolCall",
            "ToolSpec",
            "Usage",
        ),
        "abstractcore.features.telemetry": ("instrument",),
        "abstractcore.features.tools.schema": ("Tool", "tool"),
        "abstractcore.integrations.mcp": ("MCPTools",),
        "abstractcore.registry": ("PROVIDERS",),
        "abstractcore.router": ("Deployment", "NoDeploymentAvailableError", "RouteAttempt"),
        "abstractcore.run": ("RunEvent", "RunResult"),
    },
)

__all__ = [
    "LLM",
    "PROVIDERS",
    "AbstractCoreError",
    "AuthenticationError",
    "BackendNotInstalledError",
    "BadRequestError",
    "BatchError",
    "BatchItemError",
    "BatchJob",
    "BatchLimits",
    "Capabilities",
    "ConfigurationError",
    "ContextLengthExceededError",
    "Deployment",
    "EmbeddingResponse",
    "EndpointNotFoundError",
    "GenerateResponse",
    "ImagePart",
    "LocalBackendError",
    "MCPConnectionError",
    "MCPTools",
    "Message",
    "ReasoningPart",
    "ModelLoadError",
    "ModelNotFoundError",
    "NoDeploymentAvailableError",
    "PermissionDeniedError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderStatusError",
    "ProviderTimeoutError",
    "RateLimitError",
    "ResponseFormatError",
    "RetryConfig",
    "RouteAttempt",
    "ServerError",
    "Session",
    "StreamChunk",
    "StructuredOutputError",
    "TextPart",
    "Tool",
    "RunEvent",
    "RunResult",
    "RunTimeoutError",
    "Timeout",
    "ToolCall",
    "ToolCallError",
    "ToolLoopError",
    "ToolSpec",
    "Usage",
    "create_llm",
    "instrument",
    "tool",
]


def create_llm(provider: str, model: str | None = None, **config: _Any) -> LLM:
    """Create an LLM client: ``create_llm("ollama", model="qwen2.5-coder:7b", temperature=0.3)``.

    ``config`` holds connection options (``api_key``, ``base_url``, ``timeout``,
    ``retry_config``, ``headers``, ``max_connections``, ``http_client``, and
    back-end options of in-process providers) and default generation
    parameters (``temperature``, ``max_tokens``, ``top_p``, ``stop``, ``seed``,
    ...), which calls may override. Everything is validated here: an unknown
    provider or keyword, or an invalid value, raises ``ConfigurationError``
    before any request is sent.

    The returned object serves blocking callers (``generate``, ``stream``,
    ``unload``, ``list_models``) and async ones (``agenerate``, ``astream``,
    ``aunload``, ``alist_models``), also both at once.
    """
    from abstractcore._sync import LLM
    from abstractcore.registry import create_provider

    return LLM(create_provider(provider, model, **config))
