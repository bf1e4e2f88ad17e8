"""An event loop keeps running while an in-process model loads cold and generates for the first
time, and the interpreter's switch interval the caller set is theirs again after the load.

The load must be cold (llama_cpp, numpy and jinja2 not yet imported, the model never loaded),
so it runs in a child process. How short the loop's stalls are is measured in
``benchmarks/load_lag.py``, never asserted here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from abstractcore.engines import gil

CHILD = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from abstractcore import create_llm

    sys.setswitchinterval(0.002)  # the caller's own choice

    async def main():
        beats, done = [], False

        async def heartbeat():
            while not done:
                await asyncio.sleep(0.001)
                beats.append(time.perf_counter())

        task = asyncio.create_task(heartbeat())
        await asyncio.sleep(0.01)
        llm = create_llm("huggingface", model=sys.argv[1])
        start = time.perf_counter()
        reply = await llm.agenerate("Say hi", max_tokens=4, temperature=0)
        end = time.perf_counter()
        done = True
        await task
        inside = [t for t in beats if start < t <= end]
        gaps = [b - a for a, b in zip([start, *inside], [*inside, end])]
        print(json.dumps({
            "text": reply.content, "seconds": end - start, "beats": len(inside),
            "longest_gap": max(gaps), "loaded": llm.loaded,
            "switch_interval": sys.getswitchinterval(),
        }))
        await llm.aunload()

    assert "llama_cpp" not in sys.modules
    asyncio.run(main())
    """
)


FIRST_CALL = textwrap.dedent(
    """
    import json, sys, threading
    imported = []
    def hook(event, args):
        if event == "import":
            imported.append((threading.get_ident(), args[0]))
    sys.addaudithook(hook)
    import asyncio, trio  # not anyio.run: it imports its backend before the first call
    from abstractcore.engines.host import ModelHost

    host = ModelHost(lambda: None, name="huggingface", model="m")  # as create_llm does

    async def main():
        loop_thread = threading.get_ident()
        before = len(imported)
        answer = await host.run(lambda cancel: 42)
        streamed = [item async for item in host.stream(lambda emit, cancel: [emit(1), emit(2)])]
        on_loop = [name for thread, name in imported[before:] if thread == loop_thread]
        print(json.dumps({"answer": answer, "streamed": streamed, "on_loop": on_loop}))

    asyncio.run(main()) if sys.argv[1] == "asyncio" else trio.run(main)
    """
)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_first_call_to_an_in_process_model_imports_nothing_on_the_event_loop(backend: str) -> None:
    # anyio imports its backend lazily on the loop's first use (~35 ms of the loop's own time):
    # creating the host has it imported in a thread, and the first call waits for that thread.
    done = subprocess.run(
        [sys.executable, "-c", FIRST_CALL, backend], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {"answer": 42, "streamed": [1, 2], "on_loop": []}


@pytest.mark.slow
def test_a_heartbeat_task_keeps_beating_through_a_cold_load_and_first_generation(gguf_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(gguf_path)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["loaded"] and isinstance(seen["text"], str)
    # The loop was never frozen for the load: the heartbeat ran all along (a load holding the
    # loop, or the GIL, for its whole length would leave one gap as long as the call itself).
    assert seen["beats"] >= 50
    assert seen["longest_gap"] < seen["seconds"] / 4
    assert seen["switch_interval"] == pytest.approx(0.002)


def test_a_load_window_restores_the_callers_switch_interval() -> None:
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.004)
    try:
        with gil.loading():
            assert sys.getswitchinterval() <= gil.LOAD_SWITCH_INTERVAL
            with gil.loading():  # nested, as creating then loading an engine
                pass
            assert sys.getswitchinterval() <= gil.LOAD_SWITCH_INTERVAL
        assert sys.getswitchinterval() == pytest.approx(0.004)
    finally:
        sys.setswitchinterval(before)


def test_concurrent_loads_share_one_window_and_a_change_made_meanwhile_is_kept() -> None:
    before = sys.getswitchinterval()
    entered, release = threading.Event(), threading.Event()

    def other_load() -> None:
        with gil.loading():
            entered.set()
            release.wait(10)

    try:
        sys.setswitchinterval(0.004)
        thread = threading.Thread(target=other_load)
        thread.start()
        entered.wait(10)
        with gil.loading():
            pass
        assert sys.getswitchinterval() <= gil.LOAD_SWITCH_INTERVAL  # the other load still runs
        release.set()
        thread.join(10)
        assert sys.getswitchinterval() == pytest.approx(0.004)

        with gil.loading():
            sys.setswitchinterval(0.003)  # the application changes it during a load
        assert sys.getswitchinterval() == pytest.approx(0.003)
    finally:
        release.set()
        sys.setswitchinterval(before)


def test_the_native_libraries_of_numpy_and_llama_cpp_are_found_without_importing_them() -> None:
    found = {p.name.split(".")[0] for p in gil.library_files("numpy") + gil.library_files("llama_cpp")}
    assert {"_multiarray_umath", "libllama"} <= found
    assert gil.library_files("no_such_package_here") == []
