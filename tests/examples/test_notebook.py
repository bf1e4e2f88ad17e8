"""examples/notebook.ipynb: committed without outputs, and every cell runs in a real Jupyter kernel."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "examples" / "notebook.ipynb"
KERNEL = "abstractcore-tests"


def test_the_notebook_is_committed_without_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    assert all(c.outputs == [] and c.execution_count is None for c in code), "clear the outputs"


def _kernel_spec(tmp: Path) -> None:
    """This interpreter as a Jupyter kernel, in a temporary JUPYTER_PATH (nothing global installed)."""
    spec = tmp / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    pythonpath = os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])
    kernel = {"argv": argv, "display_name": KERNEL, "language": "python", "env": {"PYTHONPATH": pythonpath}}
    (spec / "kernel.json").write_text(json.dumps(kernel))


@pytest.mark.slow
def test_every_cell_runs_inside_the_kernels_running_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbclient import NotebookClient

    _kernel_spec(tmp_path)
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # raises CellExecutionError on the first cell that fails
    where = {"metadata": {"path": str(tmp_path)}}  # the kernel's working directory
    client = NotebookClient(nb, kernel_name=KERNEL, timeout=180, resources=where)
    client.execute()

    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    texts = ["".join(o.text for o in c.outputs if o.output_type == "stream") for c in code]
    assert texts[0].strip() == "inside a running loop: True"
    generated, counts = texts[1].strip().rsplit("\n", 1)
    assert generated.strip()
    assert "tokens in," in counts and int(counts.split()[0]) > 0
    assert texts[2].strip()  # the streamed text
    assert texts[3].strip()  # the awaited agenerate
