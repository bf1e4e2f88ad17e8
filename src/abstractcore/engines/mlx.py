"""The MLX engine (mlx-lm), used by the "mlx" provider: Apple silicon, or CPU.

Tokens stream from ``mlx_lm.stream_generate`` with a sampler built from
temperature, top_p, top_k and min_p; the cancel flag is checked every token.
A ``spec.constraint`` (constrained decoding) joins mlx-lm's
``logits_processors`` after the penalties; the generation ends as soon as the
constrained output is complete.
"""

from __future__ import annotations

import contextlib
import json
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from abstractcore.engines.base import (
    ContextSizes,
    Engine,
    FollowingProcessor,
    GenerationSpec,
    Outcome,
    StopMatcher,
    check_context,
    collect_garbage,
    plain_transcript,
    require,
)
from abstractcore.engines.host import register

__all__ = ["MLXEngine"]

_WHAT = "Running MLX models"
#: The context assumed for a model whose config does not state one.
FALLBACK_CONTEXT = 4096


def config_context(directory: Path) -> int:
    """``max_position_embeddings`` of the model directory's ``config.json`` (its text model's for a
    multimodal one); 0 when it states none."""
    try:
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0
    for source in (config, config.get("text_config") or {}):
        found = source.get("max_position_embeddings") if isinstance(source, dict) else None
        if isinstance(found, int) and found > 0:
            return found
    return 0


