"""The circuit breaker of one deployment.

``threshold`` failures in a row within ``window`` seconds open it; after ``cooldown`` seconds
(longer when the server sent a longer Retry-After) one probe call is let through (half-open);
its success closes the circuit, its failure opens it again. Opening and closing are logged at
INFO on ``abstractcore.router``. Time comes from ``clock`` (injectable).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

from abstractcore.router.records import describe

__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "Circuit"]

logger = logging.getLogger("abstractcore.router")

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class Circuit:
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
        self.state = CLOSED
        self.failures: deque[float] = deque()
        self.open_until = 0.0
        self.probing = False
        self.lock = threading.Lock()

    def admit(self) -> bool | None:
        """None: refused (open); True: admitted as the half-open probe; False: admitted."""
        if self.state is CLOSED:
            return False
        with self.lock:
            if self.state is OPEN:
                if self.clock() < self.open_until:
                    return None
                self.state, self.probing = HALF_OPEN, False
            if self.state is HALF_OPEN:
                if self.probing:
                    return None
                self.probing = True
                return True
            return False

    def retry_in(self) -> float | None:
        """Seconds until an open circuit lets a probe through (None when it is not open)."""
        if self.state is not OPEN:
            return None
        return max(0.0, self.open_until - self.clock())

    def succeeded(self, probe: bool) -> None:
        if probe:
            with self.lock:
                self.state, self.probing = CLOSED, False
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
                self.state, self.probing, self.open_until = OPEN, False, now + wait
                logger.info(
                    "router: %s stays open: its probe failed (%s); next probe in %.1fs",
                    self.name,
                    describe(error),
                    wait,
                )
                return
            if self.state is OPEN:  # a call from before it opened: only a longer Retry-After counts
                if retry_after:
                    self.open_until = max(self.open_until, now + retry_after)
                return
            if self.state is not CLOSED:
                return
            failures = self.failures
            failures.append(now)
            while failures and failures[0] < now - self.window:
                failures.popleft()
            if not at_once and len(failures) < self.threshold:
                return
            count = len(failures)
            self.state, self.open_until = OPEN, now + wait
        logger.info(
            "router: %s is open after %d failure(s) (last: %s); next probe in %.1fs",
            self.name,
            count,
            describe(error),
            wait,
        )

    def health_state(self) -> str:
        if self.state is OPEN and self.clock() >= self.open_until:
            return HALF_OPEN  # the next call probes it
        return self.state
