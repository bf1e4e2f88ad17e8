"""The ``abstractcore`` command: ask a model from the terminal.

    abstractcore "What is machine learning?"             # the embedded model, streamed
    echo "Summarise this" | abstractcore --provider ollama --model qwen2.5:7b
    abstractcore --json "Hi"                             # the whole response, with usage
    abstractcore serve --provider ollama --model qwen2.5:7b   # an OpenAI/Anthropic-compatible server

Without ``--provider`` the embedded SmolLM2 model runs in process (the
"huggingface" provider). Any failure (unknown provider, missing model or key,
server down) prints one line on stderr and exits non-zero. Ctrl-C prints
``abstractcore: interrupted`` and exits with status 130; further Ctrl-Cs while
it exits are ignored (the clean-up is bounded).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["main"]

_PROG = "abstractcore"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description="Ask an LLM a question; the answer is streamed to stdout.",
        epilog="abstractcore serve --help: serve a model over the OpenAI and Anthropic HTTP APIs.",
    )
    parser.add_argument("prompt", nargs="?", help="the question (read from stdin when omitted)")
    parser.add_argument(
        "--provider",
        default="huggingface",
        help="provider name (default: huggingface, the embedded local model)",
    )
    parser.add_argument("--model", help="model name, path or repository id")
    parser.add_argument("--system", help="system prompt")
    parser.add_argument("--temperature", type=float, help="sampling temperature (0-2)")
    parser.add_argument(
        "--max-tokens", type=int, dest="max_tokens", help="maximum number of tokens to generate"
    )
    parser.add_argument("--base-url", dest="base_url", help="server URL for HTTP providers")
    parser.add_argument(
        "--json", action="store_true", help="print the whole response (content, usage, ...) as JSON"
    )
    return parser


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return f"{_PROG}: error: {text}"


def _read_prompt(prompt: str | None) -> str:
    if prompt is not None:
        return prompt
    if sys.stdin is None or sys.stdin.isatty():
        raise ValueError('no prompt: give one as an argument (abstractcore "Hello") or on stdin.')
    return sys.stdin.read()


def _response_json(response: Any) -> str:
    usage = response.usage
    return json.dumps(
        {
            "content": response.content,
            "model": response.model,
            "provider": response.provider,
            "finish_reason": response.finish_reason,
            "usage": None
            if usage is None
            else {
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "total_tokens": usage.total_tokens,
            },
        },
        ensure_ascii=False,
    )


def _run(args: argparse.Namespace) -> None:
    from abstractcore import create_llm  # after argument parsing: --help stays instant

    prompt = _read_prompt(args.prompt)
    if not prompt.strip():
        raise ValueError("the prompt is empty.")
    config: dict[str, Any] = {}
    if args.base_url is not None:
        config["base_url"] = args.base_url
    params: dict[str, Any] = {}
    if args.temperature is not None:
        params["temperature"] = args.temperature
    if args.max_tokens is not None:
        params["max_tokens"] = args.max_tokens
    llm = create_llm(args.provider, model=args.model, **config)
    if args.json:
        response = llm.generate(prompt, system_prompt=args.system, **params)
        print(_response_json(response))
        return
    out = sys.stdout
    chunks = llm.stream(prompt, system_prompt=args.system, **params)
    try:
        for chunk in chunks:
            if chunk.content:
                out.write(chunk.content)
                out.flush()
    finally:  # Ctrl-C or a broken pipe: stop the generation
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    out.write("\n")
    out.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status (0 on success).

    ``abstractcore serve ...`` starts the HTTP server (``abstractcore.server.cli``).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["serve"]:
        from abstractcore.server.cli import main as serve

        return serve(argv[1:])
    args = _parser().parse_args(argv)
    try:
        _run(args)
    except KeyboardInterrupt:
        from abstractcore.transport.exiting import ignore_further_interrupts  # imported by _run already

        ignore_further_interrupts()  # a second Ctrl-C must not print a traceback while we exit
        print(f"{_PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `abstractcore ... | head`
        return 0
    except Exception as exc:  # every failure is one line, never a traceback
        print(_one_line(exc), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
