"""``MCPTools`` before any server is started: bad arguments and a missing extra are typed errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from abstractcore import ConfigurationError, MCPTools


def test_without_the_extra_building_one_names_the_pip_command() -> None:
    code = (
        "import sys\n"
        "sys.modules['mcp'] = None  # as if abstractcore[mcp] were not installed\n"
        "from abstractcore import BackendNotInstalledError, MCPTools\n"
        "try:\n"
        "    MCPTools.stdio('python', args=['server.py'])\n"
        "except BackendNotInstalledError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert 'pip install "abstractcore[mcp]"' in out.stdout and "MCPTools" in out.stdout


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: MCPTools.stdio(""), "command must be a non-empty string"),
        (lambda: MCPTools.stdio("python", args="server.py"), "args must be a list"),  # type: ignore[arg-type]
        (lambda: MCPTools.http("localhost:8000/mcp"), "url must be an http"),
        (lambda: MCPTools.stdio("python", timeout=0), "timeout must be a number of seconds > 0"),
        (lambda: MCPTools.stdio("python", filter="capital"), "filter must be a collection"),  # type: ignore[arg-type]
    ],
)
def test_bad_arguments_are_refused_before_anything_starts(build: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        build()  # type: ignore[operator]


def test_an_unopened_one_in_tools_says_to_open_it() -> None:
    from abstractcore.features.tools.schema import to_tools

    tools = MCPTools.stdio("python", args=["server.py"])
    assert "not connected" in repr(tools)
    with pytest.raises(ConfigurationError, match="open it first, with `async with`"):
        to_tools([tools])
