"""One deployment behind a router: its spec (``Deployment``), its state (circuit, load, budgets,
capabilities, measurements) and the accounting of each call it takes."""

from __future__ import annotations

import math
import statistics
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from abstractcore.core.capabilities import Capabilities
from abstractcore.core.errors import AbstractCoreError, ConfigurationError
from abstractcore.core.types import Usage
from abstractcore.features.cost import PRICED_PROVIDERS, cost_of
from abstractcore.providers.base import AsyncProvider
from abstractcore.router.circuit import Circuit
from abstractcore.router.needs import LONG_PROMPT, Needs
from abstractcore.router.records import DeploymentHealth, describe

__all__ = [
    "ASSUMED_OUTPUT",
    "BUDGET_WINDOW",
    "CAPABILITIES_TTL",
    "LATENCY_SAMPLES",
    "ROUTING_KEYS",
    "Deployment",
    "DeploymentState",
    "check_spec",
    "combined",
    "positive",
]

#: Seconds the router keeps a deployment's capabilities before asking it again.
CAPABILITIES_TTL = 60.0
#: The window of the rpm / tpm budgets, in seconds.
BUDGET_WINDOW = 60.0
#: Latencies kept per deployment; the "latency" strategy orders by their median.
LATENCY_SAMPLES = 20
#: Output tokens assumed by the "cost" strategy when the call gives no max_tokens.
ASSUMED_OUTPUT = 256
#: Keys of a ``(provider, config)`` pair that configure the routing, not the provider.
ROUTING_KEYS = frozenset({"name", "weight", "max_concurrency", "rpm", "tpm", "capabilities"})

_CAPABILITY_FIELDS = frozenset(f.name for f in fields(Capabilities))


@dataclass(frozen=True)
class Deployment:
    """One model behind a router, with its routing options.

    ``llm`` is an LLM from ``create_llm`` (or an ``AsyncProvider``) or a
    ``(provider, config)`` pair such as ``("ollama", {"model": "qwen2.5:7b"})``,
    built with ``create_llm``'s rules. ``weight`` is its share under the
    "weighted" strategy; ``max_concurrency`` bounds its calls in flight;
    ``rpm`` / ``tpm`` bound its requests / tokens per minute (calls go to the
    next deployment meanwhile; when every deployment is full they wait).
    ``capabilities`` overrides what the server says about the model, for
    routing only (``{"context_window": 32768, "tools": False}``).
    """

    llm: Any
    name: str | None = None
    weight: float = 1.0
    max_concurrency: int | None = None
    rpm: int | None = None
    tpm: int | None = None
    capabilities: Mapping[str, Any] | None = None


def positive(name: str, value: Any, *, integer: bool = False, optional: bool = False) -> None:
    """``ConfigurationError`` unless ``value`` is a positive number (an integer with ``integer``)."""
    if value is None and optional:
        return
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or value <= 0 or value != value:
        what = "a positive integer" if integer else "a positive number"
        raise ConfigurationError(f"{name} must be {what}{' or None' if optional else ''}; got {value!r}.")


def check_spec(spec: Deployment, where: str) -> None:
    """``ConfigurationError`` for a bad routing option of ``spec`` (``where`` names it)."""
    positive(f"{where} weight", spec.weight)
    for key in ("max_concurrency", "rpm", "tpm"):
        positive(f"{where} {key}", getattr(spec, key), integer=True, optional=True)
    if spec.name is not None and (not isinstance(spec.name, str) or not spec.name.strip()):
        raise ConfigurationError(f"{where} name must be a non-empty string; got {spec.name!r}.")
    overrides = spec.capabilities
    if overrides is not None and (
        not isinstance(overrides, Mapping) or not set(overrides) <= _CAPABILITY_FIELDS
    ):
        raise ConfigurationError(
            f"{where} capabilities must be a dict of Capabilities fields "
            f"({', '.join(sorted(_CAPABILITY_FIELDS))}); got {overrides!r}."
        )


