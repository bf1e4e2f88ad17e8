"""Cold start, measured in fresh interpreters: import time and RSS against the floors, and the
first call of a new process against bare aiohttp's first call (used by ``overhead.py``).

- **import**: wall time of ``python -c "import X"`` minus ``python -c pass`` and the RSS
  (``VmRSS``) right after the import, for abstractcore and the floors (``pass``, aiohttp,
  httpx, and, when installed, the official openai and anthropic SDKs and LiteLLM); every
  interpreter is fresh, the rounds are interleaved and the median is reported.
- **first call**: in a fresh interpreter, from before the first import to the reply in hand:
  bare aiohttp (``import aiohttp``, a ``ClientSession``, one ``post`` + ``resp.json()``) against
  abstractcore (``import abstractcore``, ``create_llm``, one ``agenerate`` under ``asyncio.run``,
  and the blocking ``generate``), same fake server, rounds interleaved, median.

Nothing here imports abstractcore: it measures the copy put first on ``PYTHONPATH``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

HEAVY_MODULES = ("httpx", "aiohttp", "pydantic", "anyio", "backoff", "asyncio", "sniffio")
IMPORT_TARGET_MS = 50.0
RSS_TARGET_MB = 15.0
FIRST_CALL_TARGET = 1.5  # abstractcore's first call / bare aiohttp's, at most

_RSS = (
    "\ntry:\n    _rss = int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1])\n"
    "except OSError:\n    import resource; _rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
)
_CLOCK = "import time as _t\n_t0 = _t.perf_counter()\n"
_DONE = "_ms = (_t.perf_counter() - _t0) * 1000\n" + _RSS + "print(_ms, _rss)\n"

#: import probes (each when installed): the floors and the peers; LiteLLM only in a venv that has it
FLOORS = {
    "pass": "pass",
    "aiohttp": "import aiohttp",
    "httpx": "import httpx",
    "openai": "import openai",
    "anthropic": "import anthropic",
    "litellm": "import litellm",
}


def abstractcore_root() -> str | None:
    """The directory abstractcore is imported from (found without importing it)."""
    spec = importlib.util.find_spec("abstractcore")
    if spec is None or spec.origin is None:
        return None
    return str(Path(spec.origin).resolve().parent.parent)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # `import litellm` would fetch its price list
    root = abstractcore_root()
    if root is not None:  # the same abstractcore as this process (PYTHONPATH=... included)
        env["PYTHONPATH"] = root
    return env


def _run(code: str, env: dict[str, str]) -> tuple[float, float, float]:
    """(process wall ms, in-process ms from the clock's start to _DONE, RSS KB) of one fresh run."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True, text=True)
    wall = (time.perf_counter() - start) * 1000
    inner, rss = out.stdout.split()[-2:]
    return wall, float(inner), float(rss)


def measure_import(runs: int) -> dict[str, Any]:
    """Import time and RSS of abstractcore and the floors in fresh interpreters (interleaved)."""
    env = _env()
    codes = {"abstractcore": "import abstractcore"}
    codes.update({k: v for k, v in FLOORS.items() if k == "pass" or importlib.util.find_spec(k)})
    for code in codes.values():  # warm the page cache and .pyc files
        _run(_CLOCK + code + "\n" + _DONE, env)
    samples: dict[str, list[tuple[float, float, float]]] = {k: [] for k in codes}
    for _ in range(runs):
        for name, code in codes.items():
            samples[name].append(_run(_CLOCK + code + "\n" + _DONE, env))
    med = {
        name: {
            "wall_ms": statistics.median(s[0] for s in rows),
            "in_process_ms": statistics.median(s[1] for s in rows),
            "rss_mb": statistics.median(s[2] for s in rows) / 1024,
        }
        for name, rows in samples.items()
    }
    for row in med.values():
        row["cost_ms"] = row["wall_ms"] - med["pass"]["wall_ms"]
    probe = (
        "import sys, json; before = set(sys.modules); import abstractcore; "
        f"heavy = {list(HEAVY_MODULES)!r}; "
        "print(json.dumps({'heavy': [m for m in heavy if m in sys.modules], "
        "'added': len(set(sys.modules) - before), 'file': abstractcore.__file__}))"
    )
    info = json.loads(
        subprocess.run(
            [sys.executable, "-c", probe], check=True, env=env, capture_output=True, text=True
        ).stdout
    )
    trace = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import abstractcore"],
        check=True,
        env=env,
        capture_output=True,
        text=True,
    ).stderr
    rows = []
    for line in trace.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _self_us, cumul_us, raw_name = line[len("import time:") :].split("|")
        depth = (len(raw_name) - len(raw_name.lstrip()) - 1) // 2  # 0 = imported by -c
        rows.append((int(cumul_us), raw_name.strip(), depth))
    top_level = sorted((r for r in rows if 1 <= r[2] <= 2), reverse=True)[:8]
    ac = med["abstractcore"]
    return {
        "python_pass_ms": med["pass"]["wall_ms"],
        "import_abstractcore_ms": ac["wall_ms"],
        "import_cost_ms": ac["cost_ms"],
        "rss_mb": ac["rss_mb"],
        "by_module": med,
        "heavy_modules_loaded": info["heavy"],
        "modules_added": info["added"],
        "abstractcore_file": info["file"],
        "importtime_top_cumulative_us": [(name, us) for us, name, _ in top_level],
    }


