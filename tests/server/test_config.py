"""Starting the server: the command line (a real process), configuration files, the names
models answer to, and the security defaults (loopback, key, CORS off, no secrets in logs)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from abstractcore import ConfigurationError, create_llm
from abstractcore.server import Backends, ModelEntry, ServerConfig, load_config
from abstractcore.server.errors import ApiError
from tests.server.support import KEY, MODEL, RunningServer, running_server
from tests.servers.openai_fake import KEY as FAKE_KEY
from tests.servers.openai_fake import FakeOpenAI
from tests.support.llama_server import free_port
from tests.support.signals import as_from_a_terminal


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "abstractcore.server", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        preexec_fn=as_from_a_terminal,
    )


def _wait_for(url: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            httpx.get(f"{url}/health", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("the server did not start")


@pytest.mark.slow
def test_the_command_serves_until_interrupted(fake: FakeOpenAI) -> None:
    port = free_port()
    env = {"ABSTRACTCORE_SERVER_API_KEY": KEY, "OPENAI_COMPATIBLE_API_KEY": FAKE_KEY}
    proc = _serve(
        "--provider",
        "openai-compatible",
        "--base-url",
        fake.base_url,
        "--model",
        "gpt-fake",
        "--alias",
        "gpt-4o",
        "--port",
        str(port),
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(url, proc)
        headers = {"authorization": f"Bearer {KEY}"}
        models = httpx.get(f"{url}/v1/models", headers=headers).json()
        assert [m["id"] for m in models["data"]] == ["openai-compatible/gpt-fake"]
        assert httpx.get(f"{url}/v1/models", headers={"authorization": "Bearer nope"}).status_code == 401
        body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}
        r = httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers)
        assert (
            r.status_code == 200
            and r.json()["choices"][0]["message"]["content"] == "Hello from the fake server."
        )
        assert fake.requests[-1]["body"]["model"] == "gpt-fake"
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert f"http://127.0.0.1:{port}" in err and "Traceback" not in err
    assert KEY not in err + out and FAKE_KEY not in err + out  # the access log has no secrets


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--provider", "nosuch"), "Unknown provider 'nosuch'"),
        (("--config", "/nowhere/server.yaml"), "/nowhere/server.yaml"),
        (("--config", "x.yaml", "--provider", "ollama"), "not both"),
        (("--provider", "openai-compatible", "--option", "temperature=9"), "temperature"),
    ],
)
def test_a_failure_to_start_is_one_line(args: tuple[str, ...], needle: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "abstractcore.cli", "serve", *args], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("abstractcore serve: error:") and needle in lines[0]


def test_yaml_and_json_configurations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_SERVER_KEY", "sk-from-env")
    yaml_file = tmp_path / "server.yaml"
    yaml_file.write_text(
        "port: 9001\napi_key_env: MY_SERVER_KEY\ncors_origins: [http://localhost:5173]\n"
        "models:\n  - provider: huggingface\n  - provider: ollama\n    model: qwen2.5:7b\n    name: coder\n"
        "    aliases: [gpt-4o-mini]\n    options: {base_url: 'http://127.0.0.1:9', temperature: 0.2}\n"
    )
    config = load_config(yaml_file)
    assert config.host == "127.0.0.1" and config.port == 9001
    assert config.api_key is not None and config.api_key.reveal() == "sk-from-env"
    assert config.cors_origins == ("http://localhost:5173",)
    assert config.models[1] == ModelEntry(
        "ollama",
        "qwen2.5:7b",
        "coder",
        ("gpt-4o-mini",),
        {"base_url": "http://127.0.0.1:9", "temperature": 0.2},
    )
    json_file = tmp_path / "server.json"
    json_file.write_text(json.dumps({"models": [{"provider": "huggingface"}]}))
    assert load_config(json_file).models == (ModelEntry("huggingface"),)
    backends = Backends.from_entries(config.models)
    assert [name for name, _ in backends.listing()] == ["huggingface/smollm2-135m-instruct", "coder"]
    assert backends.resolve("gpt-4o-mini")[0] == "coder"
    assert backends.resolve("qwen2.5:7b")[0] == "coder"  # the bare model name, unambiguous
    with pytest.raises(ApiError) as caught:
        backends.resolve("huggingface/other")
    assert caught.value.status == 404


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("models: []\n", "at least one"),
        ("models:\n  - model: x\n", "provider is required"),
        ("models:\n  - provider: ollama\n    temperature: 1\n", "unknown keys ['temperature']"),
        ("prot: 1\nmodels:\n  - provider: ollama\n", "unknown keys ['prot']"),
        ("api_key_env: NOT_SET_ANYWHERE\nmodels:\n  - provider: ollama\n", "NOT_SET_ANYWHERE"),
        ("models: [\n", "not valid YAML"),
    ],
)
def test_a_bad_configuration_names_what_is_wrong(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "server.yml"
    path.write_text(text)
    with pytest.raises(ConfigurationError, match=None) as caught:
        load_config(path)
    assert needle in str(caught.value)


def test_the_defaults_are_safe() -> None:
    config = ServerConfig()
    assert config.host == "127.0.0.1" and config.api_key is None and config.cors_origins == ()
    assert config.max_request_bytes == 32 * 1024 * 1024


def test_cors_is_off_unless_configured(local_server: RunningServer, fake: FakeOpenAI) -> None:
    preflight = {"origin": "http://app.test", "access-control-request-method": "POST"}
    r = httpx.options(f"{local_server.url}/v1/chat/completions", headers=preflight)
    assert r.status_code == 405 and "access-control-allow-origin" not in r.headers
    r = httpx.get(
        f"{local_server.url}/v1/models",
        headers={"origin": "http://app.test", "authorization": f"Bearer {KEY}"},
    )
    assert "access-control-allow-origin" not in r.headers
    llm = create_llm("openai-compatible", model="gpt-fake", base_url=fake.base_url, api_key=FAKE_KEY)
    with running_server({MODEL: llm}, cors_origins=("http://app.test",)) as server:
        r = httpx.options(
            f"{server.url}/v1/chat/completions",
            headers={**preflight, "access-control-request-headers": "authorization, content-type"},
        )
        assert r.status_code == 204 and r.headers["access-control-allow-origin"] == "http://app.test"
        assert r.headers["access-control-allow-headers"] == "authorization, content-type"
        ok = {"origin": "http://app.test", "authorization": f"Bearer {KEY}"}
        assert (
            httpx.get(f"{server.url}/v1/models", headers=ok).headers["access-control-allow-origin"]
            == "http://app.test"
        )
        other = {"origin": "http://evil.test", "authorization": f"Bearer {KEY}"}
        assert (
            "access-control-allow-origin" not in httpx.get(f"{server.url}/v1/models", headers=other).headers
        )
        assert (
            httpx.options(
                f"{server.url}/v1/models", headers={**preflight, "origin": "http://evil.test"}
            ).status_code
            == 403
        )


def test_unrelated_options_are_not_forwarded(fake: FakeOpenAI, caplog: pytest.LogCaptureFixture) -> None:
    llm = create_llm("openai-compatible", model="gpt-fake", base_url=fake.base_url, api_key=FAKE_KEY)
    caplog.set_level(logging.DEBUG)
    with running_server({MODEL: llm}) as server:
        body = {
            "model": MODEL,
            "messages": [{"role": "user", "content": "Hi"}],
            "temperature": 0.5,
            "user": "someone",
            "store": True,
            "metadata": {"a": "b"},
            "parallel_tool_calls": False,
            "some_vendor_option": 1,
        }
        r = httpx.post(
            f"{server.url}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {KEY}"}
        )
    assert r.status_code == 200
    sent = fake.requests[-1]["body"]
    assert sent == {"model": "gpt-fake", "messages": [{"role": "user", "content": "Hi"}], "temperature": 0.5}
    assert KEY not in caplog.text and FAKE_KEY not in caplog.text


def test_a_router_from_a_configuration_file_falls_back(tmp_path: Path, fake: FakeOpenAI) -> None:
    """A config file can serve a router: the dead deployment is passed over, the client sees one answer."""
    dead = f"http://127.0.0.1:{free_port()}/v1"
    config_file = tmp_path / "router.json"
    config_file.write_text(
        json.dumps(
            {
                "models": [
                    {
                        "provider": "router",
                        "name": "smart",
                        "options": {
                            "models": [
                                {
                                    "provider": "openai-compatible",
                                    "base_url": dead,
                                    "model": "m",
                                    "name": "dead",
                                },
                                {
                                    "provider": "openai-compatible",
                                    "base_url": fake.base_url,
                                    "model": "m",
                                    "api_key": FAKE_KEY,
                                    "name": "alive",
                                },
                            ]
                        },
                    }
                ]
            }
        )
    )
    backends = Backends.from_entries(load_config(config_file).models)
    name, llm = backends.resolve("smart")
    with running_server({name: llm}) as server:
        reply = httpx.post(
            f"{server.openai_url}/chat/completions",
            headers={"Authorization": f"Bearer {KEY}"},
            json={"model": "smart", "messages": [{"role": "user", "content": "Hi"}]},
            timeout=30,
        )
    assert reply.status_code == 200, reply.text
    assert reply.json()["choices"][0]["message"]["content"]
    assert len(fake.requests) == 1
    assert llm.health()["dead"].failures == 1
    llm.close()
