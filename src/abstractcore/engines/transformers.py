"""The transformers engine (``AutoModelForCausalLM``), used by the "huggingface" provider.

The prompt is built with the tokenizer's chat template. Generation is a
manual decode loop over the key/value cache: one forward pass per token,
sampling from temperature/top_p/top_k/min_p with a seeded generator, the
cancel flag checked before every token, each token's text handed out as soon
as it decodes to whole characters. A ``spec.constraint`` (constrained
decoding) masks the logits after the penalties and before the pick, follows
every sampled token, and ends the generation as soon as the output is
complete (no forward pass is spent on the end-of-sequence token).
"""

from __future__ import annotations

import inspect
import threading
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from abstractcore.core.errors import BackendNotInstalledError, ConfigurationError
from abstractcore.engines.base import (
    ContextSizes,
    Engine,
    GenerationSpec,
    Outcome,
    StopMatcher,
    check_context,
    collect_garbage,
    plain_transcript,
    require,
)
from abstractcore.engines.embedding import in_groups

__all__ = ["TransformersEngine"]

_DTYPES = ("auto", "float32", "float16", "bfloat16")
#: Prompt tokens evaluated per forward pass; the cancel flag is checked between passes.
PREFILL_CHUNK = 256
_DEVICES = ("auto", "cpu", "cuda", "mps")
#: The context assumed for a model whose config does not state one.
FALLBACK_CONTEXT = 4096


def trained_context(config: Any) -> int | None:
    """The context a transformers config says the model was trained for (``max_position_embeddings``,
    also under ``text_config`` for a multimodal model), None when it says none."""
    for source in (config, getattr(config, "text_config", None)):
        found = getattr(source, "max_position_embeddings", None)
        if isinstance(found, int) and found > 0:
            return found
    return None


def check_device(device: Any) -> str:
    """Validate the ``device`` option ("auto", "cpu", "cuda", "cuda:1", "mps")."""
    if device is None:
        return "auto"
    if not isinstance(device, str) or device.split(":")[0] not in _DEVICES:
        raise ConfigurationError(
            f"device must be one of {', '.join(_DEVICES)} (or 'cuda:N'); got {device!r}."
        )
    return device


def check_dtype(dtype: Any) -> Any:
    """Validate the ``dtype`` option (a name such as "float16", or a ``torch.dtype``)."""
    if dtype is None or (isinstance(dtype, str) and dtype in _DTYPES):
        return dtype
    if type(dtype).__name__ == "dtype":  # a torch.dtype, checked without importing torch
        return dtype
    raise ConfigurationError(f"dtype must be one of {', '.join(_DTYPES)} or a torch.dtype; got {dtype!r}.")


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise BackendNotInstalledError(
            "Running Hugging Face models with transformers needs PyTorch, which is not installed: "
            'pip install torch "abstractcore[transformers]"'
        ) from exc
    return torch


