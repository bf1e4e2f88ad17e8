"""The router: one LLM over several deployments, with fallbacks, load balancing and circuit breaking.

    llm = create_llm("router", models=[
        create_llm("openai", model="gpt-4o-mini"),
        ("anthropic", {"model": "claude-haiku-4-5"}),
        Deployment(("ollama", {"model": "qwen2.5:7b"}), max_concurrency=4, rpm=120),
    ], strategy="fallback")
    r = llm.generate("Hello")     # r.attempts: what was tried; r.model / r.provider: who answered

``Router`` is an ``AsyncProvider`` whose public methods (``agenerate``,
``astream``, ``aembed``, ...) hand the call, with the same arguments, to one
deployment after another, so structured output, tools and the tool loop run
unchanged on whichever deployment serves it. It is built on the public async
provider API only, so any provider (another router included) can be a
deployment. What moves a call to the next deployment (docs/production.md
has the table):

- moves: connection errors and timeouts, 5xx, 408/409, 429 (after the
  deployment's own retries; a Retry-After over ``retry_after_budget`` also
  opens the circuit for that long), model not found, authentication or
  permission failure, a wrong endpoint, a malformed reply, a local back end
  that fails to load;
- ``ContextLengthExceededError`` moves only to deployments with a larger
  (known) context window;
- raised at once, no other deployment touched: ``BadRequestError`` (the
  request itself is wrong: it would fail everywhere), ``StructuredOutputError``,
  ``ConfigurationError`` and any other error, and cancellation;
- a stream moves only before its first chunk reached the caller.

Each deployment has a circuit breaker: ``failure_threshold`` failures in a
row within ``failure_window`` seconds open it; after ``cooldown`` seconds
(longer when the server sent a longer Retry-After) one probe call is let
through (half-open); its success closes the circuit, its failure opens it
again. Opening and closing are logged at INFO on ``abstractcore.router``;
``router.health()`` shows the state. Time comes from ``clock`` (injectable).
"""

from __future__ import annotations

import itertools
import logging
import math
import operator
import random
import statistics
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar, Literal, NamedTuple, TypeVar

from typing_extensions import Unpack

from abstractcore.core.capabilities import Capabilities
from abstractcore.core.errors import (
    AbstractCoreError,
    AuthenticationError,
    BackendNotInstalledError,
    BadRequestError,
    ConfigurationError,
    ContextLengthExceededError,
    EndpointNotFoundError,
    LocalBackendError,
    ModelNotFoundError,
    PermissionDeniedError,
    ProviderConnectionError,
    ProviderError,
    ProviderStatusError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
    StructuredOutputError,
)
from abstractcore.core.retry import RetryConfig
from abstractcore.core.types import (
    EmbeddingResponse,
    GenerateResponse,
    ImagePart,
    Message,
    StreamChunk,
    Usage,
)
from abstractcore.features.cost import PRICED_PROVIDERS, cost_of
from abstractcore.features.request import CallKwargs
from abstractcore.providers.base import AsyncProvider, Request

__all__ = [
    "STRATEGIES",
    "Deployment",
    "DeploymentHealth",
    "NoDeploymentAvailableError",
    "RouteAttempt",
    "RoutedChunk",
    "RoutedEmbeddingResponse",
    "RoutedResponse",
    "Router",
]

logger = logging.getLogger("abstractcore.router")

#: How the router orders the deployments for each call.
STRATEGIES = ("fallback", "round_robin", "weighted", "least_busy", "latency", "cost")
#: A request estimated (text length / 4) under this many tokens is not checked against context windows.
LONG_PROMPT = 1024
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

_T = TypeVar("_T")
_CLOSED, _OPEN, _HALF_OPEN = "closed", "open", "half_open"
_CAPABILITY_FIELDS = frozenset(f.name for f in fields(Capabilities))


# -- public records ---------------------------------------------------------------------------


