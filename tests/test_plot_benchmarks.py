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