class IncrementalDecoder:
    """Turns tokens into text deltas without splitting characters or losing spaces."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self._ids: list[int] = []
        self._prefix = 0
        self._read = 0

    def _decode(self, ids: list[int]) -> str:
        return str(self._tokenizer.decode(ids, skip_special_tokens=True))

    def add(self, token: int) -> str:
        """The new text once ``token`` is appended ("" while a character is incomplete)."""
        self._ids.append(token)
        before = self._decode(self._ids[self._prefix : self._read])
        after = self._decode(self._ids[self._prefix :])
        if len(after) > len(before) and not after.endswith("\ufffd"):
            self._prefix, self._read = self._read, len(self._ids)
            return after[len(before) :]
        return ""

    def flush(self) -> str:
        """Text still held back at the end of the generation."""
        if self._read == len(self._ids):
            return ""
        before = self._decode(self._ids[self._prefix : self._read])
        after = self._decode(self._ids[self._prefix :]).rstrip("\ufffd")
        self._read = len(self._ids)
        return after[len(before) :]


class _Sampler:
    """Picks the next token from logits (greedy when the temperature is 0)."""

    def __init__(self, torch: Any, spec: GenerationSpec, defaults: Any, device: str) -> None:
        self.torch = torch
        temperature = spec.temperature
        top_p, top_k = spec.top_p, spec.top_k
        if temperature is None and getattr(defaults, "do_sample", False):
            temperature = getattr(defaults, "temperature", None)
            top_p = top_p if top_p is not None else getattr(defaults, "top_p", None)
            top_k = top_k if top_k is not None else getattr(defaults, "top_k", None)
        self.temperature = temperature or 0.0
        self.top_p, self.top_k, self.min_p = top_p, top_k, spec.min_p
        self.repeat = spec.repeat_penalty
        self.presence, self.frequency = spec.presence_penalty or 0.0, spec.frequency_penalty or 0.0
        self.generator = None
        if spec.seed is not None and self.temperature > 0:
            self.generator = torch.Generator(device=device).manual_seed(spec.seed)
        self.counts: dict[int, int] = {}

    def penalise(self, logits: Any, prompt: Any) -> Any:
        torch = self.torch
        if self.repeat and self.repeat != 1.0:
            seen = torch.unique(
                torch.cat([prompt, torch.tensor(list(self.counts), dtype=torch.long, device=logits.device)])
            )
            values = logits[seen]
            logits[seen] = torch.where(values < 0, values * self.repeat, values / self.repeat)
        if self.counts and (self.presence or self.frequency):
            ids = torch.tensor(list(self.counts), dtype=torch.long, device=logits.device)
            freq = torch.tensor(list(self.counts.values()), dtype=logits.dtype, device=logits.device)
            logits[ids] -= self.frequency * freq + self.presence
        return logits

    def pick(self, logits: Any) -> int:
        torch = self.torch
        if self.temperature <= 0:
            return int(torch.argmax(logits))
        logits = logits / self.temperature
        if self.top_k and self.top_k < logits.numel():
            kth = torch.topk(logits, self.top_k).values[-1]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        probs = torch.softmax(logits, dim=-1)
        if self.min_p:
            probs = probs.masked_fill(probs < self.min_p * probs.max(), 0.0)
        if self.top_p is not None and 0 < self.top_p < 1:
            ordered, index = torch.sort(probs, descending=True)
            beyond = torch.cumsum(ordered, dim=-1) - ordered > self.top_p
            probs = torch.zeros_like(probs).scatter(0, index, ordered.masked_fill(beyond, 0.0))
        return int(torch.multinomial(probs, 1, generator=self.generator))

    def seen(self, token: int) -> None:
        self.counts[token] = self.counts.get(token, 0) + 1


class TransformersEngine(Engine):
    """A causal language model run by transformers (a model directory, or a GGUF it dequantises)."""

    def __init__(
        self, path: Path, *, gguf_file: str | None = None, device: str = "auto", dtype: Any = None
    ) -> None:
        self.path = path
        self.gguf_file = gguf_file
        self.device_option = device
        self.dtype_option = dtype
        self.device = "cpu"
        self._model: Any = None
        self._tokenizer: Any = None
        self._eos: set[int] = set()
        self._cache_arg = "past_key_values"
        self._forward_extra: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"TransformersEngine({str(self.path)!r}, gguf_file={self.gguf_file!r})"

    @property
    def loaded(self) -> bool:
        """True while the model is in memory."""
        return self._model is not None

    def _pick_device(self, torch: Any) -> str:
        if self.device_option != "auto":
            return self.device_option
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
        return "cpu"

    def _pick_dtype(self, torch: Any) -> Any:
        dtype = self.dtype_option
        if dtype is None:
            return torch.float32 if self.device == "cpu" else "auto"
        return getattr(torch, dtype) if isinstance(dtype, str) and dtype != "auto" else dtype

    def load(self) -> None:
        """Load tokenizer and model from local files only (never the network)."""
        torch = _torch()
        transformers = require("transformers", "transformers", "Running Hugging Face models")
        self.device = self._pick_device(torch)
        kwargs: dict[str, Any] = {"local_files_only": True}
        if self.gguf_file:
            kwargs["gguf_file"] = self.gguf_file
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(self.path), **kwargs)
        model = transformers.AutoModelForCausalLM.from_pretrained(
            str(self.path), dtype=self._pick_dtype(torch), **kwargs
        )
        model.to(self.device)
        model.eval()
        accepted = inspect.signature(model.forward).parameters
        # transformers 5 renamed past_key_values to cache
        self._cache_arg = "cache" if "cache" in accepted else "past_key_values"
        self._forward_extra = {"logits_to_keep": 1} if "logits_to_keep" in accepted else {}
        eos: set[int] = set()
        for source in (getattr(model, "generation_config", None), model.config, tokenizer):
            value = getattr(source, "eos_token_id", None)
            eos.update(value if isinstance(value, (list, tuple, set)) else ([] if value is None else [value]))
        self._model, self._tokenizer, self._eos = model, tokenizer, {int(e) for e in eos}

    def _prompt_ids(self, torch: Any, spec: GenerationSpec) -> Any:
        tokenizer, messages = self._tokenizer, spec.messages
        if getattr(tokenizer, "chat_template", None):
            switches = dict(spec.template_kwargs)
            if spec.on_prompt is not None:
                text = tokenizer.apply_chat_template(
                    messages, add_generation_prompt=True, tokenize=False, **switches
                )
                spec.on_prompt(str(text))
            encoded = tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, return_dict=True, return_tensors="pt", **switches
            )
            return encoded["input_ids"].to(self.device)
        # a base model without a chat template: a plain transcript
        return tokenizer(plain_transcript(messages), return_tensors="pt")["input_ids"].to(self.device)

    def template_switches(self) -> frozenset[str]:
        """``enable_thinking`` when the tokenizer's chat template reads it."""
        template = getattr(self._tokenizer, "chat_template", None)
        return frozenset({"enable_thinking"}) if "enable_thinking" in str(template or "") else frozenset()

    def count_prompt(self, spec: GenerationSpec) -> int:
        """The prompt tokens of ``spec`` (the chat template, else a plain transcript)."""
        return int(self._prompt_ids(_torch(), spec).shape[-1])

    def generate(self, spec: GenerationSpec, emit: Callable[[str], None], cancel: threading.Event) -> Outcome:
        """Decode token by token, emitting text as it is produced.

        The prompt is evaluated in chunks of ``PREFILL_CHUNK`` tokens with the
        cancel flag checked between them, so a timeout or a cancelled call
        also stops a long prompt's processing.
        """
        torch = _torch()
        model = self._model
        with torch.inference_mode():
            prompt = self._prompt_ids(torch, spec)
            n_prompt = int(prompt.shape[1])
            context = trained_context(model.config) or FALLBACK_CONTEXT
            check_context(n_prompt, context, engine="transformers")
            limit = min(spec.max_tokens or context, context - n_prompt)
            sampler = _Sampler(torch, spec, getattr(model, "generation_config", None), self.device)
            constraint = self._constraint(spec)  # a refused grammar raises here, before any work
            decoder = IncrementalDecoder(self._tokenizer)
            stopper = StopMatcher(spec.stop)
            finish, produced, past = "length", 0, None
            out = None
            for start in range(0, n_prompt, PREFILL_CHUNK):
                if cancel.is_set():
                    return Outcome("cancelled", n_prompt, 0)
                out = model(
                    input_ids=prompt[:, start : start + PREFILL_CHUNK],
                    use_cache=True,
                    **{self._cache_arg: past},
                    **self._forward_extra,
                )
                past = getattr(out, self._cache_arg)
            while out is not None and produced < limit and not cancel.is_set():
                logits = sampler.penalise(out.logits[0, -1, :].float(), prompt[0])
                if constraint is not None:
                    logits = constraint(logits)
                token = sampler.pick(logits)
                if token in self._eos:
                    finish = "stop"
                    break
                if constraint is not None:
                    constraint.advance(token)
                produced += 1
                sampler.seen(token)
                text = stopper.feed(decoder.add(token))
                if text:
                    emit(text)
                if stopper.hit or (constraint is not None and constraint.is_finished):
                    finish = "stop"
                    break
                if produced >= limit:
                    break
                out = model(
                    input_ids=torch.tensor([[token]], device=prompt.device),
                    use_cache=True,
                    **{self._cache_arg: past},
                    **self._forward_extra,
                )
                past = getattr(out, self._cache_arg)
            if cancel.is_set():
                return Outcome("cancelled", n_prompt, produced)
            if not stopper.hit:
                tail = stopper.feed(decoder.flush())
                tail = tail if stopper.hit else tail + stopper.flush()
                if tail:
                    emit(tail)
        return Outcome(finish, n_prompt, produced)

    def _constraint(self, spec: GenerationSpec) -> Any:
        """The per-generation processor of ``spec.constraint`` (None: unconstrained)."""
        if spec.constraint is None:
            return None
        width = getattr(self._model.config, "vocab_size", None)
        return spec.constraint(self._tokenizer, eos_ids=frozenset(self._eos), vocab_size=width)

    def context_sizes(self) -> ContextSizes:
        """``max_position_embeddings`` of the model's config (read without the weights when not
        loaded): what it was trained for, and what a request gets here."""
        if self._model is not None:
            config = self._model.config
        else:
            transformers = require("transformers", "transformers", "Running Hugging Face models")
            kwargs: dict[str, Any] = {"local_files_only": True}
            if self.gguf_file:
                kwargs["gguf_file"] = self.gguf_file
            config = transformers.AutoConfig.from_pretrained(str(self.path), **kwargs)
        trained = trained_context(config)
        return ContextSizes(trained, trained or FALLBACK_CONTEXT)

    def embed(self, texts: Sequence[str], cancel: threading.Event) -> tuple[list[list[float]], int]:
        """The mean of the last hidden states over each text's tokens, L2-normalised.

        Runs the loaded causal model (no second copy of the weights); texts are
        padded per group and the padding is masked out of the mean.
        """
        torch = _torch()
        if self._model is None:
            self.load()
        model, tokenizer = self._model, self._tokenizer
        context = trained_context(model.config) or FALLBACK_CONTEXT
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token

        counts = [len(ids) for ids in tokenizer(list(texts))["input_ids"]]

        def group(batch: list[str]) -> list[list[float]]:
            encoded = tokenizer(batch, padding=True, return_tensors="pt")
            mask = encoded["attention_mask"]
            with torch.inference_mode():
                out = model(
                    input_ids=encoded["input_ids"].to(self.device),
                    attention_mask=mask.to(self.device),
                    output_hidden_states=True,
                    use_cache=False,
                )
                hidden = out.hidden_states[-1].float()
                weights = mask.to(self.device).unsqueeze(-1).float()
                mean = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
                vectors = torch.nn.functional.normalize(mean, p=2, dim=1)
            result: list[list[float]] = vectors.cpu().tolist()
            return result

        return in_groups(texts, counts, context, cancel, group)

    def unload(self) -> None:
        """Drop model and tokenizer, collect, and empty the accelerator cache."""
        refs = [weakref.ref(self._model)] if self._model is not None else []
        self._model = self._tokenizer = None
        collect_garbage(*refs)
        torch = _torch()
        if self.device.startswith("cuda") and torch.cuda.is_available():
            torch.cuda.empty_cache()
        elif self.device == "mps" and hasattr(torch, "mps"):
            torch.mps.empty_cache()
