"""Retry policy: how many attempts, how long to wait between them.

The policy is applied in exactly one place, ``transport/http.py``. Delays come
from ``backoff``'s wait generators; sleeping is done with anyio so retries
work on asyncio and trio alike (``backoff``'s own async decorator sleeps with
``asyncio.sleep`` only).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from abstractcore.core.errors import ConfigurationError, is_retryable

__all__ = ["RetryConfig"]


@dataclass(frozen=True)
class RetryConfig:
    """How failed requests are retried.

    ``max_attempts`` counts the first try: ``max_attempts=1`` disables retries.
    Retried: connection errors, timeouts, 408, 409, 429 and 5xx (the errors whose
    class says ``retryable``, see ``core/errors.py``). A
    ``Retry-After`` / ``retry-after-ms`` header is honoured when it is at most
    ``max_retry_after`` seconds; a longer ``Retry-After`` raises the
    ``RateLimitError`` at once (a router moves to its next model). Otherwise the delay is
    ``initial_delay * exponential_base ** n`` capped at ``max_delay``, with
    full jitter when ``jitter`` is true.
    """

    max_attempts: int = 3
    initial_delay: float = 0.5
    max_delay: float = 8.0
    exponential_base: float = 2.0
    jitter: bool = True
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigurationError(
                f"RetryConfig.max_attempts must be >= 1 (1 disables retries); got {self.max_attempts}."
            )
        if self.initial_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ConfigurationError("RetryConfig delays must be >= 0.")
        if self.exponential_base < 1:
            raise ConfigurationError(
                f"RetryConfig.exponential_base must be >= 1; got {self.exponential_base}."
            )

    def retries(self, error: BaseException, attempt: int) -> bool:
        """Whether to send the request again after ``error`` ended try number ``attempt``: a
        retryable error, tries left, and no ``Retry-After`` longer than ``max_retry_after`` (a
        retry before the server's time only fails again)."""
        if attempt >= self.max_attempts or not is_retryable(error):
            return False
        retry_after = getattr(error, "retry_after", None)
        return retry_after is None or retry_after <= self.max_retry_after

    def delay(self, retry_number: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry_number`` (1 = first retry)."""
        if retry_after is not None and 0 <= retry_after <= self.max_retry_after:
            return retry_after
        import backoff

        gen = backoff.expo(base=self.exponential_base, factor=self.initial_delay, max_value=self.max_delay)
        gen.send(None)
        value = 0.0
        for _ in range(retry_number):
            value = float(next(gen))
        value = min(value, self.max_delay)
        return random.uniform(0, value) if self.jitter else value
