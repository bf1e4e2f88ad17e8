"""The server's response store: bounded by count (least recently used goes first) and by age."""

from __future__ import annotations

import pytest

from abstractcore import Message
from abstractcore.server.errors import ApiError
from abstractcore.server.responses import ResponseStore


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_least_recently_used_response_goes_first_past_the_size() -> None:
    store = ResponseStore(size=2, ttl=60, clock=Clock())
    for name in ("a", "b"):
        store.put(name, {"id": name}, [Message("user", name)])
    assert store.conversation("a")[0].text == "a"  # "a" is now the most recently used
    store.put("c", {"id": "c"}, [])
    assert len(store) == 2 and store.body("a") == {"id": "a"} and store.body("c") == {"id": "c"}
    with pytest.raises(ApiError) as missing:
        store.conversation("b")
    assert missing.value.status == 404 and "the last 2" in str(missing.value)


def test_a_response_older_than_the_ttl_is_gone_and_size_zero_keeps_nothing() -> None:
    clock = Clock()
    store = ResponseStore(size=10, ttl=60, clock=clock)
    store.put("old", {"id": "old"}, [])
    clock.now = 61
    with pytest.raises(ApiError, match="60 seconds"):
        store.body("old")
    assert len(store) == 0
    nothing = ResponseStore(size=0)
    nothing.put("x", {"id": "x"}, [])
    assert len(nothing) == 0 and nothing.conversation(None) == []
