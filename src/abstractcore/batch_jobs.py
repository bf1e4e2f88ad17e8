"""Provider batch jobs: ``abatch(items, via="provider")``, ``asubmit_batch``, ``aresume_batch``,
``acancel_batch`` (and their blocking twins) over the providers' own batch APIs (OpenAI Batch,
Anthropic Message Batches: results within 24 hours, at half the price).

Each item becomes one ``Request`` (``build_request``), prepared by the provider's pipeline as a
live call would be (``_prepared``) and encoded by the provider's body builder; the items go up
in as few provider batches as the API's limits allow (``BatchLimits``: request count and bytes).
The item's position travels as its ``custom_id`` and the job's id names every provider batch
(``"openai:batch_abc,batch_def"``), so the provider holds everything: any process that has the
id gets the results (``aresume_batch``), even when the one that submitted died. Polling backs
off from ``poll_interval`` to a minute; progress comes from the provider's request counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from abstractcore.batch import BatchError, _Bar, _calls, _show_progress
from abstractcore.core.errors import BatchItemError, ConfigurationError
from abstractcore.features.request import Request, build_request, pipeline_of
from abstractcore.providers.batches import BatchAPI
from abstractcore.wire.batches import BatchLimits, BatchStatus, split

__all__ = ["BatchJob", "BatchLimits", "Via", "acancel", "aresume", "asubmit"]

#: Where ``abatch(via=...)`` runs a job: "provider" (its batch API); None is in process.
Via = Literal["provider"]

#: The longest wait between two polls, in seconds.
MAX_POLL_INTERVAL = 60.0


@dataclass(frozen=True)
class BatchJob:
    """A submitted provider batch job. ``id`` is all another process needs to resume it.

    ``provider`` is the provider's name, ``batch_ids`` the provider batches it was split into
    (consecutive items, in order) and ``sizes`` how many items each holds: the id carries both
    (``"openai:batch_abc=50000,batch_def=10000"``), as a batch the provider refused may report
    no counts at all.
    """

    id: str
    provider: str
    batch_ids: tuple[str, ...]
    sizes: tuple[int, ...]
    _requests: tuple[Request, ...] = field(default=(), repr=False, compare=False)

    @property
    def total(self) -> int:
        """The job's items."""
        return sum(self.sizes)

    @classmethod
    def parse(cls, job: BatchJob | str) -> BatchJob:
        """The job an id names (``"provider:batch_id=items[,batch_id=items...]"``)."""
        if isinstance(job, BatchJob):
            return job
        name, _, rest = job.partition(":") if isinstance(job, str) else ("", "", "")
        parts = [part.rpartition("=") for part in rest.split(",") if part]
        if not name or not parts or not all(i and sep and n.isdigit() for i, sep, n in parts):
            raise ConfigurationError(
                f"Not a batch job id: {job!r}; it is the id of what asubmit_batch returned "
                "(job.id, e.g. 'openai:batch_abc123=20')."
            )
        return cls(str(job), name, tuple(i for i, _, _ in parts), tuple(int(n) for _, _, n in parts))


def _api(llm: Any) -> BatchAPI:
    provider: Any = pipeline_of(llm)
    api: BatchAPI | None = provider._batch_api() if callable(getattr(provider, "_batch_api", None)) else None
    if api is None:
        raise ConfigurationError(
            f"{getattr(provider, 'name', type(provider).__name__)} has no batch API (OpenAI and "
            "Anthropic have): run the job in process with abatch(items) (no via=), or over many "
            "machines with abstractcore.integrations.ray."
        )
    return api


async def asubmit(
    llm: Any,
    items: Sequence[str | Mapping[str, Any]],
    *,
    limits: BatchLimits | None = None,
    **params: Any,
) -> BatchJob:
    """Send ``items`` as a provider batch job and return it at once (see the module)."""
    api = _api(llm)
    limits = limits or api.limits
    calls = _calls(items, params)
    if not calls:
        raise ConfigurationError("submit_batch() needs at least one item.")
    provider: Any = api.provider
    requests = [await provider._prepared(build_request(prompt, **kwargs)) for prompt, kwargs in calls]
    encoded = [api.encode(index, request) for index, request in enumerate(requests)]
    try:
        parts = split([len(e) + 1 for e in encoded], limits)
    except ValueError as exc:
        raise ConfigurationError(
            f"A batch item is too large for {provider.name}'s batch API: {exc}."
        ) from None
    import anyio

    created: list[str] = []
    try:
        for part in parts:
            status = await api.create(encoded[part.start : part.stop], requests[part.start : part.stop])
            created.append(status.id)
    except BaseException:
        with anyio.CancelScope(shield=True):  # nothing left running that no job id names
            for batch_id in created:
                try:
                    await api.cancel(batch_id)
                except Exception:  # the original failure is what the caller needs
                    pass
        raise
    sizes = tuple(len(part) for part in parts)
    job_id = f"{provider.name}:" + ",".join(f"{b}={n}" for b, n in zip(created, sizes, strict=True))
    return BatchJob(job_id, provider.name, tuple(created), sizes, tuple(requests))


