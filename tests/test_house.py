"""The layout is the design: imports point down the layers of ARCHITECTURE.md, and the package
exports exactly its intended public surface."""

from __future__ import annotations

import ast
from pathlib import Path

import abstractcore

SRC = Path(abstractcore.__file__).parent

#: The layers of ARCHITECTURE.md ("Layers"), bottom to top: a module imports only its own layer
#: and the ones below it.
LAYER_ORDER = ("core", "transport", "engines", "features", "providers", "apps", "sync face", "faces")

#: The layer of every module of the package. A new module goes here, in the layer its folder (or
#: ARCHITECTURE.md) says. A module listed here that does not exist (yet) is no error: the names of
#: modules being written in parallel for issue 18 are listed already.
MODULE_LAYERS = {
    # core
    "abstractcore._lazy": "core",
    "abstractcore._version": "core",
    "abstractcore.core": "core",
    "abstractcore.core.capabilities": "core",
    "abstractcore.core.config": "core",
    "abstractcore.core.errors": "core",
    "abstractcore.core.retry": "core",
    "abstractcore.core.secrets": "core",
    "abstractcore.core.types": "core",
    # transport
    "abstractcore.transport": "transport",
    "abstractcore.transport.aiohttp_transport": "transport",
    "abstractcore.transport.base": "transport",
    "abstractcore.transport.error_mapping": "transport",
    "abstractcore.transport.exiting": "transport",
    "abstractcore.transport.http": "transport",
    "abstractcore.transport.httpx_transport": "transport",
    "abstractcore.transport.ndjson": "transport",
    "abstractcore.transport.propagation": "transport",
    "abstractcore.transport.sse": "transport",
    "abstractcore.transport.threads": "transport",
    # engines
    "abstractcore.engines": "engines",
    "abstractcore.engines.base": "engines",
    "abstractcore.engines.embedding": "engines",
    "abstractcore.engines.gil": "engines",
    "abstractcore.engines.worker": "engines",
    "abstractcore.engines.host": "engines",
    "abstractcore.engines.llamacpp": "engines",
    "abstractcore.engines.llamacpp_batch": "engines",
    "abstractcore.engines.llamacpp_batch.abort": "engines",
    "abstractcore.engines.llamacpp_batch.engine": "engines",
    "abstractcore.engines.llamacpp_batch.loading": "engines",
    "abstractcore.engines.llamacpp_batch.request": "engines",
    "abstractcore.engines.llamacpp_batch.sampling": "engines",
    "abstractcore.engines.llamacpp_batch.scheduler": "engines",
    "abstractcore.engines.llamacpp_batch.sequences": "engines",
    "abstractcore.engines.llamacpp_batch.vocab": "engines",
    "abstractcore.engines.llamacpp_counting": "engines",
    "abstractcore.engines.llamacpp_native": "engines",
    "abstractcore.engines.mlx": "engines",
    "abstractcore.engines.mlx_batch": "engines",
    "abstractcore.engines.model_files": "engines",
    "abstractcore.engines.transformers": "engines",
    "abstractcore.engines.warmup": "engines",
    # features
    "abstractcore.features": "features",
    "abstractcore.features.constrain": "features",
    "abstractcore.features.cost": "features",
    "abstractcore.features.telemetry": "features",
    "abstractcore.features.telemetry.spans": "features",
    "abstractcore.features.telemetry.state": "features",
    "abstractcore.features.telemetry.attributes": "features",
    "abstractcore.features.telemetry.environment": "features",
    "abstractcore.features.telemetry.tracing": "features",
    "abstractcore.features.hosted_models": "features",
    "abstractcore.features.media": "features",
    "abstractcore.features.reasoning": "features",
    "abstractcore.features.request": "features",
    "abstractcore.features.hooks": "features",
    "abstractcore.features.structured_strategy": "features",
    "abstractcore.features.structured": "features",
    "abstractcore.features.tools": "features",
    "abstractcore.features.tools.accumulator": "features",
    "abstractcore.features.tools.forced": "features",
    "abstractcore.features.tools.prompted": "features",
    "abstractcore.features.tools.schema": "features",
    "abstractcore.features.tools.results": "features",
    "abstractcore.features.tools.sources": "features",
    "abstractcore.features.tools.strategy": "features",
    "abstractcore.features.tools.text_calls": "features",
    "abstractcore.wire": "features",
    "abstractcore.wire.anthropic_messages": "features",
    "abstractcore.wire.ollama_chat": "features",
    "abstractcore.wire.openai_chat": "features",
    "abstractcore.wire.openai_responses": "features",
    "abstractcore.wire.openai_responses.client": "features",
    "abstractcore.wire.openai_responses.events": "features",
    "abstractcore.wire.openai_responses.shapes": "features",
    "abstractcore.wire.anthropic_messages.batch": "features",
    "abstractcore.wire.anthropic_messages.client": "features",
    "abstractcore.wire.anthropic_messages.server": "features",
    "abstractcore.wire.anthropic_messages.shapes": "features",
    "abstractcore.wire.anthropic_messages.thinking": "features",
    "abstractcore.wire.anthropic_messages.caching": "features",
    "abstractcore.wire.anthropic_messages.signing": "features",
    "abstractcore.features.local_thinking": "features",
    "abstractcore.wire.encoding": "features",
    "abstractcore.wire.fields": "features",
    "abstractcore.wire.batches": "features",
    "abstractcore.wire.openai_chat.batch": "features",
    "abstractcore.wire.openai_chat.client": "features",
    "abstractcore.wire.openai_chat.server": "features",
    "abstractcore.wire.openai_chat.shapes": "features",
    "abstractcore.wire.openai_chat.reasoning": "features",
    "abstractcore.wire.openai_responses.server": "features",
    "abstractcore.wire.openai_responses.server_stream": "features",
    # providers
    "abstractcore.providers": "providers",
    "abstractcore.providers.anthropic": "providers",
    "abstractcore.providers.base": "providers",
    "abstractcore.providers.batches": "providers",
    "abstractcore.providers.http": "providers",
    "abstractcore.providers.huggingface": "providers",
    "abstractcore.providers.lmstudio": "providers",
    "abstractcore.providers.local": "providers",
    "abstractcore.providers.pipeline": "providers",
    "abstractcore.providers.mlx": "providers",
    "abstractcore.providers.ollama": "providers",
    "abstractcore.providers.openai": "providers",
    "abstractcore.providers.openai_compatible": "providers",
    "abstractcore.providers.openrouter": "providers",
    "abstractcore.providers.vllm": "providers",
    # apps
    "abstractcore.batch": "apps",
    "abstractcore.batch_jobs": "apps",
    "abstractcore.router": "apps",
    "abstractcore.router.circuit": "apps",
    "abstractcore.router.deployment": "apps",
    "abstractcore.router.needs": "apps",
    "abstractcore.router.policy": "apps",
    "abstractcore.router.provider": "apps",
    "abstractcore.router.records": "apps",
    "abstractcore.router.strategies": "apps",
    "abstractcore.integrations": "apps",
    "abstractcore.integrations.mcp.connection": "apps",
    "abstractcore.integrations.mcp.results": "apps",
    "abstractcore.run": "apps",
    "abstractcore.run.loop": "apps",
    "abstractcore.run.results": "apps",
    "abstractcore.run.stream": "apps",
    "abstractcore.run.tools": "apps",
    "abstractcore.session": "apps",
    # sync face
    "abstractcore._llm_base": "sync face",
    "abstractcore._portal": "sync face",
    "abstractcore._sync": "sync face",
    "abstractcore._sync_session": "sync face",
    # MCPTools: its plain ``with`` holds the connection on the sync face's background loop
    "abstractcore.integrations.mcp": "sync face",
    "abstractcore.integrations.mcp.tools": "sync face",
    # faces
    "abstractcore": "faces",
    "abstractcore.__main__": "faces",
    "abstractcore.cli": "faces",
    "abstractcore.registry": "faces",
    "abstractcore.server": "faces",
    "abstractcore.server.__main__": "faces",
    "abstractcore.server.app": "faces",
    "abstractcore.server.backends": "faces",
    "abstractcore.server.cli": "faces",
    "abstractcore.server.config": "faces",
    "abstractcore.server.embeddings": "faces",
    "abstractcore.server.errors": "faces",
    "abstractcore.server.responses": "faces",
    # Ray Data: a face over the whole package (it builds LLMs with create_llm in each actor)
    "abstractcore.integrations.ray": "faces",
    "abstractcore.integrations.ray.columns": "faces",
    "abstractcore.integrations.ray.config": "faces",
    "abstractcore.integrations.ray.processor": "faces",
    "abstractcore.integrations.ray.worker": "faces",
    "abstractcore.server.service": "faces",
    "abstractllm": "faces",
    "abstractllm.core": "faces",
    "abstractllm.core.retry": "faces",
}
#: Packages whose every module is in one layer without being listed (none today: list modules).
PACKAGE_LAYERS: dict[str, str] = {}

