"""The models a server answers for, by the names clients send as ``model``."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from abstractcore.server.config import ModelEntry
from abstractcore.server.errors import ApiError

if TYPE_CHECKING:
    from abstractcore import LLM

__all__ = ["Backends"]

log = logging.getLogger("abstractcore.server")


def _owner(llm: Any) -> str:
    provider = getattr(llm, "provider", None)
    name = getattr(provider, "name", None)
    return name if isinstance(name, str) and name else "abstractcore"


class Backends:
    """Names -> LLM objects (any object with abstractcore's async API: a provider, a router, ...).

    A request's ``model`` selects a back end by its name, one of its aliases, or its bare model
    name when exactly one back end has it; anything else is a 404 listing the names served.
    """

    def __init__(self, models: Mapping[str, LLM], aliases: Mapping[str, str] | None = None) -> None:
        if not models:
            raise ValueError("A server needs at least one model.")
        self._models = dict(models)
        self._owned: list[LLM] = []  # built here from a configuration: unloaded when the server stops
        self._names: dict[str, str] = {name: name for name in self._models}
        bare: dict[str, list[str]] = {}
        for name, llm in self._models.items():
            model = getattr(llm, "model", None)
            if isinstance(model, str):
                bare.setdefault(model, []).append(name)
        for model, names in bare.items():
            if len(names) == 1:
                self._names.setdefault(model, names[0])
        for alias, name in (aliases or {}).items():
            if name not in self._models:
                raise ValueError(f"The alias {alias!r} names {name!r}, which is not served.")
            self._names[alias] = name

    @classmethod
    def from_entries(cls, entries: Iterable[ModelEntry]) -> Backends:
        """``create_llm`` for every entry of a configuration (``ConfigurationError`` when one is wrong)."""
        from abstractcore import create_llm

        models: dict[str, LLM] = {}
        aliases: dict[str, str] = {}
        for entry in entries:
            llm = create_llm(entry.provider, entry.model, **entry.options)
            name = entry.name or f"{entry.provider}/{llm.model}"
            if name in models:
                raise ValueError(f"Two back ends are served as {name!r}; give one a name.")
            models[name] = llm
            aliases.update(dict.fromkeys(entry.aliases, name))
        backends = cls(models, aliases)
        backends._owned = list(models.values())
        return backends

    def resolve(self, model: str) -> tuple[str, LLM]:
        """(the served name, its LLM) for a request's ``model``; 404 when nothing answers to it."""
        name = self._names.get(model)
        if name is None:
            raise ApiError(
                404,
                f"The model {model!r} does not exist on this server; it serves: {', '.join(self._models)}.",
                kind="not_found",
                param="model",
            )
        return name, self._models[name]

    def listing(self) -> list[tuple[str, str]]:
        """(name, owner) of every served model, owner being the provider's name."""
        return [(name, _owner(llm)) for name, llm in self._models.items()]

    async def aclose(self) -> None:
        """Close the connections the back ends opened on this event loop; unload the models this
        object created (those handed in belong to the caller)."""
        for llm in self._models.values():
            try:
                if any(llm is owned for owned in self._owned):
                    await llm.aunload()
                else:
                    await llm.aclose()
            except Exception as exc:  # shutting down: report, go on with the others
                log.warning("closing %r failed: %s", llm, exc)
