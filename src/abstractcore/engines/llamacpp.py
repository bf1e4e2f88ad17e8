"""The llama.cpp engine (llama-cpp-python) for GGUF models, used by the "huggingface" provider.

The chat template comes from the GGUF (``create_chat_completion``). Tokens
are streamed as llama.cpp samples them; the cancel flag is checked at every
sampled token and between chunks of the prompt (``PREFILL_CHUNK`` tokens), so
a timeout or a cancelled call also stops a long prompt's processing. Usage is
counted from the exact prompt and completion tokens llama.cpp evaluated. A
prompt longer than the context raises ``ContextLengthExceededError`` before
any work. llama.cpp's log goes to the ``abstractcore.llamacpp`` logger
(``llamacpp_native``); no file descriptor is touched.
"""

from __future__ import annotations

import re
import sys
import threading
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from abstractcore.core.errors import ContextLengthExceededError
from abstractcore.engines import llamacpp_native
from abstractcore.engines.base import (
    ContextSizes,
    Engine,
    FollowingProcessor,
    GenerationSpec,
    Outcome,
)
from abstractcore.engines.embedding import GGUFEmbedder, close_llama
from abstractcore.engines.gil import loading
from abstractcore.engines.host import register
from abstractcore.engines.llamacpp_counting import PREFILL_CHUNK, Cancelled, Probe, counting_llama

__all__ = ["DEFAULT_N_CTX", "PREFILL_CHUNK", "TEMPLATE_SWITCHES", "LlamaCppEngine", "template_switches"]

#: Chat-template variables ``GenerationSpec.template_kwargs`` may set, where a template reads them.
TEMPLATE_SWITCHES = ("enable_thinking",)

#: llama.cpp's own default (512) is too small for a chat; the model's full context costs memory.
DEFAULT_N_CTX = 4096
_PASSTHROUGH = ("temperature", "top_p", "top_k", "min_p", "seed", "presence_penalty", "frequency_penalty")
# llama-cpp-python's message when the prompt does not fit (llama.py, _create_completion)
_TOO_LONG = re.compile(r"Requested tokens \((\d+)\) exceed context window of (\d+)")


def _llama_cpp() -> Any:
    return sys.modules.get("llama_cpp") or llamacpp_native.import_llama_cpp()


def gguf_trained_context(path: Path) -> int | None:
    """The context the GGUF at ``path`` was trained for (None when llama.cpp is not installed)."""
    with loading():  # imports llama_cpp and reads the vocabulary: a load, for the event loop
        try:
            llama_cpp = _llama_cpp()
        except ImportError:
            return None
        return llamacpp_native.trained_context(llama_cpp, str(path))


def forced_tool(spec: GenerationSpec) -> dict[str, Any] | None:
    """The tool ``tool_choice`` names, if it names one (``ValueError`` when it is not among the tools)."""
    choice = spec.tool_choice
    if not isinstance(choice, dict) or not spec.tools:
        return None
    name = (choice.get("function") or {}).get("name")
    for tool in spec.tools:
        if tool["function"]["name"] == name:
            return tool
    raise ValueError(f"tool_choice names {name!r}, which is not among the tools")


def template_switches(template: str) -> frozenset[str]:
    """The ``TEMPLATE_SWITCHES`` a chat template's source reads (Qwen3's and SmolLM3's
    ``enable_thinking``)."""
    return frozenset(name for name in TEMPLATE_SWITCHES if name in template)


class _Rendering:
    """The GGUF's chat formatter, rendering with ``spec.template_kwargs`` and reporting the prompt
    to ``spec.on_prompt`` (llama-cpp-python's ``create_chat_completion`` passes neither)."""

    def __init__(self, formatter: Any, spec: GenerationSpec) -> None:
        self.formatter, self.spec = formatter, spec

    def __call__(self, **kwargs: Any) -> Any:
        result = self.formatter(**kwargs, **self.spec.template_kwargs)
        if self.spec.on_prompt is not None:
            self.spec.on_prompt(str(result.prompt))
        return result


def _whole_call(tool: dict[str, Any], arguments: str) -> dict[str, Any]:
    """A forced call in the Chat Completions form: the tool's name, the generated arguments."""
    function = {"name": str(tool["function"]["name"]), "arguments": arguments}
    return {"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function", "function": function}


def _context_error(exc: ValueError) -> ContextLengthExceededError | None:
    found = _TOO_LONG.search(str(exc))
    if found is None:
        return None
    tokens, context = int(found.group(1)), int(found.group(2))
    return ContextLengthExceededError(
        f"llama.cpp: the prompt has {tokens} tokens but the model's context holds {context}; "
        "shorten the prompt, or load the model with a larger context (n_ctx=...).",
        prompt_tokens=tokens,
        context_length=context,
    )


