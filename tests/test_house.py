"""The layout is the design: imports point down the layers of ARCHITECTURE.md, and the package
exports exactly its intended public surface."""

from __future__ import annotations

import ast
from pathlib import Path

import abstractcore

SRC = Path(abstractcore.__file__).parent

#: Layer of each top-level part of the package, bottom (0) to top.
LAYERS = {
    "_version": 0,
    "core": 0,
    "transport": 1,
    "engines": 2,
    "features": 3,
    "wire": 3,
    "providers": 4,
    "run": 5,
    "session": 5,
    "router": 5,
    "batch": 5,
    "apps": 5,
    "_llm_base": 6,
    "_sync": 6,
    "__init__": 7,
    "registry": 7,
    "cli": 7,
    "server": 7,
    "__main__": 7,
}
#: Provider modules other providers may build on.
PROVIDER_BASES = {"base", "http", "local", "batching", "openai_compatible"}


def _part(module: str) -> str:
    """'abstractcore.providers.ollama' -> 'providers'; 'abstractcore' -> '__init__'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("abstractcore")]
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.level == 0
            and node.module.startswith("abstractcore")
        ):
            if node.module == "abstractcore":  # from abstractcore import cli
                found += [
                    f"abstractcore.{a.name}" if _is_module(a.name) else "abstractcore" for a in node.names
                ]
            else:
                found.append(node.module)
    return found


def _is_module(name: str) -> bool:
    return (SRC / f"{name}.py").is_file() or (SRC / name / "__init__.py").is_file()


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC.parent).with_suffix("")
        name = ".".join(relative.parts)
        out.append((name.removesuffix(".__init__"), path))
    return out


def test_every_module_belongs_to_a_layer() -> None:
    unknown = {_part(name) for name, _ in _modules()} - set(LAYERS)
    assert not unknown, f"parts of the package with no layer in ARCHITECTURE.md: {unknown}"


def test_imports_point_down_the_layers() -> None:
    wrong = []
    for name, path in _modules():
        here = _part(name)
        for target in _imports(path):
            there = _part(target)
            if there not in LAYERS:
                continue
            if LAYERS[there] > LAYERS[here]:
                wrong.append(f"{name} imports {target} (layer {here} -> {there})")
    assert not wrong, "imports that point up a layer:\n" + "\n".join(wrong)


def test_providers_never_import_each_other_but_the_bases() -> None:
    wrong = []
    for name, path in _modules():
        if not name.startswith("abstractcore.providers."):
            continue
        for target in _imports(path):
            if target.startswith("abstractcore.providers."):
                other = target.rsplit(".", 1)[1]
                if other not in PROVIDER_BASES:
                    wrong.append(f"{name} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_nothing_but_the_package_face_imports_the_generated_sync_face() -> None:
    users = [
        name for name, path in _modules() if "abstractcore._sync" in _imports(path) and name != "abstractcore"
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
    "Capabilities",
    "ConfigurationError",
    "ContextLengthExceededError",
    "Deployment",
    "EmbeddingResponse",
    "EndpointNotFoundError",
    "GenerateResponse",
    "ImagePart",
    "LocalBackendError",
    "Message",
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
        "server",
        "wire",
    }
    stray = {n for n in dir(abstractcore) if not n.startswith("_")} - EXPORTED - subpackages
    assert stray == set(), f"public names outside __all__: {stray}"
