"""Output types, the strict schema, repair and partial values: the pure pieces of structured output."""

from __future__ import annotations

import dataclasses
import enum
import json
from typing import Literal, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from abstractcore import ConfigurationError
from abstractcore.features.structured import OutputSpec, ValidationFailure, strict_json_schema


class Person(BaseModel):
    name: str
    age: int
    nickname: Optional[str] = None  # noqa: UP045


class Team(BaseModel):
    title: str
    members: list[Person]
    lead: Person | None = None


@dataclasses.dataclass
class Point:
    x: float
    y: float


class Movie(TypedDict):
    title: str
    year: int


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


class Tree(BaseModel):
    label: str
    children: list[Tree] = Field(default_factory=list)


@pytest.mark.parametrize(
    ("target", "answer", "expected"),
    [
        (Person, '{"name": "Ann", "age": 31}', Person(name="Ann", age=31)),
        (Point, '{"x": 1, "y": 2.5}', Point(1.0, 2.5)),
        (Movie, '{"title": "Up", "year": 2009}', {"title": "Up", "year": 2009}),
        (list[Person], '{"value": [{"name": "A", "age": 1}]}', [Person(name="A", age=1)]),
        (Literal["yes", "no"], '{"value": "yes"}', "yes"),
        (Colour, '{"value": "green"}', Colour.GREEN),
        (int, '{"value": 42}', 42),
        (bool, '{"value": true}', True),
        (Tree, '{"label": "a", "children": [{"label": "b"}]}', Tree(label="a", children=[Tree(label="b")])),
    ],
)
def test_every_output_type_round_trips(target: object, answer: str, expected: object) -> None:
    spec = OutputSpec.of(target)
    assert spec.schema["type"] == "object"  # what every API takes
    assert spec.wrapped == (answer.startswith('{"value"'))
    assert spec.parse(answer) == expected


def test_a_wrapped_type_also_accepts_the_bare_value() -> None:
    assert OutputSpec.of(list[int]).parse("[1, 2, 3]") == [1, 2, 3]


def test_near_json_is_repaired_before_it_is_rejected() -> None:
    spec = OutputSpec.of(Person)
    assert spec.parse('Sure! Here it is:\n```json\n{"name": "Ann", "age": 31}\n```').name == "Ann"
    assert spec.parse('{"name": "Ann", "age": 31,}').age == 31  # trailing comma
    assert spec.parse("{name: 'Ann', age: 31}").age == 31  # unquoted keys, single quotes
    with pytest.raises(ValidationFailure) as info:
        spec.parse('{"name": "Ann", "age": "old"}')
    assert info.value.errors[0]["loc"] == ("age",)
    with pytest.raises(ValidationFailure):
        spec.parse("Paris is a big city.")


def test_a_value_is_not_a_type() -> None:
    with pytest.raises(ConfigurationError, match="must be a type"):
        OutputSpec.of({"type": "object"})


def test_the_strict_schema_is_openais_transformation() -> None:
    strict = OutputSpec.of(Team).strict_schema
    assert strict is not None
    person = strict["$defs"]["Person"]
    assert person["additionalProperties"] is False
    assert person["required"] == ["name", "age", "nickname"]  # the optional field too
    assert "default" not in person["properties"]["nickname"]  # default null dropped
    assert {"type": "null"} in person["properties"]["nickname"]["anyOf"]  # ... its null kept
    assert strict["required"] == ["title", "members", "lead"]


def test_a_free_form_dict_cannot_be_strict() -> None:
    class Bag(BaseModel):
        values: dict[str, int]

    assert OutputSpec.of(Bag).strict_schema is None
    assert strict_json_schema({"oneOf": [{"type": "string"}, {"type": "integer"}]}) is None


def _prefixes(text: str) -> list[str]:
    return [text[:i] for i in range(1, len(text) + 1)]


def test_partials_grow_strings_and_lists_item_by_item() -> None:
    spec = OutputSpec.of(Team)
    document = json.dumps(
        {"title": "Core", "members": [{"name": "Ann", "age": 31}, {"name": "Bo", "age": 4}]}
    )
    partials = [p for p in (spec.partial(t) for t in _prefixes(document)) if p is not None]
    titles = [p.title for p in partials if p.title]
    assert "C" in titles or "Co" in titles  # the string grew while it streamed
    counts = [len(p.members or []) for p in partials]
    assert counts == sorted(counts) and 1 in counts and counts[-1] == 2  # one item, then two
    assert isinstance(partials[0], Team)  # partial values are of the asked type
    assert spec.parse(document) == Team.model_validate_json(document)


people = st.builds(
    dict,
    name=st.text(st.characters(codec="utf-8"), max_size=8),
    age=st.integers(0, 120),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(people, max_size=3), st.text(max_size=10), st.data())
def test_any_chunking_gives_partials_whose_fields_only_grow(
    members: list[dict[str, object]], title: str, data: st.DataObject
) -> None:
    spec = OutputSpec.of(Team)
    document = json.dumps({"title": title, "members": members})
    cuts = sorted(data.draw(st.sets(st.integers(1, len(document)), max_size=12)) | {len(document)})
    previous: Team | None = None
    for cut in cuts:
        value = spec.partial(document[:cut])
        if value is None:
            continue
        if previous is not None:
            assert (value.title or "").startswith(previous.title or "")
            assert len(value.members or []) >= len(previous.members or [])
            for old, new in zip(previous.members or [], (value.members or [])[:-1]):
                assert old.name is None or (new.name or "").startswith(old.name)
        previous = value
    assert spec.parse(document) == Team.model_validate(json.loads(document))
