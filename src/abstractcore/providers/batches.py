"""``BatchAPI``: what a provider's batch API does, for ``abstractcore.batch_jobs`` to drive.

A provider with one (``openai``: files + batches; ``anthropic``: message batches) returns its
``BatchAPI`` from ``_batch_api()``. Each item is a ``Request`` prepared by the pipeline
(``ProviderPipeline._prepared``: bound, its structured-output constraint applied) and encoded
by the provider's own body builder, so a batch line is the body a live call sends; each result
line is read back by the provider's own reply reader, priced, and validated against the item's
``response_model`` (``decode``). The API's lifecycle is in ``wire/<protocol>/batch.py``; this
module holds the I/O shared by both (a JSONL body read line by line) and the decoding.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Sequence
from typing import Any

from abstractcore.core.errors import BatchItemError, ConfigurationError, ResponseFormatError
from abstractcore.core.types import GenerateResponse
from abstractcore.features.cost import PRICED_PROVIDERS, cost_of
from abstractcore.features.request import Request
from abstractcore.wire.batches import BatchLimits, BatchStatus, ResultLine

__all__ = ["BATCH_PRICE", "BatchAPI"]

#: What a batch request costs against a live one (OpenAI and Anthropic bill batches at half price).
BATCH_PRICE = 0.5


def _never(data: Any) -> bool:
    return False


class BatchAPI(abc.ABC):
    """One provider's batch API over its ``HttpClient``: create, poll, read results, cancel."""

    #: The published limits one provider batch is split under.
    limits: BatchLimits

    def __init__(self, provider: Any) -> None:
        self.provider = provider
        self._http = provider._http

    # -- what each API writes ------------------------------------------------------------

    @abc.abstractmethod
    def encode(self, index: int, request: Request) -> bytes:
        """The item at ``index`` of the job as the batch carries it (the live call's body)."""

    @abc.abstractmethod
    async def create(self, encoded: list[bytes], requests: Sequence[Request]) -> BatchStatus:
        """Send one provider batch of ``encoded`` items; its status as created."""

    @abc.abstractmethod
    async def status(self, batch_id: str) -> BatchStatus:
        """The batch's status now."""

    @abc.abstractmethod
    async def cancel(self, batch_id: str) -> BatchStatus:
        """Ask the provider to stop the batch; its status then (cancelling)."""

    @abc.abstractmethod
    def result_urls(self, status: BatchStatus) -> list[str]:
        """Where an ended batch's result lines are (paths or URLs of JSONL bodies)."""

    @abc.abstractmethod
    def result_line(self, data: Any) -> ResultLine | None:
        """One decoded JSONL line as a ``ResultLine`` (None: not a line of this job)."""

    # -- shared --------------------------------------------------------------------------

    def body(self, request: Request) -> dict[str, Any]:
        """The live call's body of ``request``, its ``extra_body`` merged as the transport does."""
        if request.extra_headers or request.extra_query:
            raise ConfigurationError(
                "extra_headers / extra_query cannot travel with one item of a provider batch; "
                "send them on live calls (abatch without via=) or leave them out."
            )
        body: dict[str, Any] = self.provider._body(request, stream=False)
        return {**body, **request.extra_body} if request.extra_body else body

    def checked(self, data: Any, reader: Any) -> BatchStatus:
        """``data`` read by ``reader`` into a ``BatchStatus``; ``ResponseFormatError`` if it is none."""
        try:
            status: BatchStatus = reader(data)
        except ValueError as exc:
            raise ResponseFormatError(
                f"{self.provider.name} batch reply is malformed: {exc}",
                provider=self.provider.name,
                model=self.provider.model,
            ) from None
        return status

    async def lines(self, status: BatchStatus) -> AsyncIterator[ResultLine]:
        """Every result line of an ended batch, as they are read."""
        for url in self.result_urls(status):
            events = self._http.events(
                url,
                None,
                method="GET",
                model=self.provider.model,
                framing="ndjson",
                is_error=_never,
                require_end=False,
            )
            try:
                async for batch in events:
                    for data in batch:
                        line = self.result_line(data)
                        if line is not None:
                            yield line
            finally:
                await events.aclose()

    def decode(self, line: ResultLine, request: Request) -> Any:
        """The item's result: its ``GenerateResponse`` (priced at the batch price), the validated
        value of its ``response_model``, or the exception it got (not raised)."""
        name, model = self.provider.name, request.model
        if line.kind in ("expired", "canceled"):
            return BatchItemError(
                f"Item {line.index} got no answer: {line.message or line.kind}. Submit it again.",
                reason=line.kind,
                custom_id=f"item-{line.index}",
                provider=name,
                model=model,
            )
        if line.kind == "errored":
            return self._http.errors.to_error(line.status_code, {}, line.error or {}, model=model)
        try:
            response: GenerateResponse = self.provider._response(line.reply, request)
        except Exception as error:  # a malformed reply is this item's failure, not the job's
            return error
        if name in PRICED_PROVIDERS:
            cost = cost_of(name, response.model or model, response.usage)
            response.cost = cost * BATCH_PRICE if cost is not None else None
        if request.output is None:
            return response
        from abstractcore.features.structured_strategy import structured_value

        try:
            return structured_value(request.output, response)
        except Exception as error:
            return error