class MLXEngine(Engine):
    """A model directory loaded by ``mlx_lm.load``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._model: Any = None
        self._tokenizer: Any = None

    def __repr__(self) -> str:
        return f"MLXEngine({str(self.path)!r})"

    @property
    def loaded(self) -> bool:
        """True while the model is in memory."""
        return self._model is not None

    def load(self) -> None:
        """Load weights and tokenizer from the local directory."""
        mlx_lm = require("mlx_lm", "mlx", _WHAT)
        self._model, self._tokenizer = mlx_lm.load(str(self.path))
        register(self)

    def _context(self) -> int:
        args = getattr(self._model, "args", None)
        return int(getattr(args, "max_position_embeddings", 0) or FALLBACK_CONTEXT)

    def context_sizes(self) -> ContextSizes:
        """``max_position_embeddings`` of the model (its ``config.json`` when not loaded): what it
        was trained for, and what a request gets here."""
        if self._model is not None:
            trained = int(getattr(getattr(self._model, "args", None), "max_position_embeddings", 0) or 0)
        else:
            trained = config_context(self.path)
        return ContextSizes(trained or None, trained or FALLBACK_CONTEXT)

    def generate(self, spec: GenerationSpec, emit: Callable[[str], None], cancel: threading.Event) -> Outcome:
        """Stream tokens from ``mlx_lm.stream_generate``."""
        mlx_lm = require("mlx_lm", "mlx", _WHAT)
        mx = require("mlx.core", "mlx", _WHAT)
        tokenizer = self._tokenizer
        prompt = self._prompt(spec)
        sampler, processors, constrained = self._sampling(spec)
        if spec.seed is not None:
            mx.random.seed(spec.seed)
        limit = spec.max_tokens or max(1, self._context() - len(prompt))
        stopper = StopMatcher(spec.stop)
        finish, n_prompt, produced = "length", len(prompt), 0
        ids: list[int] = []
        sent: list[str] = []
        for response in mlx_lm.stream_generate(
            self._model, tokenizer, prompt, max_tokens=limit, sampler=sampler, logits_processors=processors
        ):
            if cancel.is_set():
                break
            n_prompt = int(response.prompt_tokens)
            produced = int(response.generation_tokens)
            if response.finish_reason == "stop":  # the end-of-sequence token is not output
                produced -= 1
            else:
                ids.append(int(response.token))
            piece = response.text
            if response.finish_reason:  # mlx-lm's last segment decodes a cut character to U+FFFD
                piece = piece.rstrip("\ufffd")
            sent.append(piece)
            text = stopper.feed(piece)
            if text:
                emit(text)
            if stopper.hit:
                finish = "stop"
                break
            finish = response.finish_reason or finish
            # mlx-lm asks for the next logits before it hands this token over, so the
            # constraint has seen it: once complete, stop without sampling EOS
            if constrained is not None and constrained.constraint.is_finished and not response.finish_reason:
                finish = "stop"
                sent.append(self._held_back(ids, "".join(sent)))  # the detokenizer's held-back text
                text = stopper.feed(sent[-1])
                if text:
                    emit(text)
                break
        if constrained is not None and finish == "length" and constrained.constraint.is_finished:
            finish = "stop"  # complete on the last token allowed
        if not stopper.hit and not cancel.is_set():
            tail = stopper.flush()
            if tail:
                emit(tail)
        return Outcome(finish, n_prompt, produced)

    def count_prompt(self, spec: GenerationSpec) -> int:
        """The prompt tokens of ``spec`` (the chat template, else a plain transcript)."""
        return len(self._prompt(spec))

    def template_switches(self) -> frozenset[str]:
        """``enable_thinking`` when the tokenizer's chat template reads it."""
        template = getattr(self._tokenizer, "chat_template", None)
        return frozenset({"enable_thinking"}) if "enable_thinking" in str(template or "") else frozenset()

    def _prompt(self, spec: GenerationSpec) -> list[int]:
        """The prompt's token ids (the chat template, else a plain transcript), checked against
        the context."""
        tokenizer = self._tokenizer
        if getattr(tokenizer, "chat_template", None):
            switches = dict(spec.template_kwargs)
            if spec.on_prompt is not None:
                text = tokenizer.apply_chat_template(
                    spec.messages, add_generation_prompt=True, tokenize=False, **switches
                )
                spec.on_prompt(str(text))
            prompt = list(
                tokenizer.apply_chat_template(spec.messages, add_generation_prompt=True, **switches)
            )
        else:
            prompt = list(tokenizer.encode(plain_transcript(spec.messages)))
        check_context(len(prompt), self._context(), engine="mlx")
        return prompt

    def _sampling(self, spec: GenerationSpec) -> tuple[Any, list[Any], FollowingProcessor | None]:
        """(sampler, logits processors, the constraint among them) for ``spec``; a grammar the
        engine refuses raises here, before any work."""
        sample_utils = require("mlx_lm.sample_utils", "mlx", _WHAT)
        sampler = sample_utils.make_sampler(
            temp=spec.temperature or 0.0,
            top_p=spec.top_p or 0.0,
            min_p=spec.min_p or 0.0,
            top_k=spec.top_k or 0,
        )
        penalties = {
            "repetition_penalty": spec.repeat_penalty,
            "presence_penalty": spec.presence_penalty,
            "frequency_penalty": spec.frequency_penalty,
        }
        processors = list(  # only what was asked for: older mlx-lm lacks some
            sample_utils.make_logits_processors(**{k: v for k, v in penalties.items() if v is not None})
        )
        constraint = self._constraint(spec)
        if constraint is not None:
            processors.append(constraint)
        return sampler, processors, constraint

    def _constraint(self, spec: GenerationSpec) -> FollowingProcessor | None:
        if spec.constraint is None:
            return None
        eos = frozenset(int(e) for e in self._tokenizer.eos_token_ids)
        width = getattr(getattr(self._model, "args", None), "vocab_size", None)
        return FollowingProcessor(spec.constraint(self._tokenizer, eos_ids=eos, vocab_size=width))

    def _held_back(self, ids: list[int], sent: str) -> str:
        """What decoding ``ids`` gives beyond ``sent`` (text mlx-lm's detokenizer still holds)."""
        full = str(self._tokenizer.decode(ids))
        return full[len(sent) :] if full.startswith(sent) else ""

    def close_at_exit(self, workers_stopped: bool) -> None:
        """(interpreter exit) Free the model even if a generation thread did not stop: MLX arrays
        still alive (a model, a generation's cache) when the interpreter tears down aborted the
        process ("terminate called without an active exception", exit 134)."""
        self.unload()

    def unload(self) -> None:
        """Drop model and tokenizer, collect, and clear MLX's buffer cache."""
        refs = []
        if self._model is not None:
            with contextlib.suppress(TypeError):  # not every model class takes weak references
                refs.append(weakref.ref(self._model))
        self._model = self._tokenizer = None
        collect_garbage(*refs)
        mx = require("mlx.core", "mlx", _WHAT)
        clear = getattr(mx, "clear_cache", None) or mx.metal.clear_cache
        clear()
