"""Constrained decoding for the in-process engines: one grammar engine (llguidance) behind a small API.

A ``Grammar`` is what to constrain to: a JSON schema (the usual case: a
``response_model``, or the schema of a forced prompted tool call), a regular
expression, a Lark grammar or a GBNF grammar. It is plain data, cheap to
build, and imports nothing until it is used. Called with an engine's
tokenizer it gives the per-generation processor, so a ``Grammar`` is the
factory ``GenerationSpec.constraint`` takes::

    grammar = Grammar.json(Person.model_json_schema())
    processor = grammar(tokenizer, eos_ids={2}, vocab_size=49152)    # per generation
    while True:
        logits = processor(logits)       # disallowed tokens -> -inf (torch/numpy in place, mx: a new array)
        token = pick(logits)
        if token in eos_ids:
            break
        processor.advance(token)
        if processor.is_finished:         # the JSON is complete: stop, no forward pass spent on EOS
            break

What is cached, and where: the llguidance tokenizer (~0.5-1.5 s to build)
once per tokenizer object (weakly: it goes with the model's tokenizer), the
grammar text once per grammar, and the compiled matcher (~1 ms) once per
(tokenizer, grammar); a generation gets a copy of it (~10 µs).

JSON is compact (no whitespace between tokens: fewer tokens, and nothing for
a small model to loop on) and strict (``additionalProperties: false`` on
every object schema that declares properties and says nothing else: JSON
Schema allows extra keys by default, and a small model invents them). A
schema llguidance cannot enforce (``uniqueItems``, ``not``, ``if``/``then``,
...) raises ``ConfigurationError`` naming the keyword, unless
``lenient=True`` asks to ignore what cannot be enforced.

Masks are applied with numpy (``unpackbits`` + ``putmask``) and ``mx.where``,
not llguidance's own kernels: its torch kernel builds a C++ extension through
``torch.compile`` on first use (~30 s), and its MLX kernel needs Metal.
"""

from __future__ import annotations

import copy
import functools
import json
import sys
import threading
import weakref
from collections import OrderedDict, deque
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from abstractcore.core.errors import ConfigurationError, LocalBackendError
from abstractcore.engines.base import require

__all__ = [
    "Constraint",
    "ConstraintError",
    "Grammar",
    "GrammarKind",
    "Vocabulary",
    "strict_schema",
    "tokenizer_for",
]

GrammarKind = Literal["json", "regex", "lark", "gbnf"]

#: Compiled grammars kept per tokenizer (least recently used dropped first).
_COMPILED_PER_TOKENIZER = 64


class ConstraintError(LocalBackendError):
    """The grammar engine refused a token or failed during a generation (a bug, never a bad schema)."""


def _llguidance(extra: str) -> Any:
    return require("llguidance", extra, "Constrained decoding in process (structured output, forced tools)")


# -- schemas -------------------------------------------------------------------------------------

#: Keywords whose value maps names to subschemas, and keywords whose value is one subschema or a list.
_MAPS = ("properties", "patternProperties", "$defs", "definitions")
_LISTS = ("anyOf", "oneOf", "prefixItems")
_ONE = ("items", "additionalItems", "additionalProperties", "contains")
#: Applicators that add properties to the object they sit beside (closing either side breaks both).
_IN_PLACE = ("allOf", "$ref", "if", "then", "else", "dependentSchemas", "unevaluatedProperties")


def _declares_properties(schema: Any) -> bool:
    return isinstance(schema, dict) and ("properties" in schema or "patternProperties" in schema)


