"""The pure SSE and NDJSON decoders: any split of a valid stream decodes the same."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from abstractcore import ResponseFormatError
from abstractcore.transport.ndjson import NDJSONDecoder, parse_json_data
from abstractcore.transport.sse import SSEDecoder, SSEEvent


def decode_all(chunks: list[bytes]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    return events + decoder.close()


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, last = [], 0
    for p in points:
        pieces.append(data[last:p])
        last = p
    pieces.append(data[last:])
    return pieces


def test_whatwg_rules() -> None:
    stream = (
        b": a comment\n"
        b"event: delta\r\n"
        b"data: first line\r\n"
        b"data:second line\r\n"
        b"id: 7\r\n"
        b"retry: 1500\r\n"
        b"\r\n"
        b"data: \xc3\xa9t\xc3\xa9\r"
        b"\r"
        b"data\n"
        b"\n"
        b"event: ignored-without-data\n\n"
        b"data: [DONE]\n\n"
        b"data: trailing event without blank line is dropped"
    )
    assert decode_all([stream]) == [
        SSEEvent("first line\nsecond line", "delta", "7", 1500),
        SSEEvent("été", "message", "7", None),
        SSEEvent("", "message", "7", None),
        SSEEvent("[DONE]", "message", "7", None),
    ]


def test_crlf_split_between_chunks_is_one_line_end() -> None:
    assert decode_all([b"data: a\r", b"\n", b"\r", b"\ndata: b\n\n"]) == [SSEEvent("a"), SSEEvent("b")]


def test_bom_is_stripped_only_at_start() -> None:
    assert decode_all([b"\xef\xbb\xbfdata: x\n\n"]) == [SSEEvent("x")]


def test_invalid_utf8_raises_response_format_error() -> None:
    with pytest.raises(ResponseFormatError):
        decode_all([b"data: \xff\xfe\n\n"])


def test_stream_ending_inside_a_character_raises() -> None:
    with pytest.raises(ResponseFormatError):
        decode_all([b"data: \xc3"])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)
field_text = st.text(
    alphabet=st.characters(blacklist_characters="\r\n\x00", blacklist_categories=("Cs",)), max_size=30
)


@st.composite
def sse_streams(draw: st.DrawFn) -> tuple[bytes, list[SSEEvent]]:
    events = draw(
        st.lists(
            st.tuples(
                st.lists(field_text, min_size=1, max_size=3),
                st.sampled_from(["", "message", "delta", "error"]),
                st.sampled_from(["\n", "\r\n", "\r"]),
            ),
            max_size=6,
        )
    )
    out, expected = [], []
    for lines, name, eol in events:
        if draw(st.booleans()):
            out.append(f": keep-alive{eol}")
        if name:
            out.append(f"event: {name}{eol}")
        for line in lines:
            out.append(f"data: {line}{eol}")
        out.append(eol)
        expected.append(SSEEvent("\n".join(lines), name or "message"))
    return "".join(out).encode(), expected


@settings(max_examples=300, deadline=None)
@given(sse_streams(), st.lists(st.integers(min_value=0), max_size=12))
def test_any_split_decodes_to_the_same_events(stream: tuple[bytes, list[SSEEvent]], cuts: list[int]) -> None:
    data, expected = stream
    whole = decode_all([data])
    assert whole == expected
    assert decode_all(split_at(data, cuts)) == whole


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.lists(st.integers(min_value=0), max_size=6))
def test_garbage_raises_only_response_format_error(data: bytes, cuts: list[int]) -> None:
    try:
        for event in decode_all(split_at(data, cuts)):
            parse_json_data(event.data)
    except ResponseFormatError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.lists(json_values, max_size=8), st.lists(st.integers(min_value=0), max_size=10))
def test_ndjson_any_split(values: list[object], cuts: list[int]) -> None:
    data = "".join(json.dumps(v) + "\n" for v in values).encode()
    decoder = NDJSONDecoder()
    out: list[object] = []
    for piece in split_at(data, cuts):
        out += decoder.feed(piece)
    out += decoder.close()
    assert out == values


def test_ndjson_last_line_without_newline_and_bad_line() -> None:
    decoder = NDJSONDecoder()
    assert decoder.feed(b'{"a": 1}\n{"b"') == [{"a": 1}]
    assert decoder.feed(b": 2}") == []
    assert decoder.close() == [{"b": 2}]
    with pytest.raises(ResponseFormatError):
        NDJSONDecoder().feed(b"<html>oops</html>\n")


def data_all(chunks: list[bytes]) -> list[str]:
    decoder = SSEDecoder()
    out: list[str] = []
    for chunk in chunks:
        out += decoder.feed_data(chunk)
    return out + [e.data for e in decoder.close()]


@settings(max_examples=300, deadline=None)
@given(sse_streams(), st.lists(st.integers(min_value=0), max_size=12))
def test_the_data_fast_path_gives_what_the_full_parser_gives(
    stream: tuple[bytes, list[SSEEvent]], cuts: list[int]
) -> None:
    data, expected = stream
    assert data_all(split_at(data, cuts)) == [e.data for e in expected]


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_fast_json_is_json_loads(value: object) -> None:
    from abstractcore.transport.ndjson import fast_json

    text = json.dumps(value)
    assert fast_json(text) == value
    assert fast_json(f" {text} ") == value  # surrounding whitespace goes the slow way
    with pytest.raises(ResponseFormatError):
        fast_json(text + " trailing")