#: Provider modules other providers may build on.
PROVIDER_BASES = {"base", "batches", "pipeline", "http", "local", "openai_compatible"}
TOP_PACKAGES = ("abstractcore", "abstractllm")


def layer_of(module: str) -> str | None:
    """The layer of ``module``: its MODULE_LAYERS entry, else the PACKAGE_LAYERS entry above it."""
    if module in MODULE_LAYERS:
        return MODULE_LAYERS[module]
    for package, layer in PACKAGE_LAYERS.items():
        if module.startswith(package + "."):
            return layer
    return None


def _target_layer(module: str) -> str | None:
    """The layer of an imported name: the module's, else that of the nearest mapped package above."""
    parts = module.split(".")
    while parts:
        layer = layer_of(".".join(parts))
        if layer is not None:
            return layer
        parts.pop()
    return None


def imports_of(source: str, module: str, *, is_package: bool = False) -> list[str]:
    """The package's modules ``source`` (the text of ``module``) imports: anywhere in it (inside
    functions and ``if TYPE_CHECKING:`` too), relative imports resolved; ``from pkg import mod``
    counts as importing ``pkg.mod`` when that is a mapped module."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] in TOP_PACKAGES]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = module.split(".") if is_package else module.split(".")[:-1]
                parts = parts[: len(parts) - (node.level - 1)]
                target = ".".join([*parts, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target.split(".")[0] not in TOP_PACKAGES:
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.append(sub if layer_of(sub) is not None else target)
    return list(dict.fromkeys(found))


def upward_imports(sources: dict[str, tuple[str, bool]]) -> list[str]:
    """Every import pointing up a layer in ``sources`` (module name -> (text, is a package))."""
    rank = {layer: i for i, layer in enumerate(LAYER_ORDER)}
    wrong = []
    for name, (text, is_package) in sorted(sources.items()):
        here = layer_of(name)
        if here is None:
            continue  # reported by the unmapped-module test
        for target in imports_of(text, name, is_package=is_package):
            there = _target_layer(target)
            if there is not None and rank[there] > rank[here]:
                wrong.append(f"{name} ({here}) imports {target} ({there})")
    return wrong


def _modules() -> dict[str, Path]:
    out = {}
    for top in TOP_PACKAGES:
        for path in sorted((SRC.parent / top).rglob("*.py")):
            name = ".".join(path.relative_to(SRC.parent).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = path
    return out


def _sources() -> dict[str, tuple[str, bool]]:
    return {name: (path.read_text(), path.name == "__init__.py") for name, path in _modules().items()}


def _imports(name: str, path: Path) -> list[str]:
    return imports_of(path.read_text(), name, is_package=path.name == "__init__.py")


def test_every_module_is_mapped_to_a_layer() -> None:
    assert set(MODULE_LAYERS.values()) | set(PACKAGE_LAYERS.values()) <= set(LAYER_ORDER)
    unmapped = sorted(name for name in _modules() if layer_of(name) is None)
    assert not unmapped, (
        f"modules in no layer: {unmapped}. Add each to MODULE_LAYERS in {Path(__file__).name}, "
        f"with its layer, one of {LAYER_ORDER} (ARCHITECTURE.md, 'Layers')."
    )


def test_imports_point_down_the_layers() -> None:
    wrong = upward_imports(_sources())
    assert not wrong, "imports that point up a layer:\n" + "\n".join(wrong)


def test_the_layer_check_catches_upward_imports_of_every_spelling() -> None:
    fake = {
        "abstractcore.core.types": ("from ..providers import base\n", False),
        "abstractcore.features": (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from abstractcore.run import arun\n",
            True,
        ),
        "abstractcore.transport.http": ("def late():\n    import abstractcore._sync\n", False),
        "abstractcore.engines.base": ("from abstractcore import _portal\nfrom . import model_files\n", False),
        "abstractcore.providers.base": ("from .. import session\nfrom ..core.types import Message\n", False),
        "abstractcore.run": ("from abstractcore.core import errors\nfrom .providers.base import X\n", False),
        "abstractcore.unmapped": ("from abstractcore import create_llm\n", False),
    }
    assert upward_imports(fake) == [
        "abstractcore.core.types (core) imports abstractcore.providers.base (providers)",
        "abstractcore.engines.base (engines) imports abstractcore._portal (sync face)",
        "abstractcore.features (features) imports abstractcore.run (apps)",
        "abstractcore.providers.base (providers) imports abstractcore.session (apps)",
        "abstractcore.transport.http (transport) imports abstractcore._sync (sync face)",
    ]
    assert layer_of("abstractcore.unmapped") is None


def test_providers_never_import_each_other_but_the_bases() -> None:
    wrong = []
    for name, path in _modules().items():
        if not name.startswith("abstractcore.providers."):
            continue
        for target in _imports(name, path):
            if target.startswith("abstractcore.providers."):
                other = target.rsplit(".", 1)[1]
                if other not in PROVIDER_BASES:
                    wrong.append(f"{name} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_nothing_but_the_package_face_imports_the_generated_sync_face() -> None:
    users = [
        name
        for name, path in _modules().items()
        if "abstractcore._sync" in _imports(name, path) and name != "abstractcore"
    ]
    assert users == []


EXPORTED = {
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
    "Timeout",
    "ToolCall",
    "ToolCallError",
    "ToolLoopError",
    "Tool",
    "RunEvent",
    "RunResult",
    "RunTimeoutError",
    "ToolSpec",
    "Usage",
    "instrument",
    "create_llm",
    "tool",
}


def test_the_package_exports_exactly_its_public_surface() -> None:
    assert set(abstractcore.__all__) == EXPORTED
    assert len(abstractcore.__all__) == len(set(abstractcore.__all__))
    for name in abstractcore.__all__:
        member = getattr(abstractcore, name)
        if not isinstance(member, (dict, str)):
            assert member.__module__.startswith("abstractcore"), name
    subpackages = {
        "core",
        "engines",
        "features",
        "providers",
        "transport",
        "registry",
        "cli",
        "annotations",
        "run",
        "session",
        "router",
        "batch",
        "batch_jobs",
        "server",
        "wire",
        "integrations",
    }
    stray = {n for n in dir(abstractcore) if not n.startswith("_")} - EXPORTED - subpackages
    assert stray == set(), f"public names outside __all__: {stray}"