def strict_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``schema`` in which objects allow only the properties they declare.

    ``additionalProperties: false`` is added to every object schema that
    declares ``properties`` (or ``patternProperties``) and says nothing about
    extra keys. The walk follows keywords, so a property *named*
    "properties" is not taken for the keyword. A schema combined in place
    with others (``allOf`` branches, a sibling ``$ref``, ``anyOf``/``oneOf``
    branches beside the parent's own properties) is left open: closing each
    part would make their intersection accept nothing. ``not`` and
    ``if``/``then``/``else`` are left as they are. Nested ``$defs`` are
    hoisted to the root (``#/$defs/...`` references are absolute).
    """
    root: dict[str, Any] = _strict(copy.deepcopy(dict(schema)), in_place=False)
    hoisted: dict[str, Any] = {}
    _hoist_defs(root, hoisted, top=True)
    if hoisted:
        defs = dict(root.get("$defs") or {})
        for name, sub in hoisted.items():
            defs.setdefault(name, sub)
        root["$defs"] = defs
    return root


def _strict(schema: Any, *, in_place: bool) -> Any:
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    for key in _MAPS:
        if isinstance(out.get(key), dict):
            out[key] = {name: _strict(sub, in_place=False) for name, sub in out[key].items()}
    own = _declares_properties(out)
    for key in _LISTS:
        if isinstance(out.get(key), list):
            beside = own and key != "prefixItems"  # a branch is intersected with the parent's properties
            out[key] = [_strict(sub, in_place=beside) for sub in out[key]]
    for key in _ONE:
        if isinstance(out.get(key), dict):
            out[key] = _strict(out[key], in_place=False)
        elif key == "items" and isinstance(out.get(key), list):  # draft-07 tuple form
            out[key] = [_strict(sub, in_place=False) for sub in out[key]]
    if isinstance(out.get("allOf"), list):
        out["allOf"] = [_strict(sub, in_place=True) for sub in out["allOf"]]
    combined = any(key in out for key in _IN_PLACE) or any(
        _declares_properties(branch) for key in ("anyOf", "oneOf") for branch in out.get(key) or ()
    )
    if own and not in_place and not combined and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def _hoist_defs(node: Any, found: dict[str, Any], *, top: bool) -> None:
    if isinstance(node, list):
        for item in node:
            _hoist_defs(item, found, top=False)
        return
    if not isinstance(node, dict):
        return
    if not top and isinstance(node.get("$defs"), dict):
        for name, sub in node.pop("$defs").items():
            found.setdefault(name, sub)
    for key, value in node.items():
        if key in ("const", "enum", "default", "examples"):  # values, not schemas
            continue
        if key == "$defs" and top:
            for sub in value.values() if isinstance(value, dict) else ():
                _hoist_defs(sub, found, top=False)
        elif key in _MAPS and isinstance(value, dict):
            for sub in value.values():
                _hoist_defs(sub, found, top=False)
        else:
            _hoist_defs(value, found, top=False)


# -- grammars ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grammar:
    """What decoding is constrained to; calling it with a tokenizer gives a per-generation ``Constraint``.

    Build one with ``Grammar.json``, ``Grammar.regex``, ``Grammar.lark`` or
    ``Grammar.gbnf``. Instances are hashable plain data (the key of the
    compile cache) and import nothing until called.
    """

    kind: GrammarKind
    #: The JSON schema (serialised, in its own key order: properties come in that order), the regex,
    #: or the grammar text.
    source: str
    #: JSON only: no whitespace between tokens (False: JSON whitespace allowed, up to 2 characters).
    compact: bool = True
    #: JSON only: ignore keywords llguidance cannot enforce instead of refusing the schema.
    lenient: bool = False

    @classmethod
    def json(
        cls,
        schema: Mapping[str, Any] | str,
        *,
        strict: bool = True,
        compact: bool = True,
        lenient: bool = False,
    ) -> Grammar:
        """JSON matching ``schema`` (a dict or JSON text); ``strict`` closes objects (``strict_schema``)."""
        if isinstance(schema, str):
            try:
                schema = json.loads(schema)
            except ValueError as exc:
                raise ConfigurationError(f"The JSON schema is not valid JSON: {exc}") from None
        if not isinstance(schema, Mapping):
            raise ConfigurationError(f"A JSON schema must be an object; got {type(schema).__name__}.")
        prepared = strict_schema(schema) if strict else dict(schema)
        return cls("json", json.dumps(prepared, separators=(",", ":")), compact, lenient)

    @classmethod
    def regex(cls, pattern: str) -> Grammar:
        """Text matching the regular expression ``pattern`` (Rust regex syntax, anchored at both ends)."""
        return cls("regex", pattern)

    @classmethod
    def lark(cls, grammar: str) -> Grammar:
        """Text matching a Lark grammar (llguidance's dialect; the start rule is ``start``)."""
        return cls("lark", grammar)

    @classmethod
    def gbnf(cls, grammar: str) -> Grammar:
        """Text matching a llama.cpp GBNF grammar (the start rule is ``root``)."""
        return cls("gbnf", grammar)

    @property
    def schema(self) -> dict[str, Any] | None:
        """The (strict) JSON schema of a JSON grammar, else None."""
        if self.kind != "json":
            return None
        found: dict[str, Any] = json.loads(self.source)
        return found

    def __call__(
        self,
        tokenizer: Any,
        *,
        eos_ids: Collection[int] = (),
        vocab_size: int | None = None,
        repeat_penalty: float | None = None,
    ) -> Constraint:
        """A fresh ``Constraint`` for one generation (compiled once per tokenizer, then copied).

        ``tokenizer``: a Hugging Face fast tokenizer, mlx-lm's
        ``TokenizerWrapper``, a ``llama_cpp.Llama`` or any object whose
        ``llama_vocab`` is llama.cpp's vocabulary pointer; ``eos_ids``: every
        token id that ends a generation; ``vocab_size``: the width of the
        model's logits when it differs from the tokenizer's vocabulary; ``repeat_penalty``: see
        ``Constraint`` (bind it with ``functools.partial`` to hand an engine the factory).
        """
        vocabulary = tokenizer_for(tokenizer, eos_ids=eos_ids, vocab_size=vocab_size)
        return vocabulary.constraint(self, repeat_penalty=repeat_penalty)


@functools.lru_cache(maxsize=256)
def _grammar_text(grammar: Grammar, extra: str) -> str:
    llg = _llguidance(extra)
    matcher = llg.LLMatcher
    if grammar.kind == "json":
        options: dict[str, Any] = {"whitespace_flexible": not grammar.compact, "lenient": grammar.lenient}
        if not grammar.compact:
            options["whitespace_pattern"] = r"[ \n]{0,2}"  # bounded: whitespace cannot loop
        try:
            return str(matcher.grammar_from_json_schema(grammar.source, defaults=options))
        except ValueError as exc:
            raise _refused(grammar, str(exc)) from None
    if grammar.kind == "regex":
        return str(matcher.grammar_from_regex(grammar.source))
    if grammar.kind == "lark":
        return str(matcher.grammar_from_lark(grammar.source))
    if grammar.kind == "gbnf":
        try:
            return str(llg.grammar_from("gbnf", grammar.source))
        except ValueError as exc:
            raise _refused(grammar, str(exc)) from None
    raise ConfigurationError(f"Unknown grammar kind {grammar.kind!r}; use json, regex, lark or gbnf.")


def _refused(grammar: Grammar, message: str) -> ConfigurationError:
    what = "JSON schema" if grammar.kind == "json" else f"{grammar.kind} grammar"
    hint = (
        " Drop that keyword from the schema, pass structured_mode='prompt' to only ask for it in the "
        "prompt, or use a provider whose server enforces it."
        if grammar.kind == "json"
        else ""
    )
    return ConfigurationError(
        f"In-process constrained decoding (llguidance) cannot enforce this {what}: {message}.{hint}"
    )


# -- tokenizers ----------------------------------------------------------------------------------


class Vocabulary:
    """An engine's tokenizer as llguidance sees it, with the grammars compiled for it (one per model)."""

    def __init__(self, lltokenizer: Any, llguidance: Any, extra: str) -> None:
        self.lltokenizer = lltokenizer
        self.vocab_size: int = int(lltokenizer.vocab_size)
        self.eos_ids: frozenset[int] = frozenset(int(e) for e in lltokenizer.eos_tokens)
        self._llg = llguidance
        self._extra = extra
        self._compiled: OrderedDict[Grammar, Any] = OrderedDict()
        self._lock = threading.Lock()

    def compiled(self, grammar: Grammar) -> Any:
        """The pristine compiled matcher of ``grammar`` (``ConfigurationError`` if it is refused)."""
        with self._lock:
            found = self._compiled.get(grammar)
            if found is not None:
                self._compiled.move_to_end(grammar)
                return found
        text = _grammar_text(grammar, self._extra)
        matcher_cls = self._llg.LLMatcher
        is_error, messages = matcher_cls.validate_grammar_with_warnings(text, self.lltokenizer)
        if is_error:
            raise _refused(grammar, messages[0] if messages else "invalid grammar")
        matcher = matcher_cls(self.lltokenizer, text, log_level=0)
        if matcher.is_error():
            raise _refused(grammar, matcher.get_error())
        with self._lock:
            self._compiled[grammar] = matcher
            while len(self._compiled) > _COMPILED_PER_TOKENIZER:
                self._compiled.popitem(last=False)
        return matcher

    def constraint(self, grammar: Grammar, *, repeat_penalty: float | None = None) -> Constraint:
        """A fresh per-generation ``Constraint`` for ``grammar``."""
        return Constraint(self.compiled(grammar).deep_copy(), self, repeat_penalty=repeat_penalty)


_VOCABULARIES: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], Vocabulary]] = weakref.WeakKeyDictionary()
_VOCABULARIES_LOCK = threading.Lock()


