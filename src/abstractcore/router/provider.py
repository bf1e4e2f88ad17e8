"""``Router``: the provider over several deployments (see the package's docstring).

``Router`` is an ``AsyncProvider`` whose request-level entry points (``_send``,
``_send_stream``) take the call's built ``Request`` and hand that same request, the router's
defaults merged into its parameters, to one deployment's ``_send`` / ``_send_stream`` after
another: each deployment binds it (its model, its parameters checked, its defaults under the
call's) and runs its own tool and structured-output strategies. The public methods are
``AsyncProvider``'s own, unchanged. ``Route`` (``policy.py``) decides what moves on and writes
each outcome down.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar, TypeVar

from abstractcore.core.capabilities import Capabilities
from abstractcore.core.errors import ConfigurationError
from abstractcore.core.retry import RetryConfig
from abstractcore.core.types import EmbeddingResponse, GenerateResponse, StreamChunk, Usage
from abstractcore.features.request import Request
from abstractcore.features.telemetry import state as _telemetry
from abstractcore.providers.base import AsyncProvider
from abstractcore.router.circuit import Circuit
from abstractcore.router.deployment import (
    ROUTING_KEYS,
    Deployment,
    DeploymentState,
    check_spec,
    combined,
    positive,
)
from abstractcore.router.needs import EMBEDDINGS, Needs, needs_of
from abstractcore.router.policy import Route
from abstractcore.router.records import DeploymentHealth, RouteAttempt, with_attempts
from abstractcore.router.strategies import STRATEGIES

__all__ = ["Router"]

_T = TypeVar("_T")


async def _shielded_close(chunks: Any) -> None:
    """Close a deployment's stream even while the calling task is being cancelled."""
    import anyio  # imported on first use: ``import abstractcore`` stays light

    with anyio.CancelScope(shield=True):
        await _aclose_iterator(chunks)


async def _aclose_iterator(iterator: Any) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()


