"""The router: one LLM over several deployments, with fallbacks, load balancing and circuit breaking.

    llm = create_llm("router", models=[
        create_llm("openai", model="gpt-4o-mini"),
        ("anthropic", {"model": "claude-haiku-4-5"}),
        Deployment(("ollama", {"model": "qwen2.5:7b"}), max_concurrency=4, rpm=120),
    ], strategy="fallback")
    r = llm.generate("Hello")     # r.attempts: what was tried; r.model / r.provider: who answered

``Router`` is an ``AsyncProvider``: its public methods are every provider's, and it routes at
the request level, handing the call's built ``Request`` to one deployment after another, so
structured output, tools and the tool loop run unchanged on whichever deployment serves it.
Any provider (another router included) can be a deployment. The package, one job a module:

- ``provider.py``: ``Router`` itself (building the deployments, ``_send`` / ``_send_stream``
  and the hooks, embeddings, health);
- ``deployment.py``: ``Deployment`` (the spec) and the state of each (capabilities, load,
  rpm / tpm budgets, latencies, costs);
- ``circuit.py``: each deployment's circuit breaker;
- ``strategies.py``: ``STRATEGIES``, the table of orderings (fallback, round_robin, weighted,
  least_busy, latency, cost);
- ``policy.py``: ``Route``, one call: which deployment next, what moves on (the error classes
  say: ``failover_of`` in ``core/errors.py``), and each outcome written down once;
- ``needs.py``: what a call asks of a deployment (tools, images, a response_model, context);
- ``records.py``: ``RouteAttempt``, the routed answers, ``DeploymentHealth``,
  ``NoDeploymentAvailableError``.

What moves a call to the next deployment (docs/production.md has the table):

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

from abstractcore.router.deployment import (
    ASSUMED_OUTPUT,
    BUDGET_WINDOW,
    CAPABILITIES_TTL,
    LATENCY_SAMPLES,
    ROUTING_KEYS,
    Deployment,
)
from abstractcore.router.needs import LONG_PROMPT
from abstractcore.router.provider import Router
from abstractcore.router.records import (
    DeploymentHealth,
    NoDeploymentAvailableError,
    RouteAttempt,
    RoutedChunk,
    RoutedEmbeddingResponse,
    RoutedResponse,
)
from abstractcore.router.strategies import STRATEGIES

__all__ = [
    "ASSUMED_OUTPUT",
    "BUDGET_WINDOW",
    "CAPABILITIES_TTL",
    "LATENCY_SAMPLES",
    "LONG_PROMPT",
    "ROUTING_KEYS",
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
