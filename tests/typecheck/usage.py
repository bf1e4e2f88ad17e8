"""Checked by ``mypy --strict`` in CI (never run): the public API's types as users see them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from pydantic import BaseModel
from typing_extensions import assert_type

from abstractcore import LLM, GenerateResponse, StreamChunk, create_llm


class Person(BaseModel):
    name: str
    age: int


def sync_usage() -> None:
    llm = create_llm("openai", model="m")
    assert_type(llm, LLM)
    assert_type(llm.generate("hi"), GenerateResponse)
    assert_type(llm.generate("hi", stream=True), Iterator[StreamChunk])
    assert_type(llm.generate("Ann, 31", response_model=Person), Person)
    assert_type(llm.stream("hi"), Iterator[StreamChunk])
    assert_type(llm.stream("Ann, 31", response_model=Person), Iterator[Person])
    assert_type(llm.generate("3 items", response_model=list[Person]), list[Person])
    with llm as same:
        assert_type(same, LLM)
    assert_type(llm.list_models(), list[str])
    assert_type(llm.unload(), None)


async def async_usage() -> None:
    llm = create_llm("openai", model="m")
    assert_type(await llm.agenerate("hi"), GenerateResponse)
    assert_type(await llm.agenerate("hi", stream=True), AsyncIterator[StreamChunk])
    assert_type(await llm.agenerate("Ann, 31", response_model=Person), Person)
    assert_type(llm.astream("hi"), AsyncIterator[StreamChunk])
    assert_type(llm.astream("Ann, 31", response_model=Person), AsyncIterator[Person])
    async for person in llm.astream("Ann, 31", response_model=Person):
        assert_type(person, Person)
    async for chunk in llm.astream("hi"):
        assert_type(chunk.content, str)
