"""How a router orders its deployments for each call: a table, name -> ordering function.

A strategy is ``order(deployments, needs, turn) -> deployments in the order to try``; ``turn``
counts the router's calls (``round_robin`` starts from it). A new strategy is one function and
one entry in ``STRATEGIES``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence

from abstractcore.router.deployment import DeploymentState
from abstractcore.router.needs import Needs

__all__ = ["STRATEGIES", "Order"]

Deployments = Sequence[DeploymentState]
#: ``order(deployments, needs, turn)``: the deployments in the order to try them.
Order = Callable[[Deployments, Needs, Iterator[int]], Deployments]


def fallback(deployments: Deployments, needs: Needs, turn: Iterator[int]) -> Deployments:
    """In the order given."""
    return deployments


def round_robin(deployments: Deployments, needs: Needs, turn: Iterator[int]) -> Deployments:
    """Each call starts one further down the list."""
    start = next(turn) % len(deployments)
    return [*deployments[start:], *deployments[:start]]


def weighted(deployments: Deployments, needs: Needs, turn: Iterator[int]) -> Deployments:
    """A random order, each deployment first in proportion to its weight: each key is
    ``u ** (1 / weight)`` (Efraimidis-Spirakis)."""
    return sorted(deployments, key=lambda d: random.random() ** (1.0 / d.weight), reverse=True)


def least_busy(deployments: Deployments, needs: Needs, turn: Iterator[int]) -> Deployments:
    """Fewest calls in flight first."""
    return sorted(deployments, key=lambda d: d.in_flight)


def latency(deployments: Deployments, needs: Needs, turn: Iterator[int]) -> Deployments:
    """Lowest recent median latency first; untried first of all."""
    return sorted(deployments, key=lambda d: d.median_latency() or -1.0)


def cost(deployments: Deployments, needs: Needs, turn: Iterator[int]) -> Deployments:
    """Cheapest first: by the price list, then by the costs seen; self-hosted counts as free."""
    return sorted(deployments, key=lambda d: d.price(needs))


#: How the router orders the deployments for each call, by the strategy's name.
STRATEGIES: dict[str, Order] = {
    "fallback": fallback,
    "round_robin": round_robin,
    "weighted": weighted,
    "least_busy": least_busy,
    "latency": latency,
    "cost": cost,
}
