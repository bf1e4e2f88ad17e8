"""The thread bridge for in-process models, with blocking functions standing in for a model."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import aclosing

import anyio
import pytest

from abstractcore import _portal
from abstractcore.engines.worker import Emit, ModelWorker, StreamClosed
from tests.support.local_models import wait_until


class Tracker:
    """Counts how many calls hold the 'model' at once."""

    def __init__(self) -> None:
        self.active = 0
        self.most = 0
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        with self._lock:
            self.active += 1
            self.most = max(self.most, self.active)

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.active -= 1


def endless_tokens(
    stopped: threading.Event, counter: list[int]
) -> Callable[[Emit[int], threading.Event], None]:
    """A producer that 'generates' forever, one token per 5 ms, until told to stop."""

    def produce(emit: Emit[int], cancel: threading.Event) -> None:
        try:
            while not cancel.is_set():
                time.sleep(0.005)
                counter[0] += 1
                emit(counter[0])
        finally:
            stopped.set()

    return produce


@pytest.mark.anyio
async def test_run_happens_in_a_worker_thread_while_the_loop_keeps_ticking() -> None:
    worker: ModelWorker[int] = ModelWorker("test")
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await anyio.sleep(0.01)
            ticks += 1

    def blocking(cancel: threading.Event) -> int:
        time.sleep(0.3)  # a model call that never yields to the loop
        return threading.get_ident()

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        ident = await worker.run(blocking)
        tg.cancel_scope.cancel()
    assert ident != threading.get_ident()
    assert ticks >= 10  # the loop kept running for the whole call


@pytest.mark.anyio
async def test_concurrent_runs_queue_and_all_answer() -> None:
    worker: ModelWorker[int] = ModelWorker("test")
    tracker = Tracker()
    results: list[int] = []

    def call(i: int) -> Callable[[threading.Event], int]:
        def blocking(cancel: threading.Event) -> int:
            with tracker:
                time.sleep(0.03)
            return i

        return blocking

    async def one(i: int) -> None:
        results.append(await worker.run(call(i)))

    async with anyio.create_task_group() as tg:
        for i in range(5):
            tg.start_soon(one, i)
    assert sorted(results) == [0, 1, 2, 3, 4]
    assert tracker.most == 1


@pytest.mark.anyio
async def test_cancelled_run_stops_the_thread_and_the_model_stays_usable() -> None:
    worker: ModelWorker[int] = ModelWorker("test")
    stopped = threading.Event()
    steps = [0]

    def generate(cancel: threading.Event) -> int:
        while not cancel.is_set():  # the per-token check
            steps[0] += 1
            time.sleep(0.005)
        stopped.set()
        return steps[0]

    with anyio.move_on_after(0.1) as scope:
        await worker.run(generate)
    assert scope.cancelled_caught
    assert await anyio.to_thread.run_sync(stopped.wait, 5)
    assert await worker.run(lambda cancel: 42) == 42


@pytest.mark.anyio
async def test_stream_hands_over_each_item_while_the_producer_runs() -> None:
    worker: ModelWorker[int] = ModelWorker("test")
    acks = [threading.Event() for _ in range(5)]
    waited_in_vain: list[int] = []

    def produce(emit: Emit[int], cancel: threading.Event) -> None:
        for i, ack in enumerate(acks):
            emit(i)
            if not ack.wait(5):  # only the consumer having seen item i releases item i + 1
                waited_in_vain.append(i)

    received = []
    async with aclosing(worker.stream(produce)) as items:
        async for item in items:
            received.append(item)
            acks[item].set()
    assert received == [0, 1, 2, 3, 4]
    assert waited_in_vain == []


@pytest.mark.anyio
async def test_closing_the_stream_stops_the_producer() -> None:
    worker: ModelWorker[int] = ModelWorker("test")
    stopped = threading.Event()
    counter = [0]
    async with aclosing(worker.stream(endless_tokens(stopped, counter))) as items:
        async for item in items:
            if item == 3:
                break
    assert await anyio.to_thread.run_sync(stopped.wait, 5)
    assert await worker.run(lambda cancel: "free") == "free"


@pytest.mark.anyio
async def test_breaking_out_without_aclose_still_stops_the_producer() -> None:
    """The async generator is finalised by the event loop once it is dropped."""
    worker: ModelWorker[int] = ModelWorker("test")
    stopped = threading.Event()
    counter = [0]
    async for item in worker.stream(endless_tokens(stopped, counter)):
        if item == 3:
            break
    assert await anyio.to_thread.run_sync(stopped.wait, 5)
    assert await worker.run(lambda cancel: "free") == "free"


@pytest.mark.anyio
async def test_cancelling_the_consuming_task_stops_the_producer() -> None:
    worker: ModelWorker[int] = ModelWorker("test")
    stopped = threading.Event()
    counter = [0]
    seen = []
    with anyio.move_on_after(0.1):
        async for item in worker.stream(endless_tokens(stopped, counter)):
            seen.append(item)
    assert seen
    assert await anyio.to_thread.run_sync(stopped.wait, 5)
    assert await worker.run(lambda cancel: "free") == "free"


@pytest.mark.anyio
async def test_a_producer_error_arrives_after_the_items_before_it() -> None:
    worker: ModelWorker[str] = ModelWorker("test")

    def produce(emit: Emit[str], cancel: threading.Event) -> None:
        emit("a")
        emit("b")
        raise ValueError("model exploded")

    received = []
    with pytest.raises(ValueError, match="model exploded"):
        async for item in worker.stream(produce):
            received.append(item)
    assert received == ["a", "b"]
    assert await worker.run(lambda cancel: "free") == "free"


def test_breaking_out_of_a_sync_stream_stops_the_producer() -> None:
    worker: ModelWorker[int] = ModelWorker("test")
    stopped = threading.Event()
    counter = [0]
    for item in _portal.iterate(worker.stream(endless_tokens(stopped, counter))):
        if item == 3:
            break
    assert stopped.wait(5)
    emitted = counter[0]
    time.sleep(0.05)
    assert counter[0] == emitted  # nothing is generated once the consumer has gone
    assert _portal.call(worker.run, lambda cancel: "free") == "free"


def test_emit_raises_once_the_consumer_is_gone() -> None:
    worker: ModelWorker[int] = ModelWorker("test")
    outcome: list[BaseException] = []
    done = threading.Event()

    def produce(emit: Emit[int], cancel: threading.Event) -> None:
        try:
            for i in range(10_000):
                emit(i)
                time.sleep(0.001)
        except StreamClosed as exc:
            outcome.append(exc)
            raise
        finally:
            done.set()

    stream = _portal.iterate(worker.stream(produce))
    assert next(stream) == 0
    stream.close()  # type: ignore[attr-defined]
    assert done.wait(5)
    assert outcome and isinstance(outcome[0], StreamClosed)


@pytest.mark.anyio
async def test_one_model_is_shared_safely_by_two_event_loops() -> None:
    """The sync face's loop and the caller's loop never run the model at the same time."""
    worker: ModelWorker[int] = ModelWorker("test")
    tracker = Tracker()

    def produce(emit: Emit[int], cancel: threading.Event) -> None:
        with tracker:
            for i in range(5):
                time.sleep(0.01)
                emit(i)

    def blocking(cancel: threading.Event) -> str:
        with tracker:
            time.sleep(0.02)
        return "done"

    def sync_consumer() -> list[int]:
        return list(_portal.iterate(worker.stream(produce)))

    async with anyio.create_task_group() as tg:
        results: list[object] = []

        async def in_thread() -> None:
            results.append(await anyio.to_thread.run_sync(sync_consumer))

        async def here() -> None:
            for _ in range(3):
                results.append(await worker.run(blocking))

        tg.start_soon(in_thread)
        tg.start_soon(here)
    assert [0, 1, 2, 3, 4] in results and results.count("done") == 3
    assert tracker.most == 1
    assert wait_until(lambda: not worker.busy, 5)


def bounded_tokens(n: int, stopped: threading.Event) -> Callable[[Emit[int], threading.Event], None]:
    """A producer that 'generates' ``n`` tokens (a generation bounded by max_tokens)."""

    def produce(emit: Emit[int], cancel: threading.Event) -> None:
        try:
            for i in range(n):
                if cancel.is_set():
                    return
                time.sleep(0.002)
                emit(i)
        finally:
            stopped.set()

    return produce


@pytest.mark.anyio
async def test_an_unread_stream_held_in_a_variable_frees_the_model_when_its_generation_ends() -> None:
    worker: ModelWorker[int] = ModelWorker("test")
    stopped = threading.Event()
    stream = worker.stream(bounded_tokens(200, stopped))
    async for item in stream:
        if item == 2:
            break  # the generator is suspended, not closed: the caller still holds it
    with anyio.fail_after(10):
        assert await worker.run(lambda cancel: "free") == "free"
    assert stopped.is_set()
    await stream.aclose()  # type: ignore[attr-defined]


def test_an_unread_sync_stream_held_in_a_variable_frees_the_model() -> None:
    worker: ModelWorker[int] = ModelWorker("test")
    stopped = threading.Event()
    stream = _portal.iterate(worker.stream(bounded_tokens(200, stopped)))
    for item in stream:
        if item == 2:
            break
    assert _portal.call(worker.run, lambda cancel: "free") == "free"
    assert stopped.is_set()
    del stream


def test_a_held_sync_stream_stops_its_producer_when_garbage_collected() -> None:
    import gc

    worker: ModelWorker[int] = ModelWorker("test")
    stopped = threading.Event()
    counter = [0]
    stream = _portal.iterate(worker.stream(endless_tokens(stopped, counter)))
    assert next(stream) == 1
    del stream
    gc.collect()
    assert stopped.wait(5)


@pytest.mark.anyio
async def test_a_held_async_stream_stops_its_producer_when_garbage_collected() -> None:
    import gc

    worker: ModelWorker[int] = ModelWorker("test")
    stopped = threading.Event()
    counter = [0]
    stream = worker.stream(endless_tokens(stopped, counter))
    async for _ in stream:
        break
    del stream
    gc.collect()
    assert await anyio.to_thread.run_sync(stopped.wait, 5)


def test_stop_all_workers_cancels_and_joins_every_running_call() -> None:
    from abstractcore.engines.worker import stop_all_workers

    worker: ModelWorker[int] = ModelWorker("test")
    stopped = threading.Event()
    counter = [0]
    stream = _portal.iterate(worker.stream(endless_tokens(stopped, counter)))
    next(stream)
    assert stop_all_workers(timeout=5)  # what interpreter exit runs
    assert stopped.is_set()
    assert wait_until(lambda: not worker.busy, 5)
    stream.close()  # type: ignore[attr-defined]


def test_a_finished_event_loop_stops_the_producer_instead_of_hanging_it() -> None:
    from abstractcore.engines.worker import LoopGone, StreamClosed, _Channel

    cancel = threading.Event()

    def gone(fn: object, *args: object) -> None:
        raise LoopGone("the event loop is closed")

    channel = _Channel(None, gone, cancel)  # type: ignore[arg-type]
    with pytest.raises(StreamClosed):
        channel.put(1)
    assert cancel.is_set()
