"""What a failure means is a property of its class (``core/errors.py``): the transport's retries,
the router's move to the next deployment and the server's HTTP status all read that one table,
so a class's attributes decide all three and the three never disagree."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar

import pytest

from abstractcore.core import errors
from abstractcore.core.errors import (
    AbstractCoreError,
    Failover,
    ProviderStatusError,
    ResponseFormatError,
    failover_of,
    http_status_of,
    is_retryable,
)
from abstractcore.core.retry import RetryConfig
from abstractcore.core.types import GenerateResponse, StreamChunk
from abstractcore.features.request import Request
from abstractcore.providers.base import AsyncProvider
from abstractcore.router import NoDeploymentAvailableError, Router
from abstractcore.server.errors import from_exception

STATUSES = (None, 400, 401, 404, 408, 409, 413, 422, 429, 500, 503, 504, 529)


def _classes() -> list[type[AbstractCoreError]]:
    found = [getattr(errors, n) for n in errors.__all__ if isinstance(getattr(errors, n), type)]
    return [c for c in found if issubclass(c, AbstractCoreError)] + [NoDeploymentAvailableError]


def _error(cls: type[AbstractCoreError], status: int | None) -> AbstractCoreError:
    if issubclass(cls, ProviderStatusError):
        return cls("it failed", status_code=status, retry_after=1.0)
    return cls("it failed")


class Failing(AsyncProvider):
    """A deployment that raises its ``errors`` in turn (then answers), counting its calls."""

    name: ClassVar[str] = "failing"

    def __init__(self, model: str, *errors: Exception) -> None:
        super().__init__(model)
        self.errors = list(errors)
        self.calls = 0

    async def _complete(self, request: Request) -> GenerateResponse:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return GenerateResponse(content="served", model=self.model)

    async def _stream(self, request: Request) -> AsyncIterator[StreamChunk]:
        raise NotImplementedError
        yield StreamChunk()


async def _router_verdict(error: Exception) -> Failover:
    """What a real router did with ``error``: moved to its second deployment; or raised it, the
    failing deployment then counted healthy ("answered": its earlier failure forgotten) or not
    judged ("raise": its earlier failure still counts)."""
    first = Failing("a", errors.ServerError("down", status_code=503), error)
    second = Failing("b")
    router = Router(models=[first, second], failure_threshold=3)
    await router.agenerate("Hi")  # a's first failure moves this call to b
    try:
        await router.agenerate("Hi")
    except Exception as raised:
        assert raised is error
        return "answered" if router.health()["failing/a"].failures == 0 else "raise"
    assert second.calls == 2
    return "move"


@pytest.mark.parametrize("cls", _classes(), ids=lambda c: c.__name__)
def test_every_error_class_declares_its_retry_failover_and_status(cls: type[AbstractCoreError]) -> None:
    assert isinstance(cls.retryable, bool)
    assert cls.failover in ("move", "context", "answered", "raise")
    assert cls.http_status is None or 400 <= cls.http_status < 600
    if cls.http_status is None:  # passed through: only an error that carries the back end's status
        assert issubclass(cls, ProviderStatusError)


@pytest.mark.parametrize("cls", _classes(), ids=lambda c: c.__name__)
def test_the_three_readers_agree_with_the_table(cls: type[AbstractCoreError]) -> None:
    for status in STATUSES:
        error = _error(cls, status)
        assert RetryConfig().retries(error, 1) is is_retryable(error)
        assert from_exception(error).status == http_status_of(error)
        if status is None or not issubclass(cls, ProviderStatusError):  # no status to refine it
            assert is_retryable(error) is cls.retryable
            assert failover_of(error) == cls.failover
            if cls.http_status is not None:
                assert http_status_of(error) == cls.http_status


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("cls", [c for c in _classes() if c.failover != "context"], ids=lambda c: c.__name__)
async def test_a_router_moves_exactly_the_errors_the_table_says(cls: type[AbstractCoreError]) -> None:
    for status in (None, 409, 503) if issubclass(cls, ProviderStatusError) else (None,):
        error = _error(cls, status)
        assert await _router_verdict(error) == failover_of(error), status


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_new_class_is_one_place_for_all_three() -> None:
    """An error class that says otherwise than its parent is retried, routed and answered the
    way it says: no reader keeps its own list of classes."""

    class Teapot(ResponseFormatError):
        retryable: ClassVar[bool] = True
        failover: ClassVar[Failover] = "raise"
        http_status: ClassVar[int | None] = 418

    error: Any = Teapot("short and stout")
    assert (ResponseFormatError.retryable, ResponseFormatError.failover) == (False, "move")
    assert RetryConfig().retries(error, 1) is True
    assert from_exception(error).status == 418
    assert await _router_verdict(error) == "raise"
