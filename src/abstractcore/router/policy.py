"""The policy of one routed call: which deployment is next, what a failure means for the call
(it moves on, or is raised) and for the deployment (its circuit, its counts), and the one place
a call's outcome is written down.

What moves (``failover_of``, the table in ``core/errors.py``; docs/production.md has it too):

- "move": connection errors and timeouts, 5xx, 408/409, 429 (after the deployment's own
  retries; a Retry-After over the router's ``retry_after_budget`` also opens the circuit for
  that long), model not found, authentication or permission failure, a wrong endpoint, a
  malformed reply, a local back end that fails to load;
- "context": ``ContextLengthExceededError`` moves only to deployments with a larger (known)
  context window;
- "answered": raised at once, the deployment counted healthy (``BadRequestError``: the request
  itself is wrong, it would fail everywhere; ``StructuredOutputError``);
- "raise": raised at once, no verdict on the deployment (``ConfigurationError``, any other
  error, cancellation);
- a stream moves only before its first chunk reached the caller.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from abstractcore.core.errors import (
    AbstractCoreError,
    ConfigurationError,
    ContextLengthExceededError,
    ProviderError,
    RateLimitError,
    failover_of,
)
from abstractcore.core.types import Usage
from abstractcore.router.circuit import CLOSED
from abstractcore.router.deployment import DeploymentState
from abstractcore.router.needs import Needs
from abstractcore.router.records import NoDeploymentAvailableError, RouteAttempt, describe

__all__ = ["Route", "all_failed"]

logger = logging.getLogger("abstractcore.router")


class Route:
    """One call being routed: what is left to try, what happened, and its accounting.

    Each outcome of a try is written here once, for answers and streams alike: ``answered``
    (the deployment answered; for a stream, its first chunk), ``settled`` (its slot back with
    the latency, tokens and cost measured), ``failed`` (before an answer: True when the call
    moves on), ``broke`` (a stream failing after its first chunk) and ``abandoned``
    (cancelled: no verdict on the deployment)."""

    __slots__ = (
        "attempts",
        "budget",
        "clock",
        "error",
        "floor",
        "needs",
        "noted",
        "order",
        "pending",
        "refused",
        "retry",
        "start",
        "unfit",
    )

    def __init__(
        self, needs: Needs, order: Sequence[DeploymentState], clock: Callable[[], float], budget: float
    ) -> None:
        self.needs = needs
        self.order = order
        self.clock = clock
        #: A 429 whose Retry-After exceeds this opens the deployment's circuit at once.
        self.budget = budget
        self.attempts: list[RouteAttempt] = []
        #: The deployments left to try, popped from the end (None: ``order[start:]``, untried).
        self.pending: list[DeploymentState] | None = None
        self.start = 0
        self.error: Exception | None = None
        #: After a context-length failure: the window a deployment must exceed.
        self.floor: int | None = None
        self.noted: set[str] = set()
        self.refused: list[str] = []
        self.retry: float | None = None
        self.unfit: list[str] = []

    # -- which deployment next --------------------------------------------------------------------

    def first(self) -> DeploymentState | None:
        """The first choice, its slot taken, when it needs no checks (the common case, kept
        short: healthy, with no limits, the call needing no capabilities); else None."""
        deployment = self.order[0]
        if self.needs.check or deployment.limited or deployment.circuit.state is not CLOSED:
            return None
        deployment.take()
        self.start = 1
        return deployment

    async def pick(self) -> tuple[DeploymentState, bool]:
        """The next deployment to try, its slot taken; and whether the call is its half-open probe."""
        if self.pending is None:
            self.pending = list(reversed(self.order[self.start :]))
        delay = 0.002
        while True:
            full: list[DeploymentState] = []
            pending = self.pending
            while pending:
                deployment = pending.pop()
                if self.needs.check or self.floor is not None:
                    reason = await deployment.unfit(self.needs, self.floor, self.clock)
                    if reason is not None:
                        self.unfit.append(f"{deployment.name} {reason}")
                        self.skip(deployment, reason)
                        continue
                probe = deployment.circuit.admit()
                if probe is None:
                    retry = deployment.circuit.retry_in()
                    self.refused.append(deployment.name)
                    if retry is not None:
                        self.retry = retry if self.retry is None else min(self.retry, retry)
                    self.skip(deployment, "circuit open")
                    continue
                load = deployment.reserve(self.clock, self.needs.tokens + self.needs.output)
                if load is not None:
                    deployment.circuit.release(probe)
                    self.skip(deployment, load)
                    full.append(deployment)
                    continue
                return deployment, probe
            if not full:
                raise self.exhausted()
            # every deployment left is busy or over budget: wait for a slot
            import anyio  # imported on first use: ``import abstractcore`` stays light

            await anyio.sleep(delay)
            delay = min(delay * 2, 0.1)
            full.reverse()
            self.pending = full
            self.refused.clear()

    def skip(self, deployment: DeploymentState, reason: str) -> None:
        if deployment.name not in self.noted:
            self.noted.add(deployment.name)
            self.attempts.append(RouteAttempt(deployment.name, deployment.model, "skipped", reason=reason))

    def exhausted(self) -> Exception:
        """What to raise when no deployment is left."""
        if self.error is not None:
            return all_failed(self.error, self.attempts)
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

    # -- the outcome of a try, written once -------------------------------------------------------

    def answered(self, deployment: DeploymentState, probe: bool, seconds: float) -> None:
        """``deployment`` answered (a stream: its first chunk reached the caller)."""
        if probe or deployment.circuit.failures:
            deployment.circuit.succeeded(probe)
        self.attempts.append(RouteAttempt(deployment.name, deployment.model, "ok", None, None, seconds))

    def settled(
        self, deployment: DeploymentState, seconds: float, usage: Usage | None, cost: float | None
    ) -> None:
        """The answer is complete: the slot back, its latency, tokens (the estimate when the
        answer has no usage) and cost measured."""
        needs = self.needs
        tokens = usage.total_tokens if usage is not None else needs.tokens + needs.output
        deployment.served(self.clock, seconds, tokens, cost)

    def failed(self, deployment: DeploymentState, probe: bool, error: Exception, seconds: float) -> bool:
        """``deployment`` failed before answering; True when the call moves on, False when the
        error is to be raised."""
        verdict = failover_of(error)
        self.attempts.append(RouteAttempt(deployment.name, deployment.model, "failed", error, None, seconds))
        if verdict == "raise" or verdict == "answered":
            deployment.release()
            if verdict == "answered":  # the request was wrong, not the deployment
                deployment.circuit.succeeded(probe)
            else:
                deployment.circuit.release(probe)
            if isinstance(error, ProviderError):
                error.attempts = self.attempts  # type: ignore[attr-defined]
            return False
        self.error = error
        if verdict == "context":
            deployment.release()
            deployment.circuit.succeeded(probe)
            assert isinstance(error, ContextLengthExceededError)
            window = error.context_length
            if window is None and deployment.caps is not None:
                window = deployment.caps.context_window
            if window is None:  # unknown: the next one must hold at least the prompt
                window = max(self.needs.tokens, error.prompt_tokens or 0) + self.needs.output
            self.floor = max(window, self.floor or 0)
            return True
        retry_after = getattr(error, "retry_after", None)
        at_once = isinstance(error, RateLimitError) and (retry_after or 0.0) > self.budget
        self._count_failure(deployment, probe, error, at_once)
        logger.debug("router: %s failed (%s); trying the next deployment", deployment.name, describe(error))
        return True

    def broke(self, deployment: DeploymentState, error: Exception, seconds: float) -> None:
        """A stream of ``deployment`` failed after its first chunk: the error is the caller's."""
        self.attempts[-1] = RouteAttempt(
            deployment.name, deployment.model, "failed", error, "failed after its first chunk", seconds
        )
        if isinstance(error, ProviderError):
            error.attempts = self.attempts  # type: ignore[attr-defined]
        if failover_of(error) == "move":
            self._count_failure(deployment, False, error, False)
        else:
            deployment.release()

    @staticmethod
    def abandoned(deployment: DeploymentState, probe: bool) -> None:
        """The try was cancelled: the slot back, no verdict on the deployment."""
        deployment.release()
        deployment.circuit.release(probe)

    @staticmethod
    def _count_failure(deployment: DeploymentState, probe: bool, error: Exception, at_once: bool) -> None:
        """A failure of the deployment itself: counted, and its circuit told (``at_once``: opened)."""
        deployment.failed(error)
        deployment.circuit.failed(probe, error, getattr(error, "retry_after", None), at_once)


def all_failed(last: Exception, attempts: list[RouteAttempt]) -> Exception:
    """The error for a call every deployment failed: of the last failure's class (so ``except
    RateLimitError``, the server's HTTP status and an outer router's verdict stay those of a
    single failure), its message naming each deployment tried with its failure; ``attempts`` on it.
    """
    if not isinstance(last, AbstractCoreError):  # never here: only abstractcore's errors move
        return last
    failed = [a for a in attempts if a.outcome == "failed"]
    passed = [a for a in attempts if a.outcome == "skipped"]
    lines = [f"The router tried {len(failed)} deployment{'s' if len(failed) != 1 else ''}; each failed:"]
    lines += [f"  - {a.deployment}: {describe(a.error)}" for a in failed if a.error is not None]
    if passed:
        lines.append("Passed over: " + "; ".join(f"{a.deployment} ({a.reason})" for a in passed) + ".")
    lines.append("e.attempts holds each failure; router.health() shows the deployments' state.")
    summary = type(last)("\n".join(lines), **{**last._fields, "attempts": attempts})
    summary.__cause__ = last
    return summary