class RouteAttempt(NamedTuple):
    """One step of routing a call: a deployment that served it, failed, or was passed over."""

    #: The deployment's name (``Deployment(name=...)``, else "provider/model").
    deployment: str
    model: str
    #: "ok" (it served the call), "failed" or "skipped" (passed over).
    outcome: str
    #: The failure, when ``outcome`` is "failed".
    error: BaseException | None = None
    #: Why it was passed over or left ("circuit open", "busy", "over its rpm budget", "takes no tools", ...).
    reason: str | None = None
    #: Seconds spent on it (for a stream: until its first chunk).
    seconds: float = 0.0


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


@dataclass(frozen=True)
class DeploymentHealth:
    """What ``router.health()`` says about one deployment."""

    name: str
    provider: str
    model: str
    #: "closed" (serving), "open" (failing: passed over) or "half_open" (the next call probes it).
    state: str
    #: Failures in a row within the failure window (the circuit opens at the threshold).
    failures: int
    in_flight: int
    #: Seconds until an open circuit lets a probe through (None unless open).
    retry_in: float | None
    requests: int
    errors: int
    #: Median of its recent latencies, seconds (None before its first answer).
    latency: float | None
    last_error: str | None


class NoDeploymentAvailableError(ProviderError):
    """Every deployment that could take the call is out (its circuit is open).

    ``retry_after`` is the number of seconds until the first of them lets a
    probe through; ``attempts`` lists the deployments passed over.
    """

    retry_after: float | None
    attempts: list[RouteAttempt]

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        attempts: list[RouteAttempt] | None = None,
        **fields: Any,
    ) -> None:
        fields.setdefault("provider", "router")
        super().__init__(message, retry_after=retry_after, attempts=attempts or [], **fields)


@dataclass(slots=True)
class RoutedResponse(GenerateResponse):
    """A ``GenerateResponse`` served by a router: ``attempts`` says what was tried."""

    attempts: list[RouteAttempt] = field(default_factory=list)


@dataclass(slots=True)
class RoutedChunk(StreamChunk):
    """The last ``StreamChunk`` of a routed stream: ``attempts`` says what was tried."""

    attempts: list[RouteAttempt] = field(default_factory=list)


@dataclass(slots=True)
class RoutedEmbeddingResponse(EmbeddingResponse):
    """An ``EmbeddingResponse`` served by a router: ``attempts`` says what was tried,
    ``deployment`` which deployment answered."""

    attempts: list[RouteAttempt] = field(default_factory=list)
    deployment: str | None = None


#: core type -> (its routed subclass, a getter of all its fields); None once the type has ``attempts``.
_ROUTED: dict[type[Any], tuple[type[Any], Callable[[Any], Any]] | None] = {
    base: None
    if "attempts" in {f.name for f in fields(base)}
    else (routed, operator.attrgetter(*(f.name for f in fields(base))))
    for base, routed in (
        (GenerateResponse, RoutedResponse),
        (StreamChunk, RoutedChunk),
        (EmbeddingResponse, RoutedEmbeddingResponse),
    )
}


def _with_attempts(value: _T, attempts: list[RouteAttempt], deployment: str) -> _T:
    """``value`` carrying ``attempts`` and the ``deployment`` that answered (a routed copy while
    the core types have no ``attempts`` field)."""
    entry = _ROUTED.get(type(value))
    if entry is not None:
        routed, getter = entry
        copy: _T = routed(*getter(value), attempts=attempts)
        value = copy
    elif hasattr(value, "attempts"):  # the core field, or a routed copy from a nested router
        value.attempts = attempts
    value.deployment = deployment  # type: ignore[attr-defined]
    return value


# -- what a call needs --------------------------------------------------------------------------


class _Needs(NamedTuple):
    """What a call asks of a deployment."""

    tools: bool = False
    images: bool = False
    structured: bool = False
    embeddings: bool = False
    #: Estimated prompt tokens (text length / 4) and the output asked for (max_tokens).
    tokens: int = 0
    output: int = 0
    #: Whether the deployments' capabilities must be checked at all.
    check: bool = False

    def describe(self) -> str:
        wants = [
            name
            for name, wanted in (
                ("tools", self.tools),
                ("images", self.images),
                ("a response_model", self.structured),
                ("embeddings", self.embeddings),
            )
            if wanted
        ]
        if self.tokens + self.output >= LONG_PROMPT:
            wants.append(f"~{self.tokens + self.output:,} tokens of context")
        return ", ".join(wants) or "a plain request"


