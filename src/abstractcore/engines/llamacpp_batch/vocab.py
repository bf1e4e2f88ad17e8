"""A loaded model's vocabulary: the prompt (the GGUF's chat template, tokenized as
``create_chat_completion`` does) and the bytes of a sampled token."""

from __future__ import annotations

import contextlib
import ctypes
from typing import Any

from abstractcore.engines import llamacpp_native
from abstractcore.engines.base import GenerationSpec
from abstractcore.engines.llamacpp import template_switches

__all__ = ["Vocab"]


class Vocab:
    """Tokenizing and detokenizing with one model's vocabulary.

    ``prompt_tokens`` runs on submitting threads (the vocabulary is read-only); ``token_bytes``
    reuses one buffer and runs on the scheduler thread only.
    """

    def __init__(self, llama_cpp: Any, model: Any) -> None:
        self._ll = llama_cpp
        self._model = model
        #: llama.cpp's vocabulary pointer.
        self.pointer = llama_cpp.llama_model_get_vocab(model)
        self.n_tokens = llama_cpp.llama_vocab_n_tokens(self.pointer)
        #: Every token id that ends a generation.
        self.eog_ids = llamacpp_native.eog_ids(llama_cpp, self.pointer)
        self._piece = ctypes.create_string_buffer(256)
        self._formatter: Any = None

    def prompt_tokens(self, spec: GenerationSpec) -> list[int]:
        """The chat template's prompt, tokenized as ``create_chat_completion`` does."""
        tools = list(spec.tools) or None
        choice = spec.tool_choice if tools else None
        rendered = self._chat_formatter()(
            messages=spec.messages, tools=tools, tool_choice=choice, **spec.template_kwargs
        )
        if spec.on_prompt is not None:
            spec.on_prompt(str(rendered.prompt))
        return self.tokenize(str(rendered.prompt), add_special=not rendered.added_special)

    def compile_template(self) -> None:
        """Compile the chat template now, if the GGUF has one (at load, not in the first request)."""
        with contextlib.suppress(ValueError):
            self._chat_formatter()

    def template_switches(self) -> frozenset[str]:
        """``enable_thinking`` when the GGUF's chat template reads it."""
        return template_switches(str(self._chat_formatter().template))

    def _chat_formatter(self) -> Any:
        if self._formatter is None:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            raw = self._ll.llama_model_chat_template(self._model, None)
            if not raw:
                raise ValueError("the GGUF has no chat template (tokenizer.chat_template)")
            bos, eos = self._ll.llama_vocab_bos(self.pointer), self._ll.llama_vocab_eos(self.pointer)
            self._formatter = Jinja2ChatFormatter(
                template=raw.decode("utf-8"),
                bos_token=self._token_text(bos),
                eos_token=self._token_text(eos),
                add_generation_prompt=True,
            )
        return self._formatter

    def _token_text(self, token: int) -> str:
        raw = self._ll.llama_vocab_get_text(self.pointer, token) if token >= 0 else b""
        return raw.decode("utf-8", errors="replace") if raw else ""

    def tokenize(self, text: str, *, add_special: bool) -> list[int]:
        """``text``'s tokens (special tokens in it parsed as such)."""
        data = text.encode("utf-8")
        size = len(data) + 8
        while True:
            buf = (self._ll.llama_token * size)()
            n = self._ll.llama_tokenize(self.pointer, data, len(data), buf, size, add_special, True)
            if n >= 0:
                return list(buf[:n])
            size = -n

    def token_bytes(self, token: int) -> bytes:
        """The bytes ``token`` stands for (part of a UTF-8 character, maybe)."""
        ll = self._ll
        n = ll.llama_token_to_piece(self.pointer, token, self._piece, len(self._piece), 0, False)
        if n < 0:
            self._piece = ctypes.create_string_buffer(-n)
            n = ll.llama_token_to_piece(self.pointer, token, self._piece, len(self._piece), 0, False)
        return self._piece.raw[:n]
