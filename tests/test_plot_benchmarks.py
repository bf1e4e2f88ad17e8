"""docs/benchmarks.md's figures and tables are the ones scripts/plot_benchmarks.py draws from the
committed results (so a changed result file, or a hand-edited table, fails here)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "plot_benchmarks.py"


def _check(root: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(root / "scripts" / "plot_benchmarks.py"), "--check"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=root)


def test_the_committed_figures_and_tables_are_current() -> None:
    done = _check(ROOT)
    assert done.returncode == 0, done.stderr
    assert "3 figures and 3 tables are current" in done.stdout


def test_every_figure_names_the_machine_the_date_and_the_command() -> None:
    machines = json.loads((ROOT / "docs" / "benchmarks" / "results" / "machines.json").read_text())
    page = (ROOT / "docs" / "benchmarks.md").read_text()
    for file, info in machines.items():
        assert (ROOT / "docs" / "benchmarks" / "results" / file).is_file()
        svg = (ROOT / "docs" / "benchmarks" / f"{info['benchmark']}.svg").read_text()
        for said in (f"{info['cores']} cores", info["cpu"], info["date"], info["command"]):
            assert said in svg, (file, said)
            assert said in page, (file, said)
        assert f"(./benchmarks/{info['benchmark']}.svg)" in page


def test_a_changed_result_makes_the_check_fail(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    (copy / "scripts").mkdir(parents=True)
    shutil.copy2(SCRIPT, copy / "scripts")
    shutil.copytree(ROOT / "docs" / "benchmarks", copy / "docs" / "benchmarks")
    shutil.copy2(ROOT / "docs" / "benchmarks.md", copy / "docs")
    assert _check(copy).returncode == 0
    result = next((copy / "docs" / "benchmarks" / "results").glob("router-*.json"))
    data = json.loads(result.read_text())
    data["rates"]["router"] *= 0.5
    result.write_text(json.dumps(data))
    done = _check(copy)
    assert done.returncode == 1
    assert "docs/benchmarks/router.svg" in done.stderr and "docs/benchmarks.md" in done.stderr


def test_the_peers_are_drawn_and_tabled_with_a_dash_where_they_speak_no_such_format() -> None:
    """overhead.py's peers (the official SDKs, LiteLLM) speak only their own formats: the page
    shows "-" there, names the anthropic SDK's requests as Messages, and the caption the command
    the run recorded."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import plot_benchmarks
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    data = json.loads(next((ROOT / "docs" / "benchmarks" / "results").glob("overhead-*.json")).read_text())
    ref = data["clients"][0]
    none = {"openai": None, "ollama": None, "anthropic": None}

    def peer(name: str, fmt: str, request_format: str) -> dict[str, object]:
        median = {**ref["median"], "stream_deltas_per_s": {**none, fmt: 1234.0}}
        return {
            **ref,
            "name": name,
            "request_format": request_format,
            "median": median,
            "stream_paired_ratio_same_format": {**none, fmt: 0.05},
        }

    data["clients"] += [
        peer("openai SDK", "openai", "openai"),
        peer("anthropic SDK", "anthropic", "anthropic"),
    ]
    data["meta"]["command"] = "python benchmarks/overhead.py --clients default,openai-sdk,anthropic-sdk"
    info = {"cores": 2, "cpu": "a CPU", "date": "2026-12-08 00:00", "command": data["meta"]["command"]}
    svg, table = plot_benchmarks.overhead(data, info)
    rows = {line.split(" | ")[0].lstrip("| "): line for line in table.splitlines()}
    assert rows["openai SDK"].endswith("| 1,234 (0.05x) | - | - |")
    assert rows["anthropic SDK: Anthropic Messages requests"].endswith("| - | - | 1,234 (0.05x) |")
    assert b"and the peers" in svg and b"openai SDK" in svg
    assert plot_benchmarks._command("overhead", Path("overhead-x.json"), data) == info["command"]