def _part_text(part: Any) -> tuple[int, bool]:
    """(characters of text, is an image) of one content part."""
    if isinstance(part, ImagePart):
        return 0, True
    text = getattr(part, "text", None)
    if isinstance(text, str):
        return len(text), False
    if isinstance(part, Mapping):
        if part.get("type") == "image_url":
            return 0, True
        value = part.get("text")
        return (len(value), False) if isinstance(value, str) else (0, False)
    return (len(part), False) if isinstance(part, str) else (0, False)


def _needs(
    prompt: Any,
    messages: Any,
    system_prompt: Any,
    tools: Any,
    tool_choice: Any,
    media: Any,
    response_model: Any,
    params: Mapping[str, Any],
) -> _Needs:
    chars = len(prompt) if isinstance(prompt, str) else 0
    output = params.get("max_tokens") if params else None
    if not (messages or system_prompt or tools or media or output) and response_model is None:
        tokens = chars // 4  # a plain prompt: the common case, kept short
        return _Needs(False, False, False, False, tokens, 0, tokens >= LONG_PROMPT)
    if isinstance(system_prompt, str):
        chars += len(system_prompt)
    images = bool(media)
    if messages and isinstance(messages, Sequence) and not isinstance(messages, str):
        for message in messages:
            content = (
                message.content
                if isinstance(message, Message)
                else message.get("content")
                if isinstance(message, Mapping)
                else None
            )
            if isinstance(content, str):
                chars += len(content)
            elif isinstance(content, list):
                for part in content:
                    size, image = _part_text(part)
                    chars += size
                    images = images or image
    wants_tools = bool(tools) and tool_choice != "none"
    structured = response_model is not None
    tokens = chars // 4
    out = output if isinstance(output, int) and not isinstance(output, bool) else 0
    check = wants_tools or images or structured or tokens + out >= LONG_PROMPT
    return _Needs(wants_tools, images, structured, False, tokens, out, check)


# -- which failures move ------------------------------------------------------------------------

_MOVES: tuple[type[BaseException], ...] = (
    ProviderConnectionError,  # timeouts too
    ServerError,
    RateLimitError,
    ModelNotFoundError,
    AuthenticationError,
    PermissionDeniedError,
    EndpointNotFoundError,
    ResponseFormatError,
    LocalBackendError,
    BackendNotInstalledError,
)
#: The deployment answered: the call failed, the deployment is healthy.
_ANSWERED: tuple[type[BaseException], ...] = (BadRequestError, StructuredOutputError)


def _verdict(error: Exception) -> Literal["move", "context", "raise"]:
    """Whether a failure moves the call to the next deployment (see the module docstring)."""
    if isinstance(error, ContextLengthExceededError):
        return "context"
    if isinstance(error, _MOVES):
        return "move"
    status = error.status_code if isinstance(error, ProviderStatusError) else None
    if status is not None and (status in (408, 409) or status >= 500):
        return "move"
    return "raise"


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


# -- one deployment: circuit, load, measurements ------------------------------------------------