class DeploymentState:
    """A deployment as the router tracks it: its provider, circuit, load, budgets and results."""

    __slots__ = (
        "cap_overrides",
        "caps",
        "caps_at",
        "circuit",
        "cost_count",
        "cost_total",
        "errors",
        "in_flight",
        "last_error",
        "latencies",
        "limited",
        "lock",
        "max_concurrency",
        "name",
        "provider",
        "requests",
        "rpm",
        "spent",
        "starts",
        "tpm",
        "weight",
    )

    def __init__(self, name: str, provider: AsyncProvider, spec: Deployment, circuit: Circuit) -> None:
        self.name = name
        self.provider = provider
        self.weight = float(spec.weight)
        self.max_concurrency = spec.max_concurrency
        self.rpm = spec.rpm
        self.tpm = spec.tpm
        #: Whether a call must check its load limits before it goes here.
        self.limited = spec.max_concurrency is not None or spec.rpm is not None or spec.tpm is not None
        self.cap_overrides = dict(spec.capabilities or {})
        self.circuit = circuit
        self.caps: Capabilities | None = None
        self.caps_at = 0.0
        self.in_flight = 0
        self.requests = 0
        self.errors = 0
        self.last_error: str | None = None
        self.latencies: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        self.starts: deque[float] = deque()
        self.spent: deque[tuple[float, int]] = deque()
        self.cost_total = 0.0
        self.cost_count = 0
        self.lock = threading.Lock()

    @property
    def model(self) -> str:
        return self.provider.model

    async def capabilities(self, clock: Callable[[], float]) -> Capabilities:
        """What it can do (the provider's answer, cached here; the overrides win)."""
        now = clock()
        if self.caps is None or now - self.caps_at > CAPABILITIES_TTL:
            try:
                found = await self.provider.acapabilities()
            except AbstractCoreError:
                found = self.provider.capabilities
            self.caps = found.merged(**self.cap_overrides) if self.cap_overrides else found
            self.caps_at = now
        return self.caps

    def reserve(self, clock: Callable[[], float], tokens: int) -> str | None:
        """Take a slot for one call; the reason when it has none free (busy, over a budget)."""
        with self.lock:
            if self.max_concurrency is not None and self.in_flight >= self.max_concurrency:
                return "busy"
            if self.rpm is not None or self.tpm is not None:
                now = clock()
                cutoff = now - BUDGET_WINDOW
                starts, spent = self.starts, self.spent
                while starts and starts[0] <= cutoff:
                    starts.popleft()
                while spent and spent[0][0] <= cutoff:
                    spent.popleft()
                if self.rpm is not None and len(starts) >= self.rpm:
                    return "over its rpm budget"
                if self.tpm is not None and spent:
                    used = sum(n for _, n in spent)
                    if used + tokens > self.tpm:
                        return "over its tpm budget"
                starts.append(now)
            self.in_flight += 1
            self.requests += 1
        return None

    def take(self) -> None:
        """Take a slot for one call (no limits to check)."""
        with self.lock:
            self.in_flight += 1
            self.requests += 1

    def release(self) -> None:
        """Give the slot back after a call with no verdict on this deployment (cancelled, bad request)."""
        with self.lock:
            self.in_flight -= 1

    def failed(self, error: BaseException) -> None:
        """Give the slot back after a failure of this deployment."""
        with self.lock:
            self.in_flight -= 1
            self.errors += 1
        self.last_error = describe(error)

    def served(self, clock: Callable[[], float], seconds: float, tokens: int, cost: float | None) -> None:
        """Give the slot back after an answer that took ``seconds``."""
        with self.lock:
            self.in_flight -= 1
            self.latencies.append(seconds)
            if self.tpm is not None:
                self.spent.append((clock(), tokens))
            if cost is not None:
                self.cost_total += cost
                self.cost_count += 1

    def median_latency(self) -> float | None:
        return statistics.median(self.latencies) if self.latencies else None

    def price(self, needs: Needs) -> float:
        """Estimated USD of the call here: the price list, else the costs seen, else 0 when self-hosted."""
        provider = self.provider.name
        usage = Usage.of(needs.tokens, needs.output or ASSUMED_OUTPUT)
        listed = cost_of(provider, self.model, usage)
        if listed is not None:
            return listed
        if self.cost_count:
            return self.cost_total / self.cost_count
        return 0.0 if provider not in PRICED_PROVIDERS else math.inf

    def health(self) -> DeploymentHealth:
        return DeploymentHealth(
            name=self.name,
            provider=self.provider.name,
            model=self.model,
            state=self.circuit.health_state(),
            failures=len(self.circuit.failures),
            in_flight=self.in_flight,
            retry_in=self.circuit.retry_in(),
            requests=self.requests,
            errors=self.errors,
            latency=self.median_latency(),
            last_error=self.last_error,
        )

    async def unfit(self, needs: Needs, floor: int | None, clock: Callable[[], float]) -> str | None:
        """Why this deployment cannot take a call of these ``needs`` (None: it can). ``floor``:
        after a context-length failure, the window a deployment must exceed."""
        caps = await self.capabilities(clock)
        if needs.tools and caps.tools is False:
            return "takes no tools"
        if needs.images and caps.vision is False:
            return "takes no images"
        if needs.structured and caps.structured_output is False:
            return "has no structured output"
        if needs.embeddings and caps.embeddings is False:
            return "cannot embed"
        window = caps.context_window
        if floor is not None:
            if window is None or window <= floor:
                known = f"{window:,}" if window is not None else "an unknown"
                return f"has {known}-token context, not more than the {floor:,} that failed"
        elif window is not None and LONG_PROMPT <= needs.tokens + needs.output > window:
            return f"has a {window:,}-token context window"
        limit = caps.max_output_tokens
        if needs.output and limit is not None and needs.output > limit:
            return f"answers at most {limit:,} tokens"
        return None


def combined(all_caps: Sequence[Capabilities]) -> Capabilities:
    """What a router over these deployments can offer: the best of them."""

    def flag(name: str) -> bool | None:
        values = [getattr(c, name) for c in all_caps]
        return True if True in values else (None if None in values else False)

    def most(name: str) -> int | None:
        known = [getattr(c, name) for c in all_caps if getattr(c, name) is not None]
        return max(known) if known else None

    return Capabilities(
        streaming=any(c.streaming for c in all_caps),
        tools=flag("tools"),
        structured_output=flag("structured_output"),
        vision=flag("vision"),
        embeddings=flag("embeddings"),
        stream_usage=flag("stream_usage"),
        context_window=most("context_window"),
        max_output_tokens=most("max_output_tokens"),
        local=all(c.local for c in all_caps),
        source="router",
    )