class LlamaCppEngine(Engine):
    """A GGUF model run by llama-cpp-python.

    Tools go to ``create_chat_completion`` (the chat template shows them to
    the model); with "auto", whether the model calls one depends on its
    template. Constrained decoding (``spec.constraint``: a response model's
    schema, or a forced tool's arguments) runs through llguidance as a
    ``logits_processor``: 0.97x of unconstrained speed here, where llama.cpp's
    own GBNF sampler ran at 0.63x, and the same engine as transformers and MLX.
    """

    prefix_cache: ClassVar[bool] = True

    supports_tools = True
    extra_body_fields = frozenset({"grammar"})

    def __init__(
        self,
        path: Path,
        *,
        n_ctx: int | None = None,
        n_gpu_layers: int | None = None,
        n_threads: int | None = None,
        repack: bool | None = None,
    ) -> None:
        self.path = path
        self.n_ctx = n_ctx or DEFAULT_N_CTX
        self.n_gpu_layers = n_gpu_layers
        self.n_threads = n_threads
        #: llama.cpp's weight repacking; None: on, except where it is known to crash (llamacpp_native)
        self.repack = repack
        self._llama: Any = None
        self._eog: frozenset[int] | None = None
        self._embedder: GGUFEmbedder | None = None
        self._formatter: Any = None

    def __repr__(self) -> str:
        return f"LlamaCppEngine({str(self.path)!r})"

    @property
    def loaded(self) -> bool:
        """True while the model is in memory."""
        return self._llama is not None

    def load(self) -> None:
        """Load the GGUF (memory-mapped; ~0.1 s for a small model)."""
        llama_cpp = llamacpp_native.import_llama_cpp()
        llamacpp_native.prepare(llama_cpp)
        kwargs: dict[str, Any] = {"model_path": str(self.path), "n_ctx": self.n_ctx, "verbose": False}
        if self.n_gpu_layers is not None:
            kwargs["n_gpu_layers"] = self.n_gpu_layers
        if self.n_threads is not None:
            kwargs["n_threads"] = self.n_threads
        repack = llamacpp_native.use_extra_buffers(llama_cpp, self.repack)
        with llamacpp_native.model_params(repack), llamacpp_native.default_attention():
            self._llama = counting_llama(llama_cpp)(**kwargs)
        register(self)

    @staticmethod
    def _prompt_kwargs(spec: GenerationSpec) -> dict[str, Any]:
        """What ``create_chat_completion`` renders the prompt from, besides the messages."""
        kwargs: dict[str, Any] = {}
        if spec.tools:
            kwargs["tools"] = list(spec.tools)  # the chat template shows them to the model
            if spec.tool_choice is not None and forced_tool(spec) is None:
                kwargs["tool_choice"] = spec.tool_choice
        return kwargs

    def count_prompt(self, spec: GenerationSpec) -> int:
        """The prompt tokens of ``spec``: rendered and tokenized by ``create_chat_completion``
        itself, stopped before the first decode (the context is left as it was)."""
        llama = self._llama
        probe = Probe(threading.Event(), count_only=True)
        llama.probe = probe
        llama.chat_handler = self._handler(spec)
        try:
            llama.create_chat_completion(messages=spec.messages, max_tokens=1, **self._prompt_kwargs(spec))
        except Cancelled:
            return probe.prompt_tokens
        except ValueError as exc:
            error = _context_error(exc)
            if error is not None:
                raise error from None
            raise
        finally:
            llama.probe = llama.chat_handler = None
        raise RuntimeError("llama-cpp-python answered without tokenizing a prompt")

    def generate(self, spec: GenerationSpec, emit: Callable[[str], None], cancel: threading.Event) -> Outcome:
        """A chat completion: streamed one delta per decoded token, or in one piece."""
        llama = self._llama
        kwargs: dict[str, Any] = {
            name: getattr(spec, name) for name in _PASSTHROUGH if getattr(spec, name) is not None
        }
        if spec.max_tokens is not None:
            kwargs["max_tokens"] = spec.max_tokens
        if spec.stop:
            kwargs["stop"] = list(spec.stop)
        if spec.repeat_penalty is not None:
            kwargs["repeat_penalty"] = spec.repeat_penalty
        tool = forced_tool(spec)
        kwargs.update(self._prompt_kwargs(spec))
        if spec.constraint is not None:  # JSON or a forced call's arguments, under llguidance
            constraint = spec.constraint(llama, eos_ids=self._eog_ids(), vocab_size=llama.n_vocab())
            kwargs["logits_processor"] = _llama_cpp().LogitsProcessorList([FollowingProcessor(constraint)])
        arguments: list[str] = []
        out = arguments.append if tool is not None else emit  # a forced call's text is its arguments
        probe = Probe(cancel)
        llama.probe = probe
        llama.chat_handler = self._handler(spec)
        try:
            if not spec.stream:  # one piece: skips the per-token stop-string bookkeeping
                reply = llama.create_chat_completion(messages=spec.messages, **kwargs)
                choice = reply["choices"][0]
                out(choice["message"].get("content") or "")
                calls = tuple(choice["message"].get("tool_calls") or ())
                finish = choice.get("finish_reason") or "length"
                fragmented = False
            else:
                finish, calls = self._stream(llama, spec, kwargs, out, cancel)
                fragmented = True
            if tool is not None and finish != "cancelled" and not cancel.is_set():
                calls, fragmented = (_whole_call(tool, "".join(arguments)),), False
            counts = (probe.prompt_tokens, probe.completion_tokens)
            return Outcome(finish, *counts, calls, fragmented, cached_tokens=probe.cached)
        except Cancelled:
            return Outcome("cancelled", probe.prompt_tokens, probe.completion_tokens)
        except ValueError as exc:
            error = _context_error(exc)
            if error is not None:
                raise error from None
            raise
        finally:
            llama.probe = llama.chat_handler = None

    def _formatter_of(self) -> Any:
        """The ``Jinja2ChatFormatter`` llama-cpp-python made of the GGUF's template, or None when
        it chose a built-in chat format instead (the template then takes no switches)."""
        llama = self._llama
        if self._formatter is None and llama.chat_format == "chat_template.default":
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            eos, bos = llama.token_eos(), llama.token_bos()
            text = llama._model.token_get_text
            self._formatter = Jinja2ChatFormatter(
                template=llama.metadata["tokenizer.chat_template"],
                eos_token=text(eos) if eos != -1 else "",
                bos_token=text(bos) if bos != -1 else "",
                stop_token_ids=[eos],
            )
        return self._formatter

    def _handler(self, spec: GenerationSpec) -> Any:
        """The chat handler of this call: the GGUF's template with ``spec``'s switches, or None
        (llama-cpp-python's own) when there is nothing to add."""
        formatter = self._formatter_of() if spec.template_kwargs or spec.on_prompt else None
        if formatter is None:
            return None
        from llama_cpp.llama_chat_format import chat_formatter_to_chat_completion_handler

        return chat_formatter_to_chat_completion_handler(_Rendering(formatter, spec))

    def template_switches(self) -> frozenset[str]:
        """``enable_thinking`` when the GGUF's chat template reads it."""
        formatter = self._formatter_of()
        return frozenset() if formatter is None else template_switches(str(formatter.template))

    @staticmethod
    def _stream(
        llama: Any,
        spec: GenerationSpec,
        kwargs: dict[str, Any],
        emit: Callable[[str], None],
        cancel: threading.Event,
    ) -> tuple[str, tuple[dict[str, Any], ...]]:
        finish = "length"
        fragments: list[dict[str, Any]] = []
        chunks = llama.create_chat_completion(messages=spec.messages, stream=True, **kwargs)
        try:
            for chunk in chunks:
                choice = chunk["choices"][0]
                delta = choice.get("delta") or {}
                fragments.extend(delta.get("tool_calls") or ())
                text = delta.get("content")
                if text:
                    emit(text)
                finish = choice.get("finish_reason") or finish
                if cancel.is_set():
                    break
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        return finish, tuple(fragments)

    def context_sizes(self) -> ContextSizes:
        """The GGUF's trained context (its metadata) and ``n_ctx``, what a request gets here."""
        llama = self._llama
        if llama is not None:
            trained = int(_llama_cpp().llama_model_n_ctx_train(llama.model))
            return ContextSizes(trained or None, int(llama.n_ctx()))
        return ContextSizes(gguf_trained_context(self.path), self.n_ctx)

    def embed(self, texts: Sequence[str], cancel: threading.Event) -> tuple[list[list[float]], int]:
        """Mean-pooled, normalised vectors from a second context in embedding mode (see ``embedding``)."""
        if self._embedder is None:
            self._embedder = GGUFEmbedder(
                self.path, n_threads=self.n_threads, n_gpu_layers=self.n_gpu_layers, repack=self.repack
            )
            register(self)
        return self._embedder.embed(texts, cancel)

    def _eog_ids(self) -> frozenset[int]:
        if self._eog is None:
            llama_cpp = _llama_cpp()
            self._eog = llamacpp_native.eog_ids(llama_cpp, llama_cpp.llama_model_get_vocab(self._llama.model))
        return self._eog

    def unload(self) -> None:
        """Close the native model and contexts (``Llama.close()``) and collect."""
        embedder, self._embedder = self._embedder, None
        if embedder is not None:
            embedder.close()
        llama, self._llama = self._llama, None
        self._formatter = None
        close_llama(llama)