class Router(AsyncProvider):
    """An LLM over several deployments: ``create_llm("router", models=[...], strategy="fallback")``.

    ``models``: LLMs, ``(provider, config)`` pairs, ``{"provider": ..., **config}``
    mappings (the form of configuration files) or ``Deployment(...)``s (a
    config may hold the routing keys ``name``, ``weight``,
    ``max_concurrency``, ``rpm``, ``tpm``, ``capabilities`` too).
    ``strategy``: "fallback" (in order), "round_robin", "weighted",
    "least_busy" (fewest calls in flight), "latency" (lowest recent median;
    untried first) or "cost" (cheapest by the price list, then by costs seen;
    self-hosted counts as free). The strategy orders the deployments; the
    call goes to the first that is healthy, free and able to take it, and
    moves down the order on the failures listed in the module docstring.

    ``failure_threshold`` failures in a row within ``failure_window`` seconds
    open a deployment's circuit for ``cooldown`` seconds (or the server's
    longer Retry-After). A 429 whose Retry-After exceeds
    ``retry_after_budget`` opens it at once; deployments built from pairs get
    ``RetryConfig(max_retry_after=retry_after_budget)`` unless their config
    gives a ``retry_config``. ``clock`` (seconds, monotonic) drives circuits
    and budgets. Generation parameters given here are defaults for every call.
    """

    name: ClassVar[str] = "router"

    def __init__(
        self,
        model: str | None = None,
        *,
        models: Sequence[Any],
        strategy: str = "fallback",
        failure_threshold: int = 3,
        failure_window: float = 60.0,
        cooldown: float = 30.0,
        retry_after_budget: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        factory: Callable[..., AsyncProvider] | None = None,
        **config: Any,
    ) -> None:
        if "retry_config" in config:
            raise ConfigurationError(
                "A router does not retry by itself: give retry_config to each deployment."
            )
        has_timeout, timeout = "timeout" in config, config.get("timeout")
        super().__init__(model or "router", **config)
        if has_timeout:
            self.defaults["timeout"] = timeout
        if strategy not in STRATEGIES:
            raise ConfigurationError(f"strategy must be one of {', '.join(STRATEGIES)}; got {strategy!r}.")
        positive("failure_threshold", failure_threshold, integer=True)
        positive("failure_window", failure_window)
        positive("cooldown", cooldown)
        if isinstance(retry_after_budget, bool) or not isinstance(retry_after_budget, (int, float)):
            raise ConfigurationError(f"retry_after_budget must be seconds; got {retry_after_budget!r}.")
        if not callable(clock):
            raise ConfigurationError("clock must be a callable returning seconds (like time.monotonic).")
        if isinstance(models, (str, bytes, Mapping)) or not isinstance(models, Sequence) or not models:
            raise ConfigurationError(
                "create_llm('router', models=[...]) needs a non-empty list of LLMs, (provider, config) "
                "pairs or Deployment(...)s."
            )
        self.strategy: str = strategy
        self.clock: Callable[[], float] = clock
        self.retry_after_budget = float(retry_after_budget)
        deployments: list[DeploymentState] = []
        for index, entry in enumerate(models):
            spec, provider = self._spec(index, entry, factory)
            name = spec.name or f"{provider.name}/{provider.model}"
            taken = {d.name for d in deployments}
            if name in taken:
                if spec.name:
                    raise ConfigurationError(f"Two deployments are named {name!r}; names must differ.")
                name = next(f"{name}#{n}" for n in itertools.count(2) if f"{name}#{n}" not in taken)
            circuit = Circuit(name, failure_threshold, float(failure_window), float(cooldown), clock)
            deployments.append(DeploymentState(name, provider, spec, circuit))
        self._deployments: tuple[DeploymentState, ...] = tuple(deployments)
        self._turn = itertools.count()
        self.capabilities = combined([d.provider.capabilities for d in deployments])

    def _spec(
        self, index: int, entry: Any, factory: Callable[..., AsyncProvider] | None
    ) -> tuple[Deployment, AsyncProvider]:
        if isinstance(entry, Mapping) and isinstance(entry.get("provider"), str):
            # {"provider": "ollama", "model": ..., ...}: the form of JSON / YAML configuration files
            rest = {k: v for k, v in entry.items() if k != "provider"}
            entry = (entry["provider"], rest)
        elif isinstance(entry, list) and len(entry) == 2:
            entry = tuple(entry)
        spec = entry if isinstance(entry, Deployment) else Deployment(entry)
        target, where = spec.llm, f"models[{index}]"
        config: dict[str, Any] | None = None
        if isinstance(target, tuple):
            if len(target) != 2 or not isinstance(target[0], str) or not isinstance(target[1], Mapping):
                raise ConfigurationError(
                    f"{where} must be a (provider, config) pair such as "
                    f"('ollama', {{'model': 'qwen2.5:7b'}}); got {target!r}."
                )
            config = dict(target[1])
            routing = {k: config.pop(k) for k in list(config) if k in ROUTING_KEYS}
            spec = replace(spec, **routing) if routing else spec
        check_spec(spec, where)
        if config is not None:
            if factory is None:
                raise ConfigurationError(
                    "(provider, config) pairs are built by create_llm('router', models=[...]); "
                    "a Router made directly takes LLM objects."
                )
            config.setdefault("retry_config", RetryConfig(max_retry_after=self.retry_after_budget))
            return spec, factory(target[0], config.pop("model", None), **config)
        if isinstance(target, AsyncProvider):
            return spec, target
        provider = getattr(target, "provider", None)
        if isinstance(provider, AsyncProvider):
            return spec, provider
        raise ConfigurationError(
            f"{where} must be an LLM from create_llm(...), a (provider, config) pair or "
            f"Deployment(...); got {target!r}."
        )

    def __repr__(self) -> str:
        names = ", ".join(d.name for d in self._deployments)
        return f"Router(strategy={self.strategy!r}, models=[{names}])"

    # -- state --------------------------------------------------------------------------------

    @property
    def deployments(self) -> list[str]:
        """The deployments' names, in the order given."""
        return [d.name for d in self._deployments]

    def health(self) -> dict[str, DeploymentHealth]:
        """Each deployment's circuit state, load and recent results, by name."""
        return {d.name: d.health() for d in self._deployments}

    # -- routing --------------------------------------------------------------------------------

    def _route(self, needs: Needs) -> Route:
        deployments = self._deployments
        order = STRATEGIES[self.strategy] if len(deployments) > 1 else None
        ordered = order(deployments, needs, self._turn) if order is not None else deployments
        return Route(needs, ordered, self.clock, self.retry_after_budget)

    def _for_deployments(self, request: Request) -> tuple[Request, Needs]:
        """``request`` as each deployment gets it (the router's defaults under the call's
        parameters; a request bound already keeps its own), and what it needs."""
        if self.defaults and not request.bound:
            request = replace(request, params={**self.defaults, **request.params})
        return request, needs_of(request, request.params)

    async def _routed(
        self, needs: Needs, send: Callable[[AsyncProvider], Awaitable[_T]]
    ) -> tuple[_T, list[RouteAttempt]]:
        """``send(provider)`` to one deployment after another until one answers; the attempts."""
        route = self._route(needs)
        deployment = route.first()
        probe = False
        if deployment is None:
            deployment, probe = await route.pick()
        perf = time.perf_counter
        while True:
            start = perf()
            try:
                answer = await send(deployment.provider)
            except Exception as error:
                if not route.failed(deployment, probe, error, perf() - start):
                    raise
                deployment, probe = await route.pick()
                continue
            except BaseException:  # cancelled: no verdict on the deployment
                route.abandoned(deployment, probe)
                raise
            seconds = perf() - start
            route.answered(deployment, probe, seconds)
            route.settled(deployment, seconds, getattr(answer, "usage", None), getattr(answer, "cost", None))
            return answer, route.attempts

    async def _routed_stream(
        self, needs: Needs, open_stream: Callable[[AsyncProvider], AsyncIterator[Any]]
    ) -> AsyncIterator[Any]:
        """``open_stream(provider)`` on one deployment after another until one yields its first
        chunk; its chunks from then on (a later failure is raised, never moved)."""
        route = self._route(needs)
        perf = time.perf_counter
        while True:
            deployment, probe = await route.pick()
            start = perf()
            chunks = open_stream(deployment.provider)
            try:
                first = await chunks.__anext__()
            except StopAsyncIteration:
                route.answered(deployment, probe, perf() - start)
                route.settled(deployment, perf() - start, None, None)
                return
            except Exception as error:
                await _aclose_iterator(chunks)
                if route.failed(deployment, probe, error, perf() - start):
                    continue
                raise
            except BaseException:
                route.abandoned(deployment, probe)
                await _shielded_close(chunks)
                raise
            break
        # the first chunk is the caller's: from here on a failure is raised, never moved
        seconds = perf() - start
        route.answered(deployment, probe, seconds)
        usage: Usage | None = None
        cost: float | None = None
        outcome: Exception | None = None
        name = deployment.name
        try:
            chunk = first
            while True:
                if isinstance(chunk, StreamChunk):
                    if chunk.finish_reason is not None:
                        usage, cost = chunk.usage or usage, chunk.cost
                        chunk = with_attempts(chunk, route.attempts, name)
                    else:
                        chunk.deployment = name
                yield chunk
                try:
                    chunk = await chunks.__anext__()
                except StopAsyncIteration:
                    break
        except Exception as error:
            outcome = error
            route.broke(deployment, error, seconds)
            raise
        finally:
            if outcome is None:  # finished, or the caller stopped early
                route.settled(deployment, seconds, usage, cost)
            await _shielded_close(chunks)

    # -- the request-level entry points (the public methods are AsyncProvider's) ----------------

    async def _send(self, request: Request) -> Any:
        """Answer ``request`` on the first deployment that can (``AsyncProvider.agenerate``).

        A ``GenerateResponse`` comes back with ``attempts`` (``RouteAttempt``s: the deployments
        passed over, those that failed, and last the one that served it). A failure that does
        not move is raised at once; when no deployment is left, the last failure is raised,
        ``attempts`` on it. With tracing on, one ``route`` span holds each attempt's span."""
        tracing = _telemetry.active
        if tracing is None:
            return await self._send_routed(request)
        from abstractcore.features.telemetry.tracing import attempts

        with tracing.parent("route", self._span_attributes()) as span:
            answer = await self._send_routed(request)
            attempts(span, getattr(answer, "attempts", None))
            return answer

    def _span_attributes(self) -> dict[str, Any]:
        return {"abstractcore.router.strategy": self.strategy}

    async def _send_routed(self, request: Request) -> Any:
        request, needs = self._for_deployments(request)
        answer, attempts = await self._routed(needs, lambda provider: provider._send(request))
        if isinstance(answer, GenerateResponse):
            return with_attempts(answer, attempts, attempts[-1].deployment)
        return answer

    def _send_stream(self, request: Request) -> AsyncIterator[Any]:
        """Stream ``request`` from the first deployment that can (``AsyncProvider.astream``).

        A deployment that fails before its first chunk reached the caller hands the call to the
        next; after that its error is raised (``attempts`` on it). The last chunk carries
        ``attempts``. Bad arguments raise here, before anything is sent."""
        request, needs = self._for_deployments(request)
        # checked the way the first deployment checks them (its stream is dropped unstarted)
        self._deployments[0].provider._send_stream(request)
        chunks = self._routed_stream(needs, lambda provider: provider._send_stream(request))
        tracing = _telemetry.active
        if tracing is None:
            return chunks
        from abstractcore.features.telemetry.tracing import attempts

        def last(span: Any, chunk: Any) -> None:
            attempts(span, getattr(chunk, "attempts", None))

        return tracing.parent_stream("route", self._span_attributes(), chunks, last)

    async def _count(self, request: Request) -> int:
        """The input tokens of ``request`` as the first deployment (in the order given) that can
        count counts them; ``ConfigurationError`` when none can. Not routed: counting sends
        nothing to answer, so it moves no circuit and takes no turn."""
        request, _ = self._for_deployments(request)
        failure: ConfigurationError | None = None
        for deployment in self._deployments:
            try:
                return await deployment.provider._count(request)
            except ConfigurationError as error:
                failure = error
        assert failure is not None  # a router has at least one deployment
        raise failure

    # -- provider hooks: routed too ---------------------------------------------------------------

    async def _complete(self, request: Request) -> GenerateResponse:
        """The bare answer to ``request`` (no tool or structured strategy) from the first
        deployment that can: each deployment's own ``_complete`` on the request bound to it."""
        request, needs = self._for_deployments(request)
        response, attempts = await self._routed(
            needs, lambda provider: provider._complete(_bound_to(provider, request))
        )
        return with_attempts(response, attempts, attempts[-1].deployment)

    def _stream(self, request: Request) -> AsyncIterator[StreamChunk]:
        """The bare stream of ``request`` from the first deployment that can (each deployment's
        own ``_stream`` on the request bound to it)."""
        request, needs = self._for_deployments(request)
        return self._routed_stream(needs, lambda provider: provider._stream(_bound_to(provider, request)))

    # -- the rest of the provider API ----------------------------------------------------------------

    async def aembed(
        self, texts: str | Sequence[str], *, dimensions: int | None = None, **params: Any
    ) -> EmbeddingResponse:
        """Embed on the first deployment that can (the same failures move as for ``agenerate``)."""
        response, attempts = await self._routed(
            EMBEDDINGS, lambda provider: provider.aembed(texts, dimensions=dimensions, **params)
        )
        return with_attempts(response, attempts, attempts[-1].deployment)

    async def acapabilities(self) -> Capabilities:
        """The best any deployment offers (tools if one has them, the largest context window, ...)."""
        return combined([await d.capabilities(self.clock) for d in self._deployments])

    async def alist_models(self) -> list[str]:
        """The deployments' models, in order (each once)."""
        return list(dict.fromkeys(d.model for d in self._deployments))

    async def aunload(self) -> None:
        """Unload every deployment (local weights freed, pools closed); each stays usable."""
        await self._each("aunload")

    async def aclose(self) -> None:
        """Close every deployment's pooled connections of the running event loop."""
        await self._each("aclose")

    async def _each(self, method: str) -> None:
        first: Exception | None = None
        for deployment in self._deployments:
            try:
                await getattr(deployment.provider, method)()
            except Exception as error:  # the others still get closed
                first = first or error
        if first is not None:
            raise first


def _bound_to(provider: AsyncProvider, request: Request) -> Request:
    """``request`` for ``provider``'s hooks: bound by it, or, bound already (by the router), with
    its model."""
    return replace(request, model=provider.model) if request.bound else provider._bind(request)