class _Circuit:
    """The circuit breaker of one deployment (thread-safe: loops on several threads may share it)."""

    __slots__ = (
        "clock",
        "cooldown",
        "failures",
        "lock",
        "name",
        "open_until",
        "probing",
        "state",
        "threshold",
        "window",
    )

    def __init__(
        self, name: str, threshold: int, window: float, cooldown: float, clock: Callable[[], float]
    ) -> None:
        self.name = name
        self.threshold = threshold
        self.window = window
        self.cooldown = cooldown
        self.clock = clock
        self.state = _CLOSED
        self.failures: deque[float] = deque()
        self.open_until = 0.0
        self.probing = False
        self.lock = threading.Lock()

    def admit(self) -> bool | None:
        """None: refused (open); True: admitted as the half-open probe; False: admitted."""
        if self.state is _CLOSED:
            return False
        with self.lock:
            if self.state is _OPEN:
                if self.clock() < self.open_until:
                    return None
                self.state, self.probing = _HALF_OPEN, False
            if self.state is _HALF_OPEN:
                if self.probing:
                    return None
                self.probing = True
                return True
            return False

    def retry_in(self) -> float | None:
        """Seconds until an open circuit lets a probe through (None when it is not open)."""
        if self.state is not _OPEN:
            return None
        return max(0.0, self.open_until - self.clock())

    def succeeded(self, probe: bool) -> None:
        if probe:
            with self.lock:
                self.state, self.probing = _CLOSED, False
                self.failures.clear()
            logger.info("router: %s is closed again (its half-open probe succeeded)", self.name)
        elif self.failures:
            self.failures.clear()  # failures must come in a row to open the circuit

    def release(self, probe: bool) -> None:
        """The call ended with no verdict on the deployment's health (cancelled, bad arguments)."""
        if probe:
            with self.lock:
                self.probing = False

    def failed(self, probe: bool, error: BaseException, retry_after: float | None, at_once: bool) -> None:
        now = self.clock()
        wait = max(self.cooldown, retry_after or 0.0)
        with self.lock:
            if probe:
                self.state, self.probing, self.open_until = _OPEN, False, now + wait
                logger.info(
                    "router: %s stays open: its probe failed (%s); next probe in %.1fs",
                    self.name,
                    _describe(error),
                    wait,
                )
                return
            if self.state is _OPEN:  # a call from before it opened: only a longer Retry-After counts
                if retry_after:
                    self.open_until = max(self.open_until, now + retry_after)
                return
            if self.state is not _CLOSED:
                return
            failures = self.failures
            failures.append(now)
            while failures and failures[0] < now - self.window:
                failures.popleft()
            if not at_once and len(failures) < self.threshold:
                return
            count = len(failures)
            self.state, self.open_until = _OPEN, now + wait
        logger.info(
            "router: %s is open after %d failure(s) (last: %s); next probe in %.1fs",
            self.name,
            count,
            _describe(error),
            wait,
        )

    def health_state(self) -> str:
        if self.state is _OPEN and self.clock() >= self.open_until:
            return _HALF_OPEN  # the next call probes it
        return self.state


class _Deployment:
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

    def __init__(self, name: str, provider: AsyncProvider, spec: Deployment, circuit: _Circuit) -> None:
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
        self.last_error = _describe(error)

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

    def price(self, needs: _Needs) -> float:
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


# -- one call -------------------------------------------------------------------------------------


class _Call:
    """The routing state of one call: what is left to try, what happened."""

    __slots__ = ("attempts", "error", "floor", "needs", "noted", "pending", "refused", "retry", "unfit")

    def __init__(self, needs: _Needs, order: Sequence[_Deployment], start: int = 0) -> None:
        self.needs = needs
        self.pending = list(reversed(order[start:]))  # popped from the end
        self.attempts: list[RouteAttempt] = []
        self.error: Exception | None = None
        #: After a context-length failure: the window a deployment must exceed.
        self.floor: int | None = None
        self.noted: set[str] = set()
        self.refused: list[str] = []
        self.retry: float | None = None
        self.unfit: list[str] = []

    def skip(self, deployment: _Deployment, reason: str) -> None:
        if deployment.name not in self.noted:
            self.noted.add(deployment.name)
            self.attempts.append(RouteAttempt(deployment.name, deployment.model, "skipped", reason=reason))

    def exhausted(self) -> Exception:
        """What to raise when no deployment is left."""
        if self.error is not None:
            return _all_failed(self.error, self.attempts)
        if self.refused:
            wait = f"; the first probe is in {self.retry:.1f}s" if self.retry is not None else ""
            return NoDeploymentAvailableError(
                f"Every deployment that can take this call is unavailable (circuit open: "
                f"{', '.join(self.refused)}){wait}. router.health() shows why.",
                retry_after=self.retry,
                attempts=self.attempts,
            )
        return ConfigurationError(
            f"No deployment of this router can take this request ({self.needs.describe()}): "
            + "; ".join(self.unfit)
            + ". Add a deployment that can, or give Deployment(..., capabilities={...}) when a "
            "server does not say what its model can do."
        )