async def acancel(llm: Any, job: BatchJob | str) -> None:
    """Ask the provider to stop every batch of ``job``; what finished stays readable."""
    found = _checked(llm, job)
    api = _api(llm)
    for batch_id in found.batch_ids:
        await api.cancel(batch_id)


def _checked(llm: Any, job: BatchJob | str) -> BatchJob:
    found = BatchJob.parse(job)
    name = getattr(pipeline_of(llm), "name", None)
    if found.provider != name:
        raise ConfigurationError(
            f"Job {found.id!r} belongs to {found.provider}; resume it with that provider."
        )
    return found


async def aresume(
    llm: Any,
    job: BatchJob | str,
    *,
    response_model: Any = None,
    return_exceptions: bool = True,
    progress: bool | None = None,
    poll_interval: float = 5.0,
) -> list[Any]:
    """Wait for ``job`` and return its results in input order (``abatch``'s result type)."""
    found = _checked(llm, job)
    if isinstance(poll_interval, bool) or not isinstance(poll_interval, (int, float)) or poll_interval <= 0:
        raise ConfigurationError(f"poll_interval must be a number of seconds > 0; got {poll_interval!r}.")
    api = _api(llm)
    statuses = await _wait(api, found, _show_progress(progress), float(poll_interval))
    total = found.total
    requests = found._requests
    if len(requests) != total:  # another process: the request shape needed to decode, re-given
        generic = await api.provider._prepared(build_request("", response_model=response_model))
        requests = (generic,) * total
    results: list[Any] = [None] * total
    seen = [False] * total
    start = 0
    for status, size in zip(statuses, found.sizes, strict=True):
        async for line in api.lines(status):
            if start <= line.index < start + size:  # a line of this batch's items only
                results[line.index] = api.decode(line, requests[line.index])
                seen[line.index] = True
        why = status.failure or f"the provider returned no line for it (batch {status.status})."
        for index in range(start, start + size):
            if not seen[index]:
                results[index] = BatchItemError(
                    f"Item {index} has no result: {why}",
                    reason="failed",
                    custom_id=f"item-{index}",
                    provider=found.provider,
                    model=requests[index].model,
                )
        start += size
    if not return_exceptions:
        _raise_first(results)
    return results


async def _wait(api: BatchAPI, job: BatchJob, show: bool, interval: float) -> list[BatchStatus]:
    """Poll every batch of ``job`` until all have ended (backing off), the bar following the counts."""
    import anyio

    statuses = {batch_id: await api.status(batch_id) for batch_id in job.batch_ids}
    bar = _Bar(job.total, show)
    try:
        while True:
            bar.to(
                sum(s.succeeded + s.failed for s in statuses.values()),
                sum(s.failed for s in statuses.values()),
            )
            if all(s.ended for s in statuses.values()):
                return [statuses[batch_id] for batch_id in job.batch_ids]
            await anyio.sleep(interval)
            interval = min(interval * 1.5, max(interval, MAX_POLL_INTERVAL))
            for batch_id, status in statuses.items():
                if not status.ended:
                    statuses[batch_id] = await api.status(batch_id)
    finally:
        bar.close()


def _raise_first(results: list[Any]) -> None:
    for index, result in enumerate(results):
        if isinstance(result, Exception):
            kept = [None if isinstance(r, Exception) else r for r in results]
            raise BatchError(
                f"Item {index} of {len(results)} failed ({type(result).__name__}: {result}). The "
                "answers are in .results (None for the failed items); return_exceptions=True puts "
                "each error in its slot.",
                results=kept,
                index=index,
            ) from result
