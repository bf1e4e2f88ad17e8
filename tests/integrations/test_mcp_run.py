"""A user's own script: ``with MCPTools.stdio(...)`` and ``llm.run(..., tools=[...])`` over the
in-process model, run as its own process, ends cleanly with the server's result in the run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.mcp_servers.running import SERVER

pytestmark = pytest.mark.slow

SRC = Path(__file__).resolve().parents[2] / "src"

SCRIPT = """\
import json
import sys

from abstractcore import MCPTools, create_llm

server, model = sys.argv[1], sys.argv[2]
with MCPTools.stdio(sys.executable, args=[server], filter=["forecast"]) as weather:
    llm = create_llm("huggingface", model=model, max_tokens=48, temperature=0)
    result = llm.run(
        "What is the weather in Oslo tomorrow?", tools=[weather], tool_choice="forecast", max_turns=3
    )
executions = [
    {"name": e.call.name, "result": e.result, "error": e.error}
    for step in result.steps
    for e in step.executions
]
print(json.dumps({"executions": executions, "output": result.output}))
"""


def test_a_script_runs_the_model_with_an_mcp_servers_tool_and_exits_cleanly(
    gguf_path: Path, tmp_path: Path
) -> None:
    script = tmp_path / "weather_agent.py"
    script.write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), SERVER, str(gguf_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(SRC)},
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "warning" not in done.stderr.lower(), done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    first = answer["executions"][0]
    assert first["name"] == "forecast" and first["error"] is None
    assert first["result"] == {"city": first["result"]["city"], "celsius": 21}  # the server's answer
    assert isinstance(answer["output"], str) and answer["output"].strip()