def tokenizer_for(
    tokenizer: Any, *, eos_ids: Collection[int] = (), vocab_size: int | None = None
) -> Vocabulary:
    """The llguidance view of an engine's tokenizer, built once per tokenizer object and cached.

    Takes a Hugging Face *fast* tokenizer (transformers 4 and 5), mlx-lm's
    ``TokenizerWrapper`` (unwrapped by type: a fast tokenizer also has a
    ``_tokenizer``, its Rust object) or a ``llama_cpp.Llama`` (llama.cpp's own
    vocabulary). ``eos_ids`` should hold *every* id that ends a generation;
    the tokenizer's own EOS is used when empty.
    """
    eos = tuple(sorted({int(e) for e in eos_ids}))
    key = (eos, vocab_size)
    with _VOCABULARIES_LOCK:
        try:
            found = _VOCABULARIES.get(tokenizer, {}).get(key)
        except TypeError:  # neither hashable nor weakly referenceable: no cache
            found = None
        if found is not None:
            return found
        made = _make_vocabulary(tokenizer, eos, vocab_size)
        try:
            _VOCABULARIES.setdefault(tokenizer, {})[key] = made
        except TypeError:
            pass
        return made


def _llamacpp_tokenizer(llg: Any, vocab: Any, vocab_size: int | None, eos: tuple[int, ...]) -> Any:
    """llguidance's tokenizer over llama.cpp's vocabulary (~0.5 s for 49k tokens; cached by the caller).

    What ``llguidance.llamacpp.lltokenizer_from_vocab`` does, with
    ``llama_vocab_get_attr``: the deprecated ``llama_token_get_attr`` it calls
    warns once per token (49,152 DeprecationWarnings for SmolLM2).
    """
    import ctypes

    llama_cpp = require("llama_cpp", "llamacpp", "Constrained decoding with llama.cpp")
    count = int(llama_cpp.llama_vocab_n_tokens(vocab))
    size = 16 * 1024
    buffer = ctypes.create_string_buffer(size + 1)
    control, user = llama_cpp.LLAMA_TOKEN_ATTR_CONTROL, llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED
    tokens: list[bytes] = []
    for token in range(count):
        n = llama_cpp.llama_token_to_piece(vocab, token, buffer, size, 0, True)
        if n < 0:
            raise ValueError(f"llama.cpp token {token} does not fit {size} bytes")
        text = buffer.raw[:n]
        attr = llama_cpp.llama_vocab_get_attr(vocab, token)
        # control tokens (and user-defined ones that look like them) are marked special with 0xff
        if attr & control or (attr & user and text.startswith(b"<") and text.endswith(b">")):
            text = b"\xff" + text
        tokens.append(text)
    tokens += [b""] * max(0, (vocab_size or 0) - len(tokens))
    tokenize = ctypes.cast(llama_cpp.llama_cpp._lib.llama_tokenize, ctypes.c_void_p).value
    eos_token = list(eos) if eos else int(llama_cpp.llama_vocab_eos(vocab))
    return llg.LLTokenizer.from_llamacpp(
        tokens=tokens, vocab_ptr=vocab, tokenize_fptr=tokenize, eos_token=eos_token, slices=None
    )


