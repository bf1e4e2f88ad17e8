"""features/constrain.py: grammars, the compile cache, masks and the end of the output.

Most tests use a tiny byte-level vocabulary (one token per byte, and EOS) built
in memory with ``tokenizers``, so every mask can be checked exactly; one test
runs the real SmolLM2 tokenizer (49,152 tokens) through a whole JSON answer.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import BaseModel

from abstractcore import BackendNotInstalledError, ConfigurationError
from abstractcore.features import constrain
from abstractcore.features.constrain import Constraint, ConstraintError, Grammar, strict_schema, tokenizer_for
from abstractcore.features.structured import OutputSpec
from abstractcore.features.tools.prompted import call_schema
from abstractcore.features.tools.schema import to_tool_specs

pytest.importorskip("llguidance")


class Person(BaseModel):
    name: str
    age: int


class Tiny:
    """A fast tokenizer as engines hold one: one token per byte (ids 1-256) and ``<eos>`` (id 0)."""

    def __init__(self) -> None:
        from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

        alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
        self.ids = {ch: i + 1 for i, ch in enumerate(alphabet)}
        tokenizer = Tokenizer(models.BPE(vocab={"<eos>": 0, **self.ids}, merges=[]))
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        tokenizer.add_special_tokens([AddedToken("<eos>", special=True)])
        self.backend_tokenizer = tokenizer
        self.eos_token_id = 0

    def encode(self, text: str) -> list[int]:
        return list(self.backend_tokenizer.encode(text).ids)

    def text(self, ids: list[int]) -> set[str]:
        return {self.backend_tokenizer.decode([i]) if i else "<eos>" for i in ids}


@pytest.fixture(scope="module")
def tiny() -> Tiny:
    return Tiny()


def run(constraint: Constraint, tiny: Tiny, text: str) -> list[set[str]]:
    """Feed ``text`` byte by byte; the allowed set before each byte, and after the last."""
    seen = []
    for token in tiny.encode(text):
        allowed = constraint.allowed()
        seen.append(tiny.text(allowed))
        assert token in allowed, f"{tiny.text([token])} refused after {seen}"
        constraint.advance(token)
    seen.append(tiny.text(constraint.allowed()))
    return seen


def test_the_mask_allows_exactly_what_the_schema_allows(tiny: Tiny) -> None:
    c = Grammar.json(Person.model_json_schema())(tiny, eos_ids={0})
    steps = run(c, tiny, '{"name":"Al","age":42}')
    assert steps[0] == {"{"}  # compact: no whitespace, ever
    assert steps[1] == {'"'} and steps[2] == {"n"}  # keys in the declared order, no extra keys
    assert "<eos>" not in set().union(*steps[:-1])  # never EOS while the JSON is incomplete
    after_colon = steps[len('{"name":"Al","age":')]
    assert after_colon == set("-0123456789")
    assert steps[-1] == {"<eos>"}  # complete: only EOS
    assert c.is_finished and c.is_accepting


def test_eos_comes_only_once_the_output_is_complete(tiny: Tiny) -> None:
    c = Grammar.regex(r"(yes|no)!?")(tiny, eos_ids={0})
    assert tiny.text(c.allowed()) == {"y", "n"}
    for token in tiny.encode("no"):
        c.advance(token)
    assert tiny.text(c.allowed()) == {"!", "<eos>"}  # could end, or go on
    assert c.is_accepting and not c.is_finished
    c.advance(tiny.encode("!")[0])
    assert c.is_finished and tiny.text(c.allowed()) == {"<eos>"}
    with pytest.raises(ConstraintError, match="refused"):
        c.advance(tiny.encode("x")[0])


def test_lark_and_gbnf_grammars(tiny: Tiny) -> None:
    lark = Grammar.lark('start: "red" | "green"')(tiny, eos_ids={0})
    gbnf = Grammar.gbnf('root ::= "red" | "green"')(tiny, eos_ids={0})
    for c in (lark, gbnf):
        assert tiny.text(c.allowed()) == {"r", "g"}
        for token in tiny.encode("green"):
            c.advance(token)
        assert c.is_finished


def test_grammars_and_tokenizers_are_compiled_once_and_copied_per_generation(tiny: Tiny) -> None:
    other = Tiny()
    vocabulary = tokenizer_for(tiny, eos_ids={0})
    assert tokenizer_for(tiny, eos_ids={0}) is vocabulary
    assert tokenizer_for(other, eos_ids={0}) is not vocabulary  # one per tokenizer (per model)
    grammar = Grammar.json(Person.model_json_schema())
    assert Grammar.json(Person.model_json_schema()) == grammar  # plain data: the cache key
    assert vocabulary.compiled(grammar) is vocabulary.compiled(grammar)
    first, second = grammar(tiny, eos_ids={0}), grammar(tiny, eos_ids={0})
    first.advance(tiny.encode("{")[0])
    assert tiny.text(second.allowed()) == {"{"}  # generations do not share state
    assert tiny.text(first.allowed()) == {'"'}
    first.reset()
    assert tiny.text(first.allowed()) == {"{"}


def test_masks_apply_to_numpy_torch_and_mlx_logits(tiny: Tiny) -> None:
    import torch

    grammar = Grammar.regex("[ab]")
    brace = [i for i in range(258) if i not in (tiny.ids["a"], tiny.ids["b"])]

    flat = np.zeros(260, dtype=np.float32)  # wider than the vocabulary (a padded lm_head)
    assert grammar(tiny, eos_ids={0})(flat) is flat  # in place
    assert np.isfinite(flat).sum() == 2 and np.isneginf(flat[brace]).all()
    row = torch.zeros(1, 257)
    assert grammar(tiny, eos_ids={0})(row) is row  # in place, (1, V) too
    assert torch.isfinite(row).sum() == 2
    half = torch.zeros(257, dtype=torch.bfloat16)  # not a numpy dtype: masked_fill_
    assert torch.isfinite(grammar(tiny, eos_ids={0})(half)).sum() == 2

    mx = pytest.importorskip("mlx.core")
    logits = mx.zeros((1, 257))
    masked = grammar(tiny, eos_ids={0})(logits)
    assert masked.shape == (1, 257) and int(mx.isinf(masked).sum()) == 255
    assert int(mx.isinf(logits).sum()) == 0  # a new array


def test_a_repeat_penalty_lowers_only_the_answers_own_recent_tokens(tiny: Tiny) -> None:
    import torch

    grammar = Grammar.regex("[ab]+")
    a, b = tiny.ids["a"], tiny.ids["b"]

    def fresh(penalty: float | None) -> Constraint:
        constraint = grammar(tiny, eos_ids={0}, repeat_penalty=penalty)
        constraint.advance(a)  # the answer so far: "a"
        return constraint

    flat = np.ones(257, dtype=np.float32)
    flat[a] = 2.0
    assert fresh(2.0)(flat) is flat  # in place
    assert (flat[a], flat[b]) == (1.0, 1.0)  # a positive logit is divided by the penalty
    negative = torch.full((1, 257), -1.0)
    assert fresh(2.0)(negative) is negative
    assert (float(negative[0, a]), float(negative[0, b])) == (-2.0, -1.0)  # a negative one multiplied
    untouched = np.ones(257, dtype=np.float32)
    fresh(None)(untouched)
    assert untouched[a] == untouched[b] == 1.0

    mx = pytest.importorskip("mlx.core")
    row = mx.ones((1, 257))
    penalised = fresh(2.0)(row)
    assert (float(penalised[0, a]), float(penalised[0, b])) == (0.5, 1.0)


def test_strict_schema_closes_objects_without_breaking_combinations() -> None:
    s = strict_schema(
        {
            "type": "object",
            "properties": {
                # a property *named* "properties" is not the keyword
                "properties": {"type": "object", "properties": {"a": {"type": "integer"}}},
                "free": {"type": "object", "additionalProperties": {"type": "integer"}},
                "open": {"type": "object", "properties": {"x": {}}, "additionalProperties": True},
            },
        }
    )
    assert s["additionalProperties"] is False
    assert s["properties"]["properties"]["additionalProperties"] is False
    assert "additionalProperties" not in s["properties"]["properties"]["properties"]
    assert s["properties"]["free"]["additionalProperties"] == {"type": "integer"}
    assert s["properties"]["open"]["additionalProperties"] is True

    both = strict_schema(
        {
            "allOf": [
                {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
                {"type": "object", "properties": {"b": {"type": "integer"}}, "required": ["b"]},
            ]
        }
    )  # closing each branch would leave nothing that satisfies both
    assert all("additionalProperties" not in branch for branch in both["allOf"])
    beside = strict_schema(
        {"type": "object", "properties": {"k": {}}, "anyOf": [{"properties": {"a": {}}}, {"required": ["k"]}]}
    )
    assert "additionalProperties" not in beside and "additionalProperties" not in beside["anyOf"][0]
    alone = strict_schema({"anyOf": [{"type": "object", "properties": {"a": {}}}, {"type": "null"}]})
    assert alone["anyOf"][0]["additionalProperties"] is False


def test_nested_defs_are_hoisted_so_a_forced_tool_call_with_models_compiles(tiny: Tiny) -> None:
    class City(BaseModel):
        name: str

    class Trip(BaseModel):
        stops: list[City]

    [tool] = to_tool_specs([{"name": "plan", "parameters": Trip.model_json_schema()}])
    schema = call_schema([tool], "plan")
    assert schema is not None and "$defs" in schema["properties"]["arguments"]
    before = json.dumps(schema)
    strict = strict_schema(schema)
    assert "City" in strict["$defs"] and "$defs" not in strict["properties"]["arguments"]
    assert json.dumps(schema) == before  # the caller's schema is left alone
    c = Grammar.json(schema)(tiny, eos_ids={0})
    run(c, tiny, '{"name":"plan","arguments":{"stops":[{"name":"Oslo"}]}}')
    assert c.is_finished


def test_output_types_compile(tiny: Tiny) -> None:
    import enum
    from typing import Literal

    class Colour(enum.Enum):
        RED = "red"
        BLUE = "blue"

    for target, answer in (
        (list[Person], '{"value":[{"name":"A","age":1}]}'),
        (Literal["yes", "no"], '{"value":"no"}'),
        (Colour, '{"value":"blue"}'),
        (int, '{"value":7}'),
    ):
        c = Grammar.json(OutputSpec.of(target).schema)(tiny, eos_ids={0})
        run(c, tiny, answer)
        assert c.is_finished, target


def test_a_schema_it_cannot_enforce_is_refused_naming_the_keyword(tiny: Tiny) -> None:
    unique = {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}
    with pytest.raises(ConfigurationError, match="uniqueItems"):
        Grammar.json(unique)(tiny, eos_ids={0})
    with pytest.raises(ConfigurationError, match="does not exist"):
        Grammar.json({"$ref": "#/$defs/Nowhere"})(tiny, eos_ids={0})
    assert Grammar.json(unique, lenient=True)(tiny, eos_ids={0}).allowed() == tiny.encode("[")
    with pytest.raises(ConfigurationError, match="not valid JSON"):
        Grammar.json("{nope")


def test_a_missing_llguidance_names_the_pip_extra(tiny: Tiny, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llguidance", None)
    constrain._grammar_text.cache_clear()
    with pytest.raises(BackendNotInstalledError, match=r"abstractcore\[transformers\]"):
        Grammar.regex("x")(Tiny(), eos_ids={0})


def test_the_real_tokenizer_constrains_a_whole_answer(gguf_path: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    c = Grammar.json(Person.model_json_schema())(tokenizer, eos_ids={tokenizer.eos_token_id})
    assert c.vocabulary.vocab_size == 49152
    answer = tokenizer.encode('{"name":"Ann","age":31}', add_special_tokens=False)
    for token in answer:
        allowed = c.allowed()
        assert token in allowed and tokenizer.eos_token_id not in allowed
        assert not any(tokenizer.convert_ids_to_tokens(t).startswith("<|") for t in allowed)  # no specials
        c.advance(token)
    assert c.is_finished and c.allowed() == [tokenizer.eos_token_id]
    data: Any = json.loads(tokenizer.decode(answer))
    assert Person.model_validate(data) == Person(name="Ann", age=31)
