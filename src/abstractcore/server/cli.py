"""``abstractcore serve`` / ``python -m abstractcore.server``: start the server from the shell.

    abstractcore serve                                    # the embedded model, on 127.0.0.1:8000
    abstractcore serve --provider ollama --model qwen2.5-coder:7b --port 8080
    abstractcore serve --config server.yaml               # several back ends
    ABSTRACTCORE_SERVER_API_KEY=... abstractcore serve --host 0.0.0.0
    OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318 abstractcore serve --otel   # traced

Any failure to start (a bad option, an unknown provider, a port in use) prints one line on
stderr and exits non-zero. Ctrl-C (or SIGTERM) stops the server gracefully and exits 0; further
Ctrl-Cs while it closes the back ends and exits are ignored (the clean-up is bounded).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from abstractcore.core.errors import ConfigurationError
from abstractcore.core.secrets import Secret
from abstractcore.server.config import (
    API_KEY_ENV,
    DEFAULT_MAX_REQUEST_BYTES,
    ModelEntry,
    ServerConfig,
    load_config,
)
from abstractcore.transport.exiting import ignore_further_interrupts

__all__ = ["main"]

_PROG = "abstractcore serve"
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description="Serve any abstractcore model over the OpenAI Chat Completions and Anthropic "
        "Messages APIs.",
    )
    source = parser.add_argument_group("the model (or --config for several)")
    source.add_argument("--config", help="a JSON or YAML file listing the back ends (see docs/server.md)")
    source.add_argument("--provider", help="provider name (default: huggingface, the embedded local model)")
    source.add_argument("--model", help="model name, path or repository id")
    source.add_argument("--base-url", dest="base_url", help="server URL for HTTP providers")
    source.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a create_llm option (VALUE read as JSON when it parses: n_ctx=4096); repeatable",
    )
    source.add_argument("--name", help="the name clients send as 'model' (default: provider/model)")
    source.add_argument("--alias", action="append", default=[], help="another name for the model; repeatable")
    net = parser.add_argument_group("the server")
    net.add_argument("--host", help="address to bind (default 127.0.0.1: this machine only)")
    net.add_argument("--port", type=int, help="port (default 8000; 0 for a free one)")
    net.add_argument("--api-key", dest="api_key", help=f"the key clients must send (default: ${API_KEY_ENV})")
    net.add_argument(
        "--cors-origin",
        dest="cors_origins",
        action="append",
        default=[],
        help="a browser origin allowed (CORS)",
    )
    net.add_argument(
        "--max-request-bytes", dest="max_request_bytes", type=int, help=f"default {DEFAULT_MAX_REQUEST_BYTES}"
    )
    net.add_argument(
        "--otel",
        action="store_true",
        default=None,
        help="trace every request with OpenTelemetry (the SDK configured from the OTEL_* variables; "
        "see docs/tracing.md)",
    )
    net.add_argument(
        "--log-level", dest="log_level", default="info", choices=["debug", "info", "warning", "error"]
    )
    return parser


def _option(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise ConfigurationError(f"--option takes KEY=VALUE; got {text!r}.")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip(), value


def _config(args: argparse.Namespace) -> ServerConfig:
    single = args.provider or args.model or args.base_url or args.option or args.name or args.alias
    if args.config:
        if single:
            raise ConfigurationError("give --config or --provider/--model/..., not both.")
        config = load_config(args.config)
    else:
        options = dict(_option(o) for o in args.option)
        if args.base_url:
            options["base_url"] = args.base_url
        entry = ModelEntry(args.provider or "huggingface", args.model, args.name, tuple(args.alias), options)
        config = ServerConfig(models=(entry,))
    changes: dict[str, Any] = {}
    for name in ("host", "port", "max_request_bytes", "otel"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    if args.cors_origins:
        changes["cors_origins"] = tuple(args.cors_origins)
    key = args.api_key or (None if config.api_key else os.environ.get(API_KEY_ENV))
    if key:
        changes["api_key"] = Secret(key)
    return replace(config, **changes) if changes else config


def _run(args: argparse.Namespace) -> None:
    config = _config(args)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if config.host not in _LOOPBACK and config.api_key is None:
        print(
            f"{_PROG}: warning: listening on {config.host} without an API key: anyone who can reach it "
            f"can use the models (set --api-key or ${API_KEY_ENV}).",
            file=sys.stderr,
        )
    from abstractcore.server.app import create_app, run
    from abstractcore.server.backends import Backends

    run(create_app(Backends.from_entries(config.models), config), config)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server until interrupted; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        _run(args)
    except KeyboardInterrupt:
        pass
    except Exception as exc:  # a failure to start is one line, never a traceback
        text = " ".join(str(exc).split()) or type(exc).__name__
        print(f"{_PROG}: error: {text}", file=sys.stderr)
        return 1
    ignore_further_interrupts()  # stopped by Ctrl-C or SIGTERM: exit quietly
    return 0