def _make_vocabulary(tokenizer: Any, eos: tuple[int, ...], vocab_size: int | None) -> Vocabulary:
    llama_cpp = sys.modules.get("llama_cpp")
    vocab = getattr(tokenizer, "llama_vocab", None)  # an engine holding llama.cpp's vocabulary pointer
    if vocab is None and llama_cpp is not None and isinstance(tokenizer, llama_cpp.Llama):
        vocab = llama_cpp.llama_model_get_vocab(tokenizer.model)
    if vocab is not None:
        llg = _llguidance("llamacpp")
        return Vocabulary(_llamacpp_tokenizer(llg, vocab, vocab_size, eos), llg, "llamacpp")
    extra = "transformers"
    if type(tokenizer).__name__ == "TokenizerWrapper" and type(tokenizer).__module__.startswith("mlx_lm"):
        tokenizer, extra = tokenizer._tokenizer, "mlx"
    llg = _llguidance(extra)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or not hasattr(backend, "to_str"):
        raise ConfigurationError(
            f"Constrained decoding needs a fast (Rust) Hugging Face tokenizer; {type(tokenizer).__name__} "
            "is not one. Save the model with a tokenizer.json, or pass structured_mode='prompt'."
        )
    # what llguidance.hf.from_tokenizer does, without its isinstance check (transformers 5 renamed the class)
    backend = copy.copy(backend)
    backend.no_padding()
    backend.no_truncation()
    size = max(int(backend.get_vocab_size(with_added_tokens=True)), vocab_size or 0)
    eos_list = list(eos) if eos else getattr(tokenizer, "eos_token_id", None)
    made = llg.LLTokenizer(backend.to_str(), n_vocab=size, eos_token=eos_list)
    return Vocabulary(made, llg, extra)


