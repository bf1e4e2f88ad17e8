"""The ``abstractcore`` command, run for real in a subprocess (the embedded model by default)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    return subprocess.run(
        [sys.executable, "-m", "abstractcore.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode != 0
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("abstractcore: error:")
    for needle in needles:
        assert needle in lines[0]


@pytest.mark.slow
def test_a_question_is_answered_by_the_embedded_model() -> None:
    result = run(
        "What is machine learning?",
        "--max-tokens",
        "12",
        "--temperature",
        "0",
        "--system",
        "You are a teacher.",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert result.stdout.endswith("\n")
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_the_prompt_can_come_from_stdin_and_json_shows_usage() -> None:
    result = run("--json", "--max-tokens", "6", stdin="Say hello.\n")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["content"].strip()
    assert data["provider"] == "huggingface"
    assert data["finish_reason"] in ("stop", "length")
    usage = data["usage"]
    assert usage["input_tokens"] > 5 and 0 < usage["output_tokens"] <= 6
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


def test_an_explicit_model_file(gguf_path: Path) -> None:
    result = run("--provider", "hf", "--model", str(gguf_path), "--max-tokens", "4", "Hi")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("--provider", "nosuch", "Hi"), ("Unknown provider 'nosuch'",)),
        (("--model", "/nowhere/model.gguf", "Hi"), ("/nowhere/model.gguf", "not found")),
        (("--provider", "openai-compatible", "--base-url", "http://127.0.0.1:9/v1", "Hi"), ("127.0.0.1:9",)),
        (("--temperature", "7", "Hi"), ("temperature",)),
        (("--provider", "openai", "Hi"), ("OPENAI_API_KEY",)),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_a_failure_status(
    args: tuple[str, ...], needles: tuple[str, ...]
) -> None:
    assert_one_line_error(run(*args), *needles)


def test_an_empty_prompt_is_refused() -> None:
    assert_one_line_error(run(stdin="   \n"), "empty")
