"""Every ```python block of README.md and docs/**/*.md runs, against the embedded model and the
test servers; a page whose example fails, fails here.

How a block runs: as a script of its own (``python -c``, a fresh interpreter), in an empty
temporary directory, with a 300 s limit. Its code is the page's, verbatim, but for two local
addresses the pages use, each replaced by the test server that plays its part:

- ``http://127.0.0.1:8080`` (a llama.cpp ``llama-server``) -> llama.cpp's C++ server over SmolLM2
  with a reasoning parser (the ``reasoning_server_url`` fixture);
- ``http://127.0.0.1:8000`` (``abstractcore serve``) -> the server in front of the embedded model,
  no key, serving it as ``huggingface/smollm2-135m-instruct`` (also answering to ``smollm2`` and
  ``claude``).

Cloud providers are reached through the environment variables they read, as the official SDKs
do: ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY`` -> the fake OpenAI server (tests/servers/openai_fake.py,
any model), ``ANTHROPIC_BASE_URL`` / ``ANTHROPIC_API_KEY`` -> the Anthropic test server
(tests/servers/anthropic_server.py, SmolLM2 behind the Messages wire format), ``OLLAMA_HOST`` ->
the Ollama test server. ``create_llm("huggingface")`` finds the embedded GGUF itself. The
Anthropic and Ollama test servers stand a 135M model in for the 7B-and-up models the pages name,
and it rambles to the end of its context where they stop by themselves: here their answers end at
``LONGEST_ANSWER`` tokens. A page's own in-process model has no such cap, so its examples pass
``max_tokens=`` where an answer could run long.

Conventions on the pages:

- ``<!-- not run: reason -->`` on the line before a block: it is not run here, for that reason
  (counted and listed at the end of the session);
- ``# prints: TEXT`` after a statement: the block's standard output must have a line matching
  TEXT, in the order of these comments (``...`` in TEXT matches anything). A small real model's
  words vary, so only deterministic output (counts, names, shapes) is written so.

The session ends with a line "docs examples run: N of M blocks" and the reasons of the others.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from abstractcore import create_llm
from abstractcore.server.backends import Backends
from tests.server.support import running_server
from tests.servers.anthropic_server import API_KEY as ANTHROPIC_KEY
from tests.servers.anthropic_server import AnthropicServer
from tests.servers.common import LocalModel
from tests.servers.ollama_server import OllamaServer
from tests.servers.openai_fake import KEY as OPENAI_KEY
from tests.servers.openai_fake import FakeOpenAI

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]
_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)
_NOT_RUN = re.compile(r"<!--\s*not run:\s*(.*?)\s*-->\s*$")
_PRINTS = re.compile(r"#\s*prints:\s*(.+?)\s*$", re.M)
SERVED = "huggingface/smollm2-135m-instruct"
#: The most tokens an answer of the Anthropic and Ollama test servers has here (LocalModel.longest_answer).
LONGEST_ANSWER = 200


@dataclass(frozen=True)
class Block:
    """One python block: where it is, its code, and why it is not run (None: it runs)."""

    page: str
    line: int
    code: str
    not_run: str | None

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def blocks(pages: list[Path] = PAGES) -> list[Block]:
    """The python blocks of ``pages``, in order."""
    found = []
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for m in _FENCE.finditer(text):
            if m.group(1) != "python":
                continue
            before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
            reason = _NOT_RUN.search(before)
            line = text[: m.start()].count("\n") + 1
            found.append(Block(str(page.relative_to(ROOT)), line, m.group(2), reason and reason.group(1)))
    return found


def expected_lines(code: str) -> list[re.Pattern[str]]:
    """The ``# prints:`` patterns of a block, ``...`` matching anything."""
    return [re.compile(".*".join(map(re.escape, text.split("...")))) for text in _PRINTS.findall(code)]


def check_output(code: str, stdout: str) -> list[str]:
    """The ``# prints:`` texts not found, in order, among the lines of ``stdout``."""
    lines = stdout.splitlines()
    missing, at = [], 0
    for pattern in expected_lines(code):
        hit = next((i for i in range(at, len(lines)) if pattern.search(lines[i])), None)
        if hit is None:
            missing.append(pattern.pattern)
        else:
            at = hit + 1
    return missing


ALL = blocks()


def test_the_conventions_are_read() -> None:
    """The collector sees a page's marks: a fake page with both conventions."""
    code = 'print("2")  # prints: 2\nprint("a b c")  # prints: a ... c\n'
    assert check_output(code, "x\n2\na b c\n") == []
    assert check_output(code, "a b c\n2\n") == ["a\\ .*\\ c"]
    assert ALL and any(b.not_run for b in ALL) and any(b.not_run is None for b in ALL)


@pytest.fixture(scope="module")
def environment(
    _fake_server: FakeOpenAI,
    anthropic_test_server: AnthropicServer,
    ollama_test_server: OllamaServer,
    reasoning_server_url: str,
    test_servers_model: LocalModel,
) -> Iterator[tuple[dict[str, str], dict[str, str]]]:
    """(the environment of a block, the addresses replaced in its code)."""
    test_servers_model.longest_answer = LONGEST_ANSWER
    llm = create_llm("huggingface", temperature=0)
    backends = Backends({SERVED: llm}, {"smollm2": SERVED, "claude": SERVED})
    with running_server(backends, api_key=None) as server:  # type: ignore[arg-type]
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
            "OPENAI_BASE_URL": _fake_server.base_url,
            "OPENAI_API_KEY": OPENAI_KEY,
            "ANTHROPIC_BASE_URL": anthropic_test_server.url,
            "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
            "OLLAMA_HOST": ollama_test_server.url,
        }
        addresses = {
            "http://127.0.0.1:8080/v1": reasoning_server_url,
            "http://127.0.0.1:8000": server.url,
        }
        yield env, addresses
    llm.unload()
    test_servers_model.longest_answer = None


@pytest.mark.parametrize("block", [b for b in ALL if b.not_run is None], ids=lambda b: b.id)
def test_the_block_runs(
    block: Block, environment: tuple[dict[str, str], dict[str, str]], tmp_path: Path
) -> None:
    env, addresses = environment
    code = block.code
    for address, replacement in addresses.items():
        code = code.replace(address, replacement)
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"{block.id} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    missing = check_output(block.code, done.stdout)
    assert not missing, f"{block.id} did not print {missing}; it printed:\n{done.stdout[-3000:]}"


def summary(ran: int) -> str:
    """The session's summary of this module: how many blocks ran, and why the others did not."""
    skipped = [f"  {b.id}: {b.not_run}" for b in ALL if b.not_run]
    return "\n".join([f"docs examples run: {ran} of {len(ALL)} blocks", *skipped])