# -- the per-generation processor ----------------------------------------------------------------


#: How many of the answer's last tokens ``repeat_penalty`` looks at (llama.cpp's ``repeat_last_n``).
REPEAT_LAST_N = 64


class Constraint:
    """One generation's grammar state: masks logits, advances on each sampled token.

    With ``repeat_penalty`` it also lowers the logits of the tokens the answer itself holds
    among its last ``REPEAT_LAST_N`` (llama.cpp's penalty: a positive logit is divided by it, a
    negative one multiplied), the same on every engine; the prompt's tokens are not counted, so
    a value copied from the prompt is not pushed away.

    Not thread-safe; one per generation (``Grammar.__call__`` makes them).
    """

    def __init__(self, matcher: Any, vocabulary: Vocabulary, *, repeat_penalty: float | None = None) -> None:
        import numpy as np

        self._np = np
        self._matcher = matcher
        self.vocabulary = vocabulary
        #: Every id that ends a generation (what the grammar allows once the output is complete).
        self.eos_ids = vocabulary.eos_ids
        self._words = (vocabulary.vocab_size + 31) // 32
        self._mask = np.zeros((self._words,), dtype=np.int32)
        self._mx_inf: Any = None
        self.repeat_penalty = repeat_penalty if repeat_penalty and repeat_penalty != 1.0 else None
        self._recent: deque[int] = deque(maxlen=REPEAT_LAST_N)

    # -- per step

    def bitmask(self) -> Any:
        """The allowed next tokens as an int32 bitmask (bit j of word i: token 32*i+j). Drops the GIL."""
        self._matcher.unsafe_compute_mask_ptr(self._mask.ctypes.data, self._mask.nbytes)
        if self._matcher.is_error():
            raise ConstraintError(f"The grammar engine failed: {self._matcher.get_error()}")
        return self._mask

    def banned(self, width: int | None = None) -> Any:
        """A boolean numpy array over ``width`` logits (default: the vocabulary): True = not allowed."""
        np = self._np
        width = width or self.vocabulary.vocab_size
        bits = np.unpackbits(self.bitmask().view(np.uint8), bitorder="little")
        if width <= bits.shape[0]:
            return bits[:width] == 0
        return np.concatenate([bits == 0, np.ones(width - bits.shape[0], dtype=bool)])

    def allowed(self) -> list[int]:
        """The ids allowed next (for tests and debugging)."""
        return [int(i) for i in self._np.flatnonzero(~self.banned())]

    def __call__(self, logits: Any) -> Any:
        """Mask the next-token logits: disallowed tokens get -inf.

        A torch tensor or numpy array (shape ``(V,)`` or ``(1, V)``) is
        changed in place and returned; an ``mx.array`` is not mutable, so
        a new array is returned.
        """
        np = self._np
        module = type(logits).__module__
        width = int(logits.shape[-1])
        if self.repeat_penalty is not None and self._recent:
            logits = self._penalise(logits, module, width)
        banned = self.banned(width)
        if module.startswith("mlx"):
            mx = sys.modules["mlx.core"]
            if self._mx_inf is None or self._mx_inf.dtype != logits.dtype:
                self._mx_inf = mx.array(float("-inf"), dtype=logits.dtype)
            return mx.where(mx.array(banned), self._mx_inf, logits)
        if module.startswith("torch"):
            torch = sys.modules["torch"]
            if (
                logits.device.type == "cpu"
                and logits.dtype in (torch.float32, torch.float16, torch.float64)
                and logits.is_contiguous()
            ):  # numpy's putmask: single-threaded, and much faster than small torch ops on CPU
                rows = int(logits.numel()) // banned.shape[0]
                np.putmask(
                    logits.numpy().reshape(-1), banned if rows == 1 else np.tile(banned, rows), -np.inf
                )
            else:
                logits.masked_fill_(torch.from_numpy(banned).to(logits.device), float("-inf"))
            return logits
        array = np.asarray(logits)
        if array.ndim == 1 and array.flags.writeable:
            np.putmask(array, banned, -np.inf)
        else:
            array[..., banned] = -np.inf
        return array

    def _penalise(self, logits: Any, module: str, width: int) -> Any:
        """``logits`` with the answer's recent tokens penalised (in place but for ``mx.array``)."""
        np = self._np
        penalty = float(self.repeat_penalty or 1.0)
        ids = np.fromiter(set(self._recent), dtype=np.int64)
        ids = ids[ids < width]
        if module.startswith("mlx"):
            mx = sys.modules["mlx.core"]
            scale = np.ones(width, dtype=np.float32)
            scale[ids] = penalty
            factor = mx.array(scale).astype(logits.dtype)
            return mx.where(logits > 0, logits / factor, logits * factor)
        if module.startswith("torch"):
            torch = sys.modules["torch"]
            index = torch.from_numpy(ids).to(logits.device)
            values = logits[..., index]
            logits[..., index] = torch.where(values > 0, values / penalty, values * penalty)
            return logits
        array = np.asarray(logits)
        values = array[..., ids]
        array[..., ids] = np.where(values > 0, values / penalty, values * penalty)
        return array

    def advance(self, token: int) -> None:
        """Consume the sampled ``token`` (not EOS: stop instead). ``ConstraintError`` if refused."""
        if not self._matcher.consume_token(int(token)):
            raise ConstraintError(
                f"The grammar refused token {int(token)}: {self._matcher.get_error() or 'not allowed'}"
            )
        if self.repeat_penalty is not None:
            self._recent.append(int(token))

    @property
    def is_finished(self) -> bool:
        """The output is complete: nothing but EOS may follow, so the generation can stop now."""
        return bool(self._matcher.is_stopped())

    @property
    def is_accepting(self) -> bool:
        """The output so far is a complete match (more may still follow, e.g. digits of a number)."""
        return bool(self._matcher.is_accepting())

    def forced_tokens(self) -> list[int]:
        """Tokens the grammar forces next, whatever the model says (e.g. ``"name":`` after ``{``)."""
        return [int(t) for t in self._matcher.compute_ff_tokens()]

    def reset(self) -> None:
        """Back to the start of the grammar."""
        self._matcher.reset()