def _all_failed(last: Exception, attempts: list[RouteAttempt]) -> Exception:
    """The error for a call every deployment failed: of the last failure's class (so ``except
    RateLimitError``, the server's HTTP status and an outer router's verdict stay those of a
    single failure), its message naming each deployment tried with its failure; ``attempts`` on it.
    """
    if not isinstance(last, AbstractCoreError):  # never here: only abstractcore's errors move
        return last
    failed = [a for a in attempts if a.outcome == "failed"]
    passed = [a for a in attempts if a.outcome == "skipped"]
    lines = [f"The router tried {len(failed)} deployment{'s' if len(failed) != 1 else ''}; each failed:"]
    lines += [f"  - {a.deployment}: {_describe(a.error)}" for a in failed if a.error is not None]
    if passed:
        lines.append("Passed over: " + "; ".join(f"{a.deployment} ({a.reason})" for a in passed) + ".")
    lines.append("e.attempts holds each failure; router.health() shows the deployments' state.")
    summary = type(last)("\n".join(lines), **{**last._fields, "attempts": attempts})
    summary.__cause__ = last
    return summary


# -- the router ---------------------------------------------------------------------------------


def _positive(name: str, value: Any, *, integer: bool = False, optional: bool = False) -> None:
    if value is None and optional:
        return
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or value <= 0 or value != value:
        what = "a positive integer" if integer else "a positive number"
        raise ConfigurationError(f"{name} must be {what}{' or None' if optional else ''}; got {value!r}.")


def _check_spec(spec: Deployment, where: str) -> None:
    _positive(f"{where} weight", spec.weight)
    for key in ("max_concurrency", "rpm", "tpm"):
        _positive(f"{where} {key}", getattr(spec, key), integer=True, optional=True)
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


