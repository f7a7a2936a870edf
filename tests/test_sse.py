"""The SSE decoder botkit reads model streams with (botkit/llm/sse.py), on the byte shapes a
server or a proxy can produce: events split anywhere across reads, CRLF, comments, multi-line data."""

from __future__ import annotations

from botkit.llm.sse import DONE, SSEDecoder

STREAM = (
    b": a comment line\n"
    b'data: {"a": 1}\n\n'
    b'event: message\r\nid: 7\r\ndata: {"b":\r\ndata: 2}\r\n\r\n'
    b'data:{"c": 3}\n\n'
    b"data: [DONE]\n\n"
)
EVENTS = [b'{"a": 1}', b'{"b":\n2}', b'{"c": 3}', DONE]


def test_one_read_gives_every_event() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(STREAM) + decoder.finish() == EVENTS


def test_events_split_at_every_byte_are_the_same_events() -> None:
    decoder = SSEDecoder()
    out = [event for i in range(len(STREAM)) for event in decoder.feed(STREAM[i : i + 1])]
    assert out + decoder.finish() == EVENTS


def test_an_event_without_its_blank_line_at_the_end_is_kept() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b'data: {"x": 1}') == []
    assert decoder.finish() == [b'{"x": 1}']
    assert decoder.finish() == []
