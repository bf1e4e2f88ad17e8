"""examples/fastapi_app.py under uvicorn in a real process: concurrent calls, streams, tools, SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.llama_server import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _start(port: int, log: Any) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH", "")])
    for name in ("ABSTRACTCORE_PROVIDER", "ABSTRACTCORE_MODEL", "ABSTRACTCORE_BASE_URL"):
        env.pop(name, None)  # the default: the embedded model in process
    cmd = [sys.executable, "-m", "uvicorn", "examples.fastapi_app:app", "--host", "127.0.0.1"]
    return subprocess.Popen([*cmd, "--port", str(port)], cwd=ROOT, env=env, stdout=log, stderr=log)


def _wait_ready(proc: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the app exited during start-up"
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("the app did not start within 120 s")


async def _sse(client: httpx.AsyncClient, prompt: str, *, leave_after: int | None = None) -> list[str]:
    texts: list[str] = []
    async with client.stream("POST", "/stream", json={"prompt": prompt, "max_tokens": 48}) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        async for line in resp.aiter_lines():
            if line.startswith("data: "):
                texts.append(line[6:])
                if leave_after is not None and len(texts) >= leave_after:
                    break  # the client leaves: the response is closed mid-stream
    return texts


async def _calls(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        prompts = ["Name a colour.", "Name a fruit.", "Name a city.", "Name an animal."]
        gens = [client.post("/generate", json={"prompt": p, "max_tokens": 24}) for p in prompts]
        tool = client.post("/add", json={"prompt": "What is 2 + 3? Use the add tool."})
        results = await asyncio.gather(
            *gens,
            _sse(client, "Tell me about the sea."),
            _sse(client, "Count to fifty.", leave_after=2),
            tool,
        )
        after = await client.post("/generate", json={"prompt": "Say yes.", "max_tokens": 8})
    return {"gens": results[:4], "whole": results[4], "early": results[5], "tool": results[6], "after": after}


def test_the_app_serves_concurrent_calls_and_unloads_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "uvicorn.log"
    with log_path.open("wb") as log:
        proc = _start(port, log)
        try:
            _wait_ready(proc, url)
            out = asyncio.run(_calls(url))
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = log_path.read_text()

    for resp in out["gens"]:
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["content"].strip() and body["output_tokens"] > 0 and body["input_tokens"] > 0
        assert body["finish_reason"] in ("stop", "length")
    assert out["whole"][-1] == "[DONE]" and "".join(out["whole"][:-1]).strip()
    assert len(out["early"]) == 2 and "[DONE]" not in out["early"]
    tool = out["tool"]
    assert tool.status_code == 200, tool.text
    first = tool.json()["calls"][0]
    assert first["name"] == "add" and first["result"] == first["arguments"]["a"] + first["arguments"]["b"]
    assert tool.json()["content"].strip()
    assert out["after"].status_code == 200  # the stream left early did not wedge the model

    # uvicorn shuts down gracefully, then re-raises the signal it caught (so a supervisor sees
    # "terminated by SIGTERM"): -15 here, after the lifespan's shutdown ran to its end
    assert code == -signal.SIGTERM, text
    assert "model unloaded: huggingface" in text, text
    assert text.index("Waiting for application shutdown") < text.index("model unloaded")
    assert "Application shutdown complete" in text
    assert "Traceback" not in text, text