def _first_call_codes(root: str, model: str, api_key: str, prompt: str) -> dict[str, str]:
    url = f"{root}/v1/chat/completions"
    body = {"model": model, "messages": [{"role": "user", "content": prompt}]}
    headers = {"authorization": f"Bearer {api_key}", "accept": "application/json"}
    args = f"model={model!r}, base_url={root + '/v1'!r}, api_key={api_key!r}"
    llm = f"create_llm('openai', {args})"
    unpriced = f"create_llm('openai-compatible', {args})"
    return {
        "bare aiohttp": (
            "import asyncio, aiohttp\n"
            "async def main():\n"
            "    async with aiohttp.ClientSession() as s:\n"
            f"        async with s.post({url!r}, json={body!r}, headers={headers!r}) as r:\n"
            "            d = await r.json()\n"
            "    assert d['choices'][0]['message']['content']\n" + textwrap.indent(_DONE, "    ") + "\n"
            "asyncio.run(main())\n"
        ),
        "abstractcore agenerate": (
            "import asyncio\nfrom abstractcore import create_llm\n"
            "async def main():\n"
            f"    llm = {llm}\n"
            f"    r = await llm.agenerate({prompt!r})\n"
            "    assert r.content\n" + textwrap.indent(_DONE, "    ") + "\n"
            "    await llm.aclose()\n"
            "asyncio.run(main())\n"
        ),
        "abstractcore agenerate-unpriced": (
            "import asyncio\nfrom abstractcore import create_llm\n"
            "async def main():\n"
            f"    llm = {unpriced}\n"
            f"    r = await llm.agenerate({prompt!r})\n"
            "    assert r.content\n" + textwrap.indent(_DONE, "    ") + "\n"
            "    await llm.aclose()\n"
            "asyncio.run(main())\n"
        ),
        "abstractcore generate": (
            f"from abstractcore import create_llm\nllm = {llm}\nr = llm.generate({prompt!r})\n"
            "assert r.content\n" + _DONE + "llm.close()\n"
        ),
    }


def measure_first_call(root: str, runs: int, *, model: str, api_key: str, prompt: str) -> dict[str, Any]:
    """Setup plus the first request in a fresh interpreter, bare aiohttp against abstractcore."""
    env = _env()
    codes = _first_call_codes(root, model, api_key, prompt)
    for code in codes.values():  # warm the page cache and .pyc files
        _run(_CLOCK + code, env)
    samples: dict[str, list[float]] = {k: [] for k in codes}
    for _ in range(runs):
        for name, code in codes.items():
            samples[name].append(_run(_CLOCK + code, env)[1])
    return {name: {"ms": statistics.median(v), "samples": v} for name, v in samples.items()}


def _met(ok: bool) -> str:
    return "yes" if ok else "NO"


def report(imp: dict[str, Any] | None, first: dict[str, Any] | None, c100_ratio: float | None) -> list[str]:
    """The cold-start table (markdown lines): abstractcore against the floors, with the targets."""
    out = ["### Cold start (fresh interpreters, medians, interleaved)\n"]
    out.append("| metric | abstractcore | floor | ratio | target | met |")
    out.append("|---|---:|---:|---:|---:|:-:|")
    if imp is not None:
        by = imp["by_module"]
        floors = ", ".join(
            f"{k} {v['cost_ms']:.0f} ms" for k, v in by.items() if k not in ("pass", "abstractcore")
        )
        out.append(
            f"| import (wall - `python -c pass`) | {imp['import_cost_ms']:.0f} ms | {floors} | - "
            f"| ≤ {IMPORT_TARGET_MS:.0f} ms | {_met(imp['import_cost_ms'] <= IMPORT_TARGET_MS)} |"
        )
        rss_floors = ", ".join(f"{k} {v['rss_mb']:.1f} MB" for k, v in by.items() if k != "abstractcore")
        out.append(
            f"| RSS after import | {imp['rss_mb']:.1f} MB | {rss_floors} | - | ≤ {RSS_TARGET_MB:.0f} MB "
            f"| {'yes' if imp['rss_mb'] <= RSS_TARGET_MB else 'NO'} |"
        )
    if first is not None:
        bare = first["bare aiohttp"]["ms"]
        labels = {
            "abstractcore agenerate": "`openai`, agenerate",
            "abstractcore agenerate-unpriced": "`openai-compatible` (no price lookup), agenerate",
            "abstractcore generate": "`openai`, blocking generate",
        }
        for name, label in labels.items():
            r = first[name]["ms"] / bare
            met = _met(r <= FIRST_CALL_TARGET) if name == "abstractcore agenerate" else "-"
            target = f"≤ {FIRST_CALL_TARGET}x" if name == "abstractcore agenerate" else "-"
            out.append(
                f"| first call, fresh process ({label}) | {first[name]['ms']:.0f} ms "
                f"| bare aiohttp {bare:.0f} ms | {r:.2f}x | {target} | {met} |"
            )
    if c100_ratio is not None:
        out.append(
            f"| req/s @100 | - | bare aiohttp | {c100_ratio:.2f}x | ≥ 0.95x | {_met(c100_ratio >= 0.95)} |"
        )
    out.append("")
    return out