def _combined(all_caps: Sequence[Capabilities]) -> Capabilities:
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
        _positive("failure_threshold", failure_threshold, integer=True)
        _positive("failure_window", failure_window)
        _positive("cooldown", cooldown)
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
        deployments: list[_Deployment] = []
        for index, entry in enumerate(models):
            spec, provider = self._spec(index, entry, factory)
            name = spec.name or f"{provider.name}/{provider.model}"
            taken = {d.name for d in deployments}
            if name in taken:
                if spec.name:
                    raise ConfigurationError(f"Two deployments are named {name!r}; names must differ.")
                name = next(f"{name}#{n}" for n in itertools.count(2) if f"{name}#{n}" not in taken)
            circuit = _Circuit(name, failure_threshold, float(failure_window), float(cooldown), clock)
            deployments.append(_Deployment(name, provider, spec, circuit))
        self._deployments: tuple[_Deployment, ...] = tuple(deployments)
        self._turn = itertools.count()
        self.capabilities = _combined([d.provider.capabilities for d in deployments])

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
        _check_spec(spec, where)
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

    def _order(self, needs: _Needs) -> Sequence[_Deployment]:
        deployments = self._deployments
        strategy = self.strategy
        if strategy == "fallback" or len(deployments) == 1:
            return deployments
        if strategy == "round_robin":
            start = next(self._turn) % len(deployments)
            return [*deployments[start:], *deployments[:start]]
        if strategy == "weighted":  # a weighted order: each key is u ** (1 / weight) (Efraimidis-Spirakis)
            return sorted(deployments, key=lambda d: random.random() ** (1.0 / d.weight), reverse=True)
        if strategy == "least_busy":
            return sorted(deployments, key=lambda d: d.in_flight)
        if strategy == "latency":
            return sorted(deployments, key=lambda d: d.median_latency() or -1.0)
        return sorted(deployments, key=lambda d: d.price(needs))

    async def _unfit(self, deployment: _Deployment, call: _Call) -> str | None:
        """Why ``deployment`` cannot take the call, from its capabilities (None: it can)."""
        needs = call.needs
        caps = await deployment.capabilities(self.clock)
        if needs.tools and caps.tools is False:
            return "takes no tools"
        if needs.images and caps.vision is False:
            return "takes no images"
        if needs.structured and caps.structured_output is False:
            return "has no structured output"
        if needs.embeddings and caps.embeddings is False:
            return "cannot embed"
        window = caps.context_window
        if call.floor is not None:
            if window is None or window <= call.floor:
                known = f"{window:,}" if window is not None else "an unknown"
                return f"has {known}-token context, not more than the {call.floor:,} that failed"
        elif window is not None and LONG_PROMPT <= needs.tokens + needs.output > window:
            return f"has a {window:,}-token context window"
        limit = caps.max_output_tokens
        if needs.output and limit is not None and needs.output > limit:
            return f"answers at most {limit:,} tokens"
        return None

    async def _pick(self, call: _Call) -> tuple[_Deployment, bool]:
        """The next deployment to try, its slot taken; and whether the call is its half-open probe."""
        delay = 0.002
        while True:
            full: list[_Deployment] = []
            pending = call.pending
            while pending:
                deployment = pending.pop()
                if call.needs.check or call.floor is not None:
                    reason = await self._unfit(deployment, call)
                    if reason is not None:
                        call.unfit.append(f"{deployment.name} {reason}")
                        call.skip(deployment, reason)
                        continue
                probe = deployment.circuit.admit()
                if probe is None:
                    retry = deployment.circuit.retry_in()
                    call.refused.append(deployment.name)
                    if retry is not None:
                        call.retry = retry if call.retry is None else min(call.retry, retry)
                    call.skip(deployment, "circuit open")
                    continue
                load = deployment.reserve(self.clock, call.needs.tokens + call.needs.output)
                if load is not None:
                    deployment.circuit.release(probe)
                    call.skip(deployment, load)
                    full.append(deployment)
                    continue
                return deployment, probe
            if not full:
                raise call.exhausted()
            # every deployment left is busy or over budget: wait for a slot
            import anyio

            await anyio.sleep(delay)
            delay = min(delay * 2, 0.1)
            full.reverse()
            call.pending = full
            call.refused.clear()

    def _failed(
        self, deployment: _Deployment, probe: bool, error: Exception, call: _Call, seconds: float
    ) -> bool:
        """Record a failure; True when the call moves on, False when the error is to be raised."""
        verdict = _verdict(error)
        call.attempts.append(RouteAttempt(deployment.name, deployment.model, "failed", error, None, seconds))
        if verdict == "raise":
            deployment.release()
            if isinstance(error, _ANSWERED):  # it answered: the request was wrong, not the deployment
                deployment.circuit.succeeded(probe)
            else:
                deployment.circuit.release(probe)
            if isinstance(error, ProviderError):
                error.attempts = call.attempts  # type: ignore[attr-defined]
            return False
        call.error = error
        if isinstance(error, ContextLengthExceededError):
            deployment.release()
            deployment.circuit.succeeded(probe)
            window = error.context_length
            if window is None and deployment.caps is not None:
                window = deployment.caps.context_window
            if window is None:  # unknown: the next one must hold at least the prompt
                window = max(call.needs.tokens, error.prompt_tokens or 0) + call.needs.output
            call.floor = max(window, call.floor or 0)
            return True
        deployment.failed(error)
        retry_after = getattr(error, "retry_after", None)
        at_once = isinstance(error, RateLimitError) and (retry_after or 0.0) > self.retry_after_budget
        deployment.circuit.failed(probe, error, retry_after, at_once)
        logger.debug("router: %s failed (%s); trying the next deployment", deployment.name, _describe(error))
        return True

    def _served(
        self,
        deployment: _Deployment,
        probe: bool,
        call: _Call,
        seconds: float,
        usage: Usage | None,
        cost: float | None,
    ) -> None:
        tokens = usage.total_tokens if usage is not None else call.needs.tokens + call.needs.output
        deployment.served(self.clock, seconds, tokens, cost)
        deployment.circuit.succeeded(probe)
        call.attempts.append(RouteAttempt(deployment.name, deployment.model, "ok", seconds=seconds))

    async def _routed(
        self, needs: _Needs, send: Callable[[AsyncProvider], Awaitable[_T]]
    ) -> tuple[_T, list[RouteAttempt]]:
        """``send(provider)`` to one deployment after another until one answers; the attempts."""
        order = self._order(needs)
        deployment = order[0]
        call: _Call | None = None
        probe = False
        if needs.check or deployment.limited or deployment.circuit.state is not _CLOSED:
            call = _Call(needs, order)
            deployment, probe = await self._pick(call)
        else:  # the common case, kept short: a healthy first choice with no limits to check
            deployment.take()
        perf = time.perf_counter
        while True:
            start = perf()
            try:
                answer = await send(deployment.provider)
            except Exception as error:
                if call is None:
                    call = _Call(needs, order, 1)
                if not self._failed(deployment, probe, error, call, perf() - start):
                    raise
                deployment, probe = await self._pick(call)
                continue
            except BaseException:  # cancelled: no verdict on the deployment
                deployment.release()
                deployment.circuit.release(probe)
                raise
            seconds = perf() - start
            usage = getattr(answer, "usage", None)
            tokens = usage.total_tokens if usage is not None else needs.tokens + needs.output
            deployment.served(self.clock, seconds, tokens, getattr(answer, "cost", None))
            if probe or deployment.circuit.failures:
                deployment.circuit.succeeded(probe)
            attempts = call.attempts if call is not None else []
            attempts.append(
                RouteAttempt(deployment.name, deployment.provider.model, "ok", None, None, seconds)
            )
            return answer, attempts

    # -- public API (each call handed to the deployments with the same arguments) -----------------

    async def agenerate(
        self,
        prompt: str | None = None,
        *,
        response_model: Any = None,
        stream: bool = False,
        **kwargs: Unpack[CallKwargs],
    ) -> Any:
        """Generate an answer on the first deployment that can; see ``AsyncProvider.agenerate``.

        A ``GenerateResponse`` comes back with ``attempts`` (``RouteAttempt``s:
        the deployments passed over, those that failed, and last the one that
        served it). A failure that does not move is raised at once; when no
        deployment is left, the last failure is raised, ``attempts`` on it.
        """
        params: dict[str, Any] = dict(kwargs)
        messages = params.pop("messages", None)
        system_prompt = params.pop("system_prompt", None)
        tools = params.pop("tools", None)
        tool_choice = params.pop("tool_choice", None)
        media = params.pop("media", None)
        structured_mode = params.pop("structured_mode", None)
        max_retries = params.pop("max_retries", None)
        if stream:
            if response_model is not None:
                raise ConfigurationError(
                    "response_model with stream=True: use astream(..., response_model=...) "
                    "for partial objects as the JSON arrives."
                )
            if max_retries is not None:
                raise ConfigurationError("max_retries applies to response_model, not to streams.")
            return self.astream(
                prompt,
                messages=messages,
                system_prompt=system_prompt,
                tools=tools,
                tool_choice=tool_choice,
                media=media,
                **params,
            )
        if self.defaults:
            params = {**self.defaults, **params}
        needs = _needs(prompt, messages, system_prompt, tools, tool_choice, media, response_model, params)
        answer, attempts = await self._routed(
            needs,
            lambda provider: provider.agenerate(
                prompt,
                messages=messages,
                system_prompt=system_prompt,
                tools=tools,
                tool_choice=tool_choice,
                response_model=response_model,
                media=media,
                structured_mode=structured_mode,
                max_retries=max_retries,
                **params,
            ),
        )
        if isinstance(answer, GenerateResponse):
            return _with_attempts(answer, attempts, attempts[-1].deployment)
        return answer

    def astream(
        self,
        prompt: str | None = None,
        *,
        response_model: Any = None,
        **kwargs: Unpack[CallKwargs],
    ) -> AsyncIterator[Any]:
        """Stream from the first deployment that can; see ``AsyncProvider.astream``.

        A deployment that fails before its first chunk reached the caller
        hands the call to the next; after that its error is raised
        (``attempts`` on it). The last chunk carries ``attempts``. Bad
        arguments raise here, before anything is sent.
        """
        params: dict[str, Any] = dict(kwargs)
        messages = params.pop("messages", None)
        system_prompt = params.pop("system_prompt", None)
        tools = params.pop("tools", None)
        tool_choice = params.pop("tool_choice", None)
        media = params.pop("media", None)
        structured_mode = params.pop("structured_mode", None)
        if self.defaults:
            params = {**self.defaults, **params}
        call: dict[str, Any] = {
            "messages": messages,
            "system_prompt": system_prompt,
            "tools": tools,
            "tool_choice": tool_choice,
            "response_model": response_model,
            "media": media,
            "structured_mode": structured_mode,
            **params,
        }
        # checked the way the first deployment checks them (its stream is dropped unstarted)
        self._deployments[0].provider.astream(prompt, **call)
        needs = _needs(prompt, messages, system_prompt, tools, tool_choice, media, response_model, params)
        return self._routed_stream(prompt, call, needs)

    async def _routed_stream(
        self, prompt: str | None, kwargs: dict[str, Any], needs: _Needs
    ) -> AsyncIterator[Any]:
        call = _Call(needs, self._order(needs))
        perf = time.perf_counter
        while True:
            deployment, probe = await self._pick(call)
            start = perf()
            chunks = deployment.provider.astream(prompt, **kwargs)
            try:
                first = await chunks.__anext__()
            except StopAsyncIteration:
                self._served(deployment, probe, call, perf() - start, None, None)
                return
            except Exception as error:
                await _aclose_iterator(chunks)
                if self._failed(deployment, probe, error, call, perf() - start):
                    continue
                raise
            except BaseException:
                deployment.release()
                deployment.circuit.release(probe)
                await _shielded_close(chunks)
                raise
            break
        # the first chunk is the caller's: from here on a failure is raised, never moved
        seconds = perf() - start
        call.attempts.append(RouteAttempt(deployment.name, deployment.model, "ok", seconds=seconds))
        deployment.circuit.succeeded(probe)
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
                        chunk = _with_attempts(chunk, call.attempts, name)
                    else:
                        chunk.deployment = name
                yield chunk
                try:
                    chunk = await chunks.__anext__()
                except StopAsyncIteration:
                    break
        except Exception as error:
            outcome = error
            call.attempts[-1] = RouteAttempt(
                deployment.name, deployment.model, "failed", error, "failed after its first chunk", seconds
            )
            if isinstance(error, ProviderError):
                error.attempts = call.attempts  # type: ignore[attr-defined]
            raise
        finally:
            if outcome is None:  # finished, or the caller stopped early
                tokens = usage.total_tokens if usage is not None else needs.tokens + needs.output
                deployment.served(self.clock, seconds, tokens, cost)
            elif _verdict(outcome) == "move":
                deployment.failed(outcome)
                deployment.circuit.failed(False, outcome, getattr(outcome, "retry_after", None), False)
            else:
                deployment.release()
            await _shielded_close(chunks)

    async def aembed(
        self, texts: str | Sequence[str], *, dimensions: int | None = None, **params: Any
    ) -> EmbeddingResponse:
        """Embed on the first deployment that can (the same failures move as for ``agenerate``)."""
        needs = _Needs(embeddings=True, check=True)
        response, attempts = await self._routed(
            needs, lambda provider: provider.aembed(texts, dimensions=dimensions, **params)
        )
        return _with_attempts(response, attempts, attempts[-1].deployment)

    async def acapabilities(self) -> Capabilities:
        """The best any deployment offers (tools if one has them, the largest context window, ...)."""
        return _combined([await d.capabilities(self.clock) for d in self._deployments])

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

    # -- provider hooks: unused, the public methods delegate ------------------------------------

    async def _complete(self, request: Request) -> GenerateResponse:
        raise NotImplementedError("a Router hands its public calls to its deployments")

    def _stream(self, request: Request) -> AsyncIterator[StreamChunk]:
        raise NotImplementedError("a Router hands its public calls to its deployments")
