"""What does llama.cpp's weight repacking (and the build's CPU flags) cost or buy in process?

    .venv/bin/python benchmarks/repack.py                       # the installed llama-cpp-python
    .venv/bin/python benchmarks/repack.py --quant Q4_0          # a Q4_0 copy: the type x86 repacks
    PYTHONPATH=/tmp/other-build .venv/bin/python benchmarks/repack.py   # another build of llama-cpp-python

For the build it runs on (its compiled CPU features are printed), with repacking
on (``repack=True``) and off (``repack=False``), rounds interleaved, median of 3:

- single: one ``generate`` of ``--tokens`` tokens after a ~200-token prompt
  (the prompt length that crashed AMX builds), ``parallel=1``; prompt and
  generation tokens/s;
- gathered: 8 different prompts ``asyncio.gather``-ed on ``parallel=8``
  (continuous batching), generated tokens/s over the wall time.

``--quant Q4_0`` first writes a Q4_0 copy of the SmolLM2 GGUF (llama.cpp's own
quantiser, ``allow_requantize``) into ``benchmarks/results/``: Q4_1, the shipped
type, has no repacked layout on x86, so repacking changes nothing for it.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

from local_models import PROMPTS20, gguf_path  # benchmarks/ is on the path when run as a script

RUNS = 3
PROMPT = " ".join(f"Item {i} is a small red box that sits on a wooden shelf." for i in range(16))
QUESTIONS = PROMPTS20[:8]


def requantized(source: Path, quant: str) -> Path:
    import llama_cpp

    target = Path(__file__).parent / "results" / f"{source.stem.rsplit('.', 1)[0]}.{quant}.gguf"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{quant}")
    params.allow_requantize = True
    if llama_cpp.llama_model_quantize(str(source).encode(), str(target).encode(), params) != 0:
        raise SystemExit(f"llama.cpp could not quantise {source} to {quant}")
    return target


def single(path: Path, repack: bool, tokens: int) -> tuple[float, float]:
    """(prompt tokens/s, generated tokens/s) of one call on a freshly loaded parallel=1 model."""
    from abstractcore import create_llm

    llm = create_llm(
        "huggingface", model=str(path), parallel=1, repack=repack, temperature=0, max_tokens=tokens
    )
    llm.generate("Hi", max_tokens=1)  # load outside the timing
    start = time.perf_counter()
    first: list[float] = []
    count = 0
    for chunk in llm.stream(PROMPT + " How many boxes are there? Tell a long story about them."):
        if chunk.content and not first:
            first.append(time.perf_counter())
        count += 1 if chunk.content else 0
    end = time.perf_counter()
    usage = llm.generate(PROMPT, max_tokens=1).usage
    llm.unload()
    assert usage is not None and first
    return usage.input_tokens / (first[0] - start), max(1, count - 1) / (end - first[0])


def gathered(path: Path, repack: bool, tokens: int) -> float:
    """Generated tokens/s of 8 concurrent calls on a warm parallel=8 model."""
    from abstractcore import create_llm

    llm = create_llm(
        "huggingface", model=str(path), parallel=8, repack=repack, temperature=0, max_tokens=tokens
    )

    async def main() -> float:
        await asyncio.gather(*(llm.agenerate(q) for q in QUESTIONS))  # load and warm up
        start = time.perf_counter()
        answers = await asyncio.gather(*(llm.agenerate(q) for q in QUESTIONS))
        elapsed = time.perf_counter() - start
        return sum(a.usage.output_tokens for a in answers if a.usage) / elapsed

    try:
        return asyncio.run(main())
    finally:
        llm.unload()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quant", default=None, help="requantise the model first (e.g. Q4_0)")
    parser.add_argument("--tokens", type=int, default=64)
    args = parser.parse_args()
    import llama_cpp

    from abstractcore.engines import llamacpp_native

    path = gguf_path() if args.quant is None else requantized(gguf_path(), args.quant)
    features = sorted(llamacpp_native.build_features(llama_cpp))
    print(f"llama_cpp {llama_cpp.__version__} from {Path(llama_cpp.__file__).parent}")
    print(f"build: {' '.join(features)}")
    print(f"model: {path.name}; repacking safe here: {llamacpp_native.use_extra_buffers(llama_cpp, None)}")
    rows: dict[str, list[Any]] = {}
    for run in range(RUNS):
        for repack in (True, False) if run % 2 == 0 else (False, True):
            prefill, decode = single(path, repack, args.tokens)
            rows.setdefault(f"repack={repack} single prompt tok/s", []).append(prefill)
            rows.setdefault(f"repack={repack} single gen tok/s", []).append(decode)
            rows.setdefault(f"repack={repack} 8 gathered tok/s", []).append(gathered(path, repack, 32))
    for name, values in rows.items():
        print(f"{name:38s} {statistics.median(values):8.1f}   ({', '.join(f'{v:.1f}' for v in values)})")


if __name__ == "__main__":
    main()
