"""The stand-in's completion responses, byte for byte on the wire, against the stand-in before
its per-chunk work was cut (``botkit/llm/standin.py`` at main 6fc7cbb, 2026-12-04).

The stand-in is deterministic but for a reply's id (``chatcmpl-`` + 32 random hex digits), its
``created`` second and the ``Date`` header (and ``Server`` names the Python and aiohttp versions),
so those are replaced by fixed values before
the comparison; everything else a client can see must be what the old code sent: the status line,
every header and its order, the HTTP/1.1 chunk framing (one chunk per SSE frame), every
``data:`` frame's JSON with its key order and spacing, the usage frame and ``data: [DONE]``.

``tests/data/standin_frames.json`` was written by the old code::

    git -C /work/main archive 6fc7cbb | tar -x -C /tmp/standin-base
    PYTHONPATH=/tmp/standin-base python tests/test_standin_frames.py tests/data/standin_frames.json

Rewrite it only when the wire format is meant to change (and say so in the commit).
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from botkit.llm.standin import Standin

GOLDEN = Path(__file__).resolve().parent / "data" / "standin_frames.json"
MATH = [{"role": "user", "content": "What is 17*23?"}]
BENCH_LIKE = [{"role": "user", "content": "Q7 please summarise: " + " ".join(f"w{i}" for i in range(7, 47))}]
UNICODE = [{"role": "user", "content": 'Grüße, "Welt" \\ 😀 — what is (2 + 3) * 4 / 8?\tok'}]
USAGE = {"include_usage": True}

# name -> (stand-in knobs, scripted reply or failure, request body without "model")
CASES: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = {
    "math-1-usage": ({}, {}, {"messages": MATH, "stream": True, "stream_options": USAGE}),
    "bench-8-usage": (
        {"tokens_per_chunk": 8},
        {},
        {"messages": BENCH_LIKE, "stream": True, "stream_options": USAGE, "max_tokens": 2048},
    ),
    "bench-8-continuous": (
        {"tokens_per_chunk": 8},
        {},
        {
            "messages": BENCH_LIKE,
            "stream": True,
            "stream_options": {"include_usage": True, "continuous_usage_stats": True},
        },
    ),
    "math-4-reasoning-content": (
        {"tokens_per_chunk": 4, "reasoning_field": "reasoning_content"},
        {},
        {"messages": MATH, "stream": True},
    ),
    "unicode-3-think-tags": (
        {"tokens_per_chunk": 3, "reasoning_field": None},
        {},
        {"messages": UNICODE, "stream": True, "stream_options": USAGE},
    ),
    "unicode-5-omit-open-think": (
        {"tokens_per_chunk": 5, "omit_open_think": True},
        {},
        {"messages": UNICODE, "stream": True, "stream_options": USAGE},
    ),
    "math-2-think-tags-omit-open": (
        {"tokens_per_chunk": 2, "reasoning_field": None, "omit_open_think": True},
        {},
        {"messages": MATH, "stream": True},
    ),
    "bench-8-length": (
        {"tokens_per_chunk": 8},
        {},
        {"messages": BENCH_LIKE, "stream": True, "stream_options": USAGE, "max_tokens": 37},
    ),
    "bench-7-length-in-answer": (
        {"tokens_per_chunk": 7},
        {},
        {"messages": BENCH_LIKE, "stream": True, "stream_options": USAGE, "max_completion_tokens": 75},
    ),
    "math-8-empty": (
        {"tokens_per_chunk": 8},
        {"failure": "empty"},
        {"messages": MATH, "stream": True, "stream_options": USAGE},
    ),
    "math-1-empty-think-tags": (
        {"reasoning_field": None},
        {"failure": "empty"},
        {"messages": MATH, "stream": True},
    ),
    "bench-8-cut": (
        {"tokens_per_chunk": 8},
        {"failure": "cut"},
        {"messages": BENCH_LIKE, "stream": True, "stream_options": USAGE},
    ),
    "scripted-no-reasoning": (
        {"tokens_per_chunk": 2},
        {"answer": "Plain answer, no think tags.", "reasoning": None},
        {"messages": MATH, "stream": True, "stream_options": USAGE},
    ),
    "scripted-no-reasoning-think-tags": (
        {"tokens_per_chunk": 3, "reasoning_field": None},
        {"answer": "Plain answer, no think tags.", "reasoning": None},
        {"messages": MATH, "stream": True, "stream_options": USAGE},
    ),
    "scripted-one-token-chunks": (
        {},
        {"answer": "x", "reasoning": "r"},
        {"messages": MATH, "stream": True, "stream_options": USAGE},
    ),
    "prefilled-think": (
        {"tokens_per_chunk": 6, "reasoning_field": None},
        {},
        {
            "messages": [*MATH, {"role": "assistant", "content": "<think>\n"}],
            "stream": True,
            "continue_final_message": True,
            "add_generation_prompt": False,
        },
    ),
    "non-streaming": ({"tokens_per_chunk": 8}, {}, {"messages": MATH}),
    "non-streaming-think-tags": ({"reasoning_field": None}, {}, {"messages": UNICODE, "max_tokens": 20}),
}

_ID = re.compile(rb"chatcmpl-[0-9a-f]{32}")
_CREATED = re.compile(rb'"created": \d+')
_DATE = re.compile(rb"\r\nDate: [^\r]*\r\n")
_SERVER = re.compile(rb"\r\nServer: [^\r]*\r\n")  # Python's and aiohttp's versions


def normalise(raw: bytes) -> str:
    """The response with its id, ``created`` and ``Date`` fixed: what must not change."""
    ids = set(_ID.findall(raw))
    assert len(ids) <= 1, f"one id per response, got {ids}"
    raw = _CREATED.sub(b'"created": 0', _ID.sub(b"chatcmpl-ID", raw))
    raw = _SERVER.sub(b"\r\nServer: SERVER\r\n", _DATE.sub(b"\r\nDate: DATE\r\n", raw))
    return raw.decode("utf-8")


async def capture(name: str) -> str:
    """One case's whole response as the client's socket received it, until the server closed it."""
    knobs, script, body = CASES[name]
    async with Standin(**knobs) as server:
        if "failure" in script:
            server.inject_failure(script["failure"])
        elif script:
            server.script_reply(script["answer"], script["reasoning"])
        payload = json.dumps({"model": server.model_name, **body}).encode()
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(payload), payload)
        )
        await writer.drain()
        async with asyncio.timeout(10):
            raw = await reader.read(-1)
        writer.close()
        await server.wait_for(lambda: server.running == 0)
    return normalise(raw)


@pytest.mark.parametrize("name", sorted(CASES))
async def test_the_wire_bytes_are_the_old_stand_ins(name: str) -> None:
    expected = json.loads(GOLDEN.read_text())[name]
    assert await capture(name) == expected


def test_every_case_has_its_old_bytes() -> None:
    assert sorted(json.loads(GOLDEN.read_text())) == sorted(CASES)


async def _capture_all() -> dict[str, str]:
    return {name: await capture(name) for name in sorted(CASES)}


if __name__ == "__main__":
    Path(sys.argv[1]).write_text(json.dumps(asyncio.run(_capture_all()), indent=1) + "\n")
