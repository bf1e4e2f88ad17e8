"""Draw the benchmarks' JSON results as SVG figures and markdown tables for docs/benchmarks.md.

    python scripts/plot_benchmarks.py collect   # copy the newest benchmarks/results/*.json here
    python scripts/plot_benchmarks.py           # draw docs/benchmarks/*.svg, fill the page's tables
    python scripts/plot_benchmarks.py --check   # exit 1 when a figure or a table is out of date

The figures are drawn from the files committed under ``docs/benchmarks/results/`` only;
``machines.json`` there records, per file, the machine it was measured on (cores, CPU model),
the date and the command that reproduces it (written by ``collect``, on the measuring machine).
Each figure and table carries those three. SVGs are deterministic (a fixed ``svg.hashsalt``, no
date in the metadata, text kept as text), so ``--check`` compares bytes.

The tables go into docs/benchmarks.md between ``<!-- table:NAME -->`` and ``<!-- /table:NAME -->``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import re
import shutil
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "benchmarks" / "results"
FIGURES = ROOT / "docs" / "benchmarks"
PAGE = ROOT / "docs" / "benchmarks.md"
MACHINES = RESULTS / "machines.json"
#: benchmark -> how its result file is named in benchmarks/results/ (a time stamp follows)
BENCHMARKS = ("overhead", "router", "server", "structured")
SHARED = "shared with other jobs"
FORMATS = ("openai", "anthropic")  # the server benchmark's two stream formats


# -- collect -------------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _stamp(path: Path) -> str:
    found = re.search(r"(\d{8})-(\d{6})", path.name)
    if not found:
        return ""
    d, t = found.groups()
    return f"{d[:4]}-{d[4:6]}-{d[6:]} {t[:2]}:{t[2:4]}"


def _command(name: str, path: Path, data: dict[str, Any]) -> str:
    recorded = data.get("meta", {}).get("command")  # overhead.py records its command line
    if isinstance(recorded, str):
        return recorded
    quick = "quick" in path.name or bool(data.get("meta", {}).get("quick"))
    if name == "router":
        quick = data.get("total") == 1000
    return f"python benchmarks/{name}.py" + (" --quick" if quick else "")


def collect(source: Path) -> list[str]:
    """Copy the newest result file of each benchmark from ``source`` and describe its machine."""
    machines: dict[str, Any] = json.loads(MACHINES.read_text()) if MACHINES.exists() else {}
    copied = []
    for name in BENCHMARKS:
        files = sorted(source.glob(f"{name}-*.json"), key=lambda p: re.findall(r"\d{6,8}", p.name))
        if not files:
            continue
        newest = files[-1]
        for old in RESULTS.glob(f"{name}-*.json"):
            old.unlink()
            machines.pop(old.name, None)
        shutil.copy2(newest, RESULTS / newest.name)
        data = json.loads(newest.read_text())
        machines[newest.name] = {
            "benchmark": name,
            "cores": os.cpu_count(),
            "cpu": _cpu_model(),
            "date": _stamp(newest),
            "command": _command(name, newest, data),
            "note": f"{os.cpu_count()} cores {SHARED}: read the ratios, not the absolute rates",
        }
        copied.append(newest.name)
    MACHINES.write_text(json.dumps(dict(sorted(machines.items())), indent=1) + "\n")
    return copied


# -- drawing ---------------------------------------------------------------------------------------


def _plt() -> Any:
    import matplotlib

    matplotlib.use("svg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.hashsalt": "abstractcore", "svg.fonttype": "none", "font.size": 9})
    return plt


def _caption(info: dict[str, Any]) -> str:
    return f"{info['cores']} cores ({info['cpu']}), {SHARED}; {info['date']} UTC; `{info['command']}`"


def _svg(fig: Any, title: str, info: dict[str, Any]) -> bytes:
    fig.suptitle(title, fontsize=11)
    fig.text(0.5, 0.005, _caption(info).replace("`", ""), ha="center", va="bottom", fontsize=7, color="#555")
    fig.tight_layout(rect=(0, 0.05, 1, 0.95))
    out = io.BytesIO()
    fig.savefig(out, format="svg", metadata={"Date": None})
    _plt().close(fig)
    return out.getvalue()


def _bars(ax: Any, groups: list[str], series: dict[str, list[float | None]], ylabel: str) -> None:
    """Grouped bars; a missing value (a client that does not speak that format) draws none."""
    width = 0.8 / max(len(series), 1)
    for i, (label, values) in enumerate(series.items()):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        heights = [float("nan") if v is None else v for v in values]
        bars = ax.bar(xs, heights, width, label=label)
        ax.bar_label(bars, labels=["" if v is None else f"{v:,.0f}" for v in values], fontsize=6, padding=1)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylabel(ylabel)
    if len(series) <= 5:
        ax.legend(fontsize=7)
        return
    # With the peers: room above the tallest bar for a legend in columns, clear of the bars.
    top = max((v for values in series.values() for v in values if v is not None), default=1.0)
    ax.set_ylim(0, top * 1.45)
    ax.legend(fontsize=6, ncols=3, loc="upper center")


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(head: list[str], rows: list[list[str]], info: dict[str, Any]) -> str:
    lines = [_row(head), "|" + "---|" + "---:|" * (len(head) - 1), *(_row(r) for r in rows)]
    return "\n".join([*lines, "", f"Measured on {_caption(info)}."])


#: overhead.py's own clients (the rest are the peers: the official SDKs, LiteLLM, any-llm)
_TRANSPORTS = ("bare ", "httpx", "abstractcore")
#: overhead.py's request formats other than OpenAI's (the anthropic SDK sends Messages)
_REQUEST_FORMATS = {"ollama": "Ollama", "anthropic": "Anthropic Messages"}


def _cell(value: float | None, ratio: float | None) -> str:
    """``value (ratio x)``, or "-" for a client that does not speak that format."""
    if value is None or ratio is None:
        return "-"
    return f"{value:,.0f} ({ratio:.2f}x)"


def overhead(data: dict[str, Any], info: dict[str, Any]) -> tuple[bytes, str]:
    """Requests/s and stream deltas/s of each HTTP client against the same fake server."""
    plt = _plt()
    clients = data["clients"]
    ref = clients[0]["median"]
    peers = [c["name"] for c in clients if not c["name"].startswith(_TRANSPORTS)]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10 + 0.6 * max(len(clients) - 5, 0), 4))
    _bars(
        left,
        ["@100 in flight", "@500 in flight"],
        {c["name"]: [c["median"]["c100_rps"], c["median"]["c500_rps"]] for c in clients},
        "requests/s (higher is better)",
    )
    formats = ["openai", "ollama", "anthropic"]
    _bars(
        right,
        ["OpenAI SSE", "Ollama NDJSON", "Anthropic SSE"],
        {c["name"]: [c["median"]["stream_deltas_per_s"][f] for f in formats] for c in clients},
        "text deltas/s of a 5,000-delta stream",
    )
    title = "Transport overhead: abstractcore against bare aiohttp and httpx"
    if peers:
        title = "Transport overhead: abstractcore against bare aiohttp, httpx and the peers"
    svg = _svg(fig, title, info)
    rows = []
    for c in clients:
        m, same = c["median"], c["stream_paired_ratio_same_format"]
        kind = _REQUEST_FORMATS.get(c.get("request_format", "openai"))
        rows.append(
            [
                c["name"] + (f": {kind} requests" if kind else ""),
                *(
                    _cell(m[k], m[k] / ref[k] if m[k] is not None else None)
                    for k in ("seq_us", "c100_rps", "c500_rps")
                ),
                *(_cell(m["stream_deltas_per_s"][f], same[f]) for f in formats),
            ]
        )
    for key, label in (
        ("sync_generate_us", "abstractcore sync `generate`"),
        ("sync_openai_sdk_us", "openai SDK sync `create`"),
    ):
        samples = data.get(key)
        if samples and data.get("sync_openai_sdk_us"):  # the blocking faces, side by side
            us = statistics.median(samples)
            rows.append([label, _cell(us, us / ref["seq_us"]), "-", "-", "-", "-", "-"])
    head = ["client", "µs/request seq", "req/s @100", "req/s @500"]
    head += ["OpenAI SSE", "Ollama NDJSON", "Anthropic SSE"]
    return svg, _table(head, rows, info)


def router(data: dict[str, Any], info: dict[str, Any]) -> tuple[bytes, str]:
    """The bare provider against a fallback router and a round-robin router; abatch against gather."""
    plt = _plt()
    names = {"bare": "bare provider", "router": "router (fallback)", "round_robin": "round-robin router"}
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6), gridspec_kw={"width_ratios": [3, 2]})
    rates = [data["rates"][k] for k in names]
    bars = left.bar(list(names.values()), rates, color=["#777", "#1f77b4", "#2ca02c"])
    left.bar_label(bars, labels=[f"{v:,.0f}" for v in rates], fontsize=7)
    left.set_ylabel("requests/s @100 in flight")
    batch = data["batch_seconds"]
    seconds = [batch["gather"], batch["abatch"]]
    bars = right.bar(["asyncio.gather", "abatch"], seconds, color=["#777", "#1f77b4"])
    right.bar_label(bars, labels=[f"{batch['gather']:.3f} s", f"{batch['abatch']:.3f} s"], fontsize=7)
    right.set_ylabel("s for 1,000 prompts, 100 at a time")
    svg = _svg(fig, f"Router and batch overhead (median of {data['rounds']} interleaved rounds)", info)
    rows = [
        [names[k], f"{data['rates'][k]:,.0f}", f"{data['cpu_us'][k]:,.0f}"]
        + ([f"{data['ratios'][k]:.2f}x"] if k in data["ratios"] else ["1.00x"])
        for k in names
    ]
    rows.append(["`abatch` vs hand-written `gather`", "-", "-", f"{data['ratios']['batch']:.2f}x"])
    return svg, _table(["client", "req/s @100", "client CPU µs/request", "ratio vs bare"], rows, info)


def server(data: dict[str, Any], info: dict[str, Any]) -> tuple[bytes, str]:
    """``abstractcore serve`` and the same service on Starlette against the upstream and the provider."""
    plt = _plt()
    results = data["results"]

    def med(values: list[float]) -> float:
        ordered = sorted(values)
        return ordered[len(ordered) // 2] if ordered else float("nan")

    from matplotlib.ticker import FuncFormatter

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    short = [
        r["name"]
        .replace("same service, ", "")
        .replace(", called directly", "")
        .replace("abstractcore serve", "serve")
        .split(" (bare")[0]
        for r in results
    ]
    c100 = [med(r["c100"]) for r in results]
    left.barh(short, c100, color="#1f77b4")
    left.set_xlabel("requests/s @100 in flight")
    left.invert_yaxis()
    for fmt, offset in (("openai", -0.2), ("anthropic", 0.2)):
        vals = [med(r["streams"].get(fmt, [])) for r in results]
        right.barh([i + offset for i in range(len(results))], vals, 0.4, label=fmt)
    right.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:.0f}k"))
    right.set_xlabel("text deltas/s of one stream")
    right.legend(fontsize=7)
    svg = _svg(fig, "abstractcore serve: throughput in front of a fake upstream", info)
    rows = [
        [
            r["name"],
            f"{med(r['seq_us']):,.0f}",
            f"{med(r['c100']):,.0f}",
            *(f"{med(r['streams'][f]):,.0f}" if r["streams"].get(f) else "-" for f in FORMATS),
        ]
        for r in results
    ]
    head = ["target", "µs/request seq", "req/s @100", "OpenAI deltas/s", "Anthropic deltas/s"]
    return svg, _table(head, rows, info)


DRAW: dict[str, Callable[[dict[str, Any], dict[str, Any]], tuple[bytes, str]]] = {
    "overhead": overhead,
    "router": router,
    "server": server,
}


def render() -> tuple[dict[Path, bytes], dict[str, str]]:
    """Every figure (path -> SVG bytes) and table (name -> markdown) from the committed results."""
    machines: dict[str, Any] = json.loads(MACHINES.read_text()) if MACHINES.exists() else {}
    figures: dict[Path, bytes] = {}
    tables: dict[str, str] = {}
    for file, info in sorted(machines.items()):
        draw = DRAW.get(info["benchmark"])
        if draw is None:
            continue
        svg, table = draw(json.loads((RESULTS / file).read_text()), info)
        figures[FIGURES / f"{info['benchmark']}.svg"] = svg
        tables[info["benchmark"]] = table
    return figures, tables


def fill(page: str, tables: dict[str, str]) -> str:
    """The page with each ``<!-- table:NAME -->`` block replaced by its current table."""
    for name, table in tables.items():
        pattern = re.compile(rf"(<!-- table:{name} -->\n)(?:.*?\n)?(<!-- /table:{name} -->)", re.S)
        page = pattern.sub(lambda m: m.group(1) + table + "\n" + m.group(2), page)  # noqa: B023
    return page


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", nargs="?", choices=("draw", "collect"), default="draw")
    parser.add_argument("--check", action="store_true", help="fail when a figure or table is stale")
    parser.add_argument("--from", dest="source", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    if args.action == "collect":
        print("copied:", ", ".join(collect(args.source)) or "nothing")
        return 0
    figures, tables = render()
    page = PAGE.read_text()
    stale = [str(p.relative_to(ROOT)) for p, s in figures.items() if not p.exists() or p.read_bytes() != s]
    filled = fill(page, tables)
    if filled != page:
        stale.append(str(PAGE.relative_to(ROOT)))
    if args.check:
        if stale:
            print("out of date (run python scripts/plot_benchmarks.py):", ", ".join(stale), file=sys.stderr)
            return 1
        print(f"{len(figures)} figures and {len(tables)} tables are current")
        return 0
    for path, svg in figures.items():
        path.write_bytes(svg)
    PAGE.write_text(filled)
    print("wrote:", ", ".join(stale) or "nothing (all current)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
