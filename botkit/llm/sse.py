"""Server-sent events from an OpenAI-compatible streaming response, as plain dicts.

Why not the openai SDK's stream: it builds a pydantic ``ChatCompletionChunk`` per SSE event and
its decoder awaits once per line. At one token per chunk and hundreds of streams that was the
largest item of botkit's CPU profile (issue 11: 21 % pydantic, 8 % SSE decoding, more than the
rest of botkit together). Here one network read is split into events at once and each event's
``data`` is parsed with the standard library's ``json``: one await per read, no objects beyond the
dicts the JSON holds. (Not orjson: it rejects lone surrogates, which ``json.dumps`` writes as
``\\ud800`` escapes, so one odd token would end a stream; and installing it changes discord.py,
which picks orjson up by itself for the gateway, with the same failure on bad input.)

The SSE rules kept (WHATWG "event stream interpretation"): lines end in ``\\n``, ``\\r\\n`` or
``\\r`` is tolerated as ``\\r\\n``; an event ends at a blank line; several ``data:`` lines of one
event are joined with ``\\n``; one space after the colon is dropped; comments (``:``) and other
fields (``event:``, ``id:``, ``retry:``) are ignored, as vLLM sends none that matter. ``[DONE]``
ends the stream, as in OpenAI's protocol.
"""

from __future__ import annotations

from json import loads

__all__ = ["DONE", "SSEDecoder", "loads"]

DONE = b"[DONE]"


class SSEDecoder:
    """Incremental: :meth:`feed` bytes as they arrive, get the complete events' data back."""

    def __init__(self) -> None:
        self._tail = b""  # an incomplete line
        self._data: list[bytes] = []  # data lines of the event being read

    def feed(self, chunk: bytes) -> list[bytes]:
        """The ``data`` of every event completed by ``chunk``, in order."""
        if self._tail:
            chunk = self._tail + chunk
        lines = chunk.split(b"\n")
        self._tail = lines.pop()
        out: list[bytes] = []
        data = self._data
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:  # blank line: the event is complete
                if data:
                    out.append(data[0] if len(data) == 1 else b"\n".join(data))
                    data.clear()
            elif line.startswith(b"data:"):
                value = line[5:]
                data.append(value[1:] if value.startswith(b" ") else value)
        return out

    def finish(self) -> list[bytes]:
        """At the end of the body: an event the server did not end with a blank line."""
        out = self.feed(b"\n\n") if self._tail or self._data else []
        self._tail = b""
        return out
