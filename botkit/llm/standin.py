"""A vLLM stand-in: the part of vLLM's OpenAI-compatible server that botkit uses, without a GPU.

botkit's tests, benchmarks and GPU-less default run against this server instead of
``vllm serve deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B``. It speaks the real wire protocol, so
the real ``openai`` client (and anything else that talks to vLLM) works against it unchanged.
It is deterministic: the same request always gets the same reply.

Routes
------
- ``GET /v1/models``: the served model (``model_name``) with its ``max_model_len``.
- ``POST /v1/chat/completions``: streaming (SSE ``data: {...}`` chunks shaped like vLLM's:
  ``role`` on the first delta, reasoning in ``delta.reasoning`` / ``delta.reasoning_content``
  or as ``<think>`` tags in ``content``, ``finish_reason`` on the last token chunk, a usage
  chunk with ``stream_options.include_usage``, then ``data: [DONE]``) and non-streaming.
  Unknown model -> 404, prompt + ``max_tokens`` over ``max_model_len`` -> 400, both with an
  OpenAI error object. ``max_tokens`` truncates the reply with ``finish_reason: "length"``.
- ``POST /tokenize``: ``{"prompt": ...}`` or ``{"messages": [...]}`` ->
  ``{"count", "max_model_len", "tokens"}``. Messages are rendered with the DeepSeek-R1 chat
  template (``<｜begin▁of▁sentence｜><｜User｜>...<｜Assistant｜>``) and counted by a simple
  deterministic regex tokenizer (words, punctuation, single whitespace, special tokens).
  The counts are not Qwen's, but they are stable and grow with the text the same way.
- ``GET /health`` (503 until ready), ``GET /ping``, ``GET /version``.
- ``GET /metrics``: Prometheus text with vLLM's names and a ``model_name`` label:
  ``vllm:num_requests_running``, ``vllm:num_requests_waiting``, ``vllm:kv_cache_usage_perc``,
  ``vllm:prompt_tokens_total``, ``vllm:generation_tokens_total``.
- ``GET /standin/requests`` (the stand-in's own, not vLLM's): what :attr:`Standin.hits` and
  :attr:`Standin.connections` hold, as JSON ``{"hits": {...}, "connections": [[...], ...]}``,
  for tests of a stand-in running in another process (as the supervised ``vllm``).
- ``GET /standin/streams`` (the stand-in's own): every streamed reply that ended, in the order
  they ended, as JSON ``[{"asked", "first_token_at", "last_token_at", "tokens"}, ...]``:
  ``asked`` is the start of the last user message (2,000 characters), the two times are
  ``time.monotonic()`` when the first and the last token's chunk was written (one clock for
  every process on the host, so a benchmark can set them beside a fake platform's call times:
  how long after the model's last token the user saw the final text).

Replies
-------
The reply to a request is reasoning (a few sentences that quote the last user message) and an
answer. If the last user message contains arithmetic (numbers, ``+ - * / **``, parentheses;
parsed with :mod:`ast`, never evaluated as code) the answer lists the steps and ends with
``\\boxed{value}``, e.g. "What is 17*23?" -> ``\\boxed{391}``. Otherwise the answer starts with
``You asked: "<the message>"`` so a test can tell which question was answered.
The generated text is ``<think>\\n{reasoning}\\n</think>\\n\\n{answer}``; with
``omit_open_think`` the opening ``<think>\\n`` is left out (the newer DeepSeek template puts it
into the prompt), and so it is when the request prefills it (a final assistant message
``<think>\\n`` with ``continue_final_message: true``, vLLM's way to continue a message). With a ``reasoning_field`` the text is split like
vLLM's ``deepseek_r1`` parser does; with ``reasoning_field=None`` it goes into ``content`` as is.

Knobs (constructor arguments and mutable attributes, read at the start of each request)
---------------------------------------------------------------------------------------
``model_name``, ``max_model_len`` (4096), ``tokens_per_second`` (0 = as fast as possible),
``time_to_first_token`` (seconds), ``tokens_per_chunk`` (vLLM's ``--stream-interval``),
``reasoning_field`` (``"reasoning"``, ``"reasoning_content"`` or None), ``omit_open_think``,
``max_num_seqs`` (more concurrent requests wait, visible in ``num_requests_waiting``),
``api_key`` (like ``vllm serve --api-key``: ``/v1`` routes then need the bearer token),
``startup_delay`` (``/health`` and completions answer 503 for that long after start).

Scripting
---------
- :meth:`Standin.script_reply` queues a forced reply (answer and reasoning) for a coming request.
- :meth:`Standin.inject_failure` queues failures, consumed one per completion request, before
  scripted replies (a failed request does not use up a scripted reply): ``"http500"`` (500 with
  an OpenAI error object), ``"cut"`` (half the tokens, then the connection is closed without
  ``[DONE]``), ``"hang"`` (nothing is sent until the client disconnects), ``"empty"`` (reasoning,
  then the answer ``"\\n\\n"``: the model's empty-answer trap).
- :attr:`Standin.requests` records every JSON body received on ``/v1/chat/completions``, as
  sent; :attr:`Standin.disconnects` counts requests whose client went away before the end
  (generation stops then, as in vLLM); :attr:`Standin.running` / :attr:`Standin.waiting` are
  the in-flight counts.
- :attr:`Standin.hits` counts the requests received per route (``"GET /health"``), and
  :attr:`Standin.connections` lists, per client connection (keyed by its address), the routes it
  carried in order: so a test can tell how often a server was polled, and whether two callers
  shared one connection pool.

Use in tests::

    async with Standin(tokens_per_chunk=8) as server:
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="EMPTY")

Command line (also accepts ``vllm serve``-style arguments, so a supervisor can run it in place
of vLLM)::

    python -m botkit.llm.standin [serve] [MODEL] [--host H] [--port P]
        [--tokens-per-second N] [--ttft S] [--tokens-per-chunk N | --stream-interval N]
        [--reasoning-field reasoning|reasoning_content|none] [--reasoning-parser X]
        [--served-model-name NAME] [--max-model-len N] [--omit-open-think] [--api-key KEY]
        [--dtype, --gpu-memory-utilization, --tensor-parallel-size, --api-server-count,
         --load-format and any other --flag value: accepted and ignored]

It prints ``Starting vLLM API server on http://HOST:PORT`` once listening (with the real port
when ``--port 0``) and exits 0 on SIGTERM/SIGINT. ``--reasoning-field`` defaults to
``reasoning`` whether or not ``--reasoning-parser`` is given; pass ``none`` to get ``<think>``
tags in content like vLLM without a parser. Environment knobs for supervisor tests:
``BOTKIT_STANDIN_EXIT_AT_START=<code>`` prints one line and exits with that code;
``BOTKIT_STANDIN_STARTUP_DELAY=<seconds>`` keeps ``/health`` at 503 for that long, printing what
vLLM prints while it starts (loading weights, torch.compile, CUDA graph capture: the lines
:mod:`botkit.llm.startup_phase` reads) spread over the delay, and the ``Starting vLLM API server``
line at its end.
``BOTKIT_STANDIN_FORK_CHILDREN=<N>`` forks N worker processes the way ``vllm serve`` does (its
EngineCore and API servers): in its process group, holding its stdout, sleeping; they are stopped
with it on SIGTERM/SIGINT but outlive a SIGKILL of the main process, as vLLM's do. Their pids are
printed as ``Worker processes: PID PID ...``.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import contextlib
import json
import math
import os
import re
import signal
import sys
import time
import uuid
import zlib
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

from aiohttp import web

from botkit.localserver import LocalServer

__all__ = ["DEFAULT_MODEL", "FailureKind", "Standin", "forked_workers", "main", "render_chat", "tokenize"]

DEFAULT_MODEL = "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"
FailureKind = Literal["http500", "cut", "hang", "empty"]
ReasoningField = Literal["reasoning", "reasoning_content"]

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
USER = "<｜User｜>"
ASSISTANT = "<｜Assistant｜>"
_VOCAB_SIZE = 151_936  # Qwen2's, so token ids look plausible
_TOKEN_RE = re.compile(r"<｜[^｜]*｜>|</?think>|[ \t]*\w+|[ \t]*[^\w\s]|\s")
_FAILURES: tuple[FailureKind, ...] = ("http500", "cut", "hang", "empty")
_WORKERS_LINE = "Worker processes: "


# -- tokenizer and chat template ------------------------------------------------------------


def tokenize(text: str) -> list[str]:
    """Split text into stand-in tokens; joining them gives the text back exactly."""
    return _TOKEN_RE.findall(text)


def _token_id(token: str) -> int:
    return zlib.crc32(token.encode()) % _VOCAB_SIZE


def _text_of(content: Any) -> str:
    """Message content as text (plain string, or OpenAI content parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def _last_user_text(body: dict[str, Any]) -> str:
    """The text of a request's last user message ("" without one)."""
    messages = body.get("messages") or []
    return next((_text_of(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")


def render_chat(
    messages: Sequence[dict[str, Any]],
    *,
    add_generation_prompt: bool = True,
    omit_open_think: bool = False,
    continue_final_message: bool = False,
) -> str:
    """Render messages with DeepSeek-R1-Distill's chat template (system text goes first, bare).

    Earlier assistant turns keep only the text after ``</think>``, as the real template does.
    ``continue_final_message`` (vLLM's prefill option) leaves a final assistant message open,
    e.g. ``<｜Assistant｜><think>\n``, for the model to continue.
    """
    system = "".join(_text_of(m.get("content")) for m in messages if m.get("role") == "system")
    parts = [BOS, system]
    for number, message in enumerate(messages, 1):
        role, text = message.get("role"), _text_of(message.get("content"))
        if role == "user":
            parts.append(USER + text)
        elif role == "assistant" and continue_final_message and number == len(messages):
            return "".join([*parts, ASSISTANT + text])
        elif role == "assistant":
            parts.append(ASSISTANT + text.split("</think>")[-1] + EOS)
    if add_generation_prompt:
        parts.append(ASSISTANT + ("<think>\n" if omit_open_think else ""))
    return "".join(parts)


# -- deterministic replies ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Reply:
    reasoning: str | None  # None: the model did not reason, no <think> tags at all
    answer: str


_EXPR_RUN = re.compile(r"[\d.+\-*/() ]+")
_DATES = re.compile(r"\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}:\d{2}(:\d{2})?\b")
_DIGIT, _OPERATOR = re.compile(r"\d"), re.compile(r"[-+*/]")
_OPS: dict[type[ast.operator], str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "\\times",
    ast.Div: "\\div",
    ast.Pow: "^",
}


def _fmt(value: Fraction) -> str:
    """An exact value as R1 would box it: integer, terminating decimal, or \\frac."""
    if value.denominator == 1:
        return str(value.numerator)
    d = value.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    if d == 1 and value.denominator <= 10**12:
        return f"{float(value):.12f}".rstrip("0")
    sign = "-" if value < 0 else ""
    return f"{sign}\\frac{{{abs(value.numerator)}}}{{{value.denominator}}}"


def _evaluate(node: ast.expr, steps: list[str]) -> Fraction:
    """Evaluate a restricted arithmetic AST exactly, recording each binary step."""
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return Fraction(str(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _evaluate(node.operand, steps)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left, right = _evaluate(node.left, steps), _evaluate(node.right, steps)
        if isinstance(node.op, ast.Add):
            value = left + right
        elif isinstance(node.op, ast.Sub):
            value = left - right
        elif isinstance(node.op, ast.Mult):
            value = left * right
        elif isinstance(node.op, ast.Div):
            value = left / right  # ZeroDivisionError -> not an expression we answer
        else:
            if right.denominator != 1 or abs(right) > 64 or abs(left.numerator).bit_length() > 64:
                raise ValueError("exponent too large or not an integer")
            value = left ** int(right)
        steps.append(f"{_fmt(left)} {_OPS[type(node.op)]} {_fmt(right)} = {_fmt(value)}")
        return value
    raise ValueError("not plain arithmetic")


def find_arithmetic(text: str) -> tuple[str, Fraction, list[str]] | None:
    """The longest arithmetic expression in ``text``: (source, exact value, steps), or None.

    Dates and times (a persona may render ``today`` into the prompt) are not arithmetic.
    """
    text = _DATES.sub(" ", text)
    candidates = sorted((m.group().strip() for m in _EXPR_RUN.finditer(text)), key=len, reverse=True)
    for source in candidates:
        source = source.rstrip(".")
        if not _OPERATOR.search(source) or not _DIGIT.search(source):
            continue
        try:
            tree = ast.parse(source, mode="eval")
            steps: list[str] = []
            value = _evaluate(tree.body, steps)
        except (SyntaxError, ValueError, ZeroDivisionError, OverflowError):
            continue
        if steps:
            return source, value, steps
    return None


def make_reply(question: str) -> _Reply:
    """The deterministic reply to the last user message."""
    one_line = " ".join(question.split())
    short = one_line if len(one_line) <= 200 else one_line[:199] + "…"
    found = find_arithmetic(question)
    if found is not None:
        source, value, steps = found
        result = _fmt(value)
        reasoning = (
            f'Okay, so the question is "{short}". I need to compute {source}. '
            "Let me go through it one operation at a time.\n\n"
            + "\n".join(steps)
            + f"\n\nLet me double-check that. Yes, {source} = {result}."
        )
        numbered = "\n".join(f"{i}. ${step}$" for i, step in enumerate(steps, 1))
        answer = f"To compute ${source}$:\n\n{numbered}\n\nThe final answer is $\\boxed{{{result}}}$."
        return _Reply(reasoning, answer)
    reasoning = (
        f'Okay, the user is asking: "{short}". Let me think about what they need. '
        "I should answer clearly and briefly, and address exactly this question."
    )
    answer = (
        f'You asked: "{question.strip()}"\n\nThis is a deterministic reply from the botkit vLLM stand-in.'
    )
    return _Reply(reasoning, answer)


def _split_like_parser(tokens: Sequence[str], in_answer: bool) -> tuple[str, str, bool]:
    """vLLM deepseek_r1 parser over some tokens: (reasoning, content, in_answer afterwards)."""
    reasoning: list[str] = []
    content: list[str] = []
    for token in tokens:
        if in_answer:
            content.append(token)
        elif token == "</think>":
            in_answer = True
        elif token != "<think>":
            reasoning.append(token)
    return "".join(reasoning), "".join(content), in_answer


# -- the server -----------------------------------------------------------------------------


def _error(status: int, message: str, err_type: str) -> web.Response:
    """An OpenAI-style error body, as vLLM sends it."""
    body = {"error": {"message": message, "type": err_type, "param": None, "code": status}}
    return web.json_response(body, status=status)


@dataclass
class _Job:
    """One admitted completion request."""

    body: dict[str, Any]
    model: str
    created: int
    request_id: str
    prompt_tokens: int
    tokens: list[str]
    finish_reason: str
    failure: FailureKind | None
    reasoning_field: ReasoningField | None
    tokens_per_chunk: int
    tokens_per_second: float
    time_to_first_token: float
    generated: int = 0


class Standin(LocalServer):
    """The vLLM stand-in server; see the module docstring for routes, knobs and scripting."""

    def __init__(
        self,
        *,
        model_name: str = DEFAULT_MODEL,
        max_model_len: int = 4096,
        tokens_per_second: float = 0.0,
        time_to_first_token: float = 0.0,
        tokens_per_chunk: int = 1,
        reasoning_field: ReasoningField | None = "reasoning",
        omit_open_think: bool = False,
        max_num_seqs: int = 256,
        api_key: str | None = None,
        startup_delay: float = 0.0,
    ) -> None:
        self.model_name = model_name
        self.max_model_len = max_model_len
        self.tokens_per_second = tokens_per_second
        self.time_to_first_token = time_to_first_token
        self.tokens_per_chunk = tokens_per_chunk
        self.reasoning_field: ReasoningField | None = reasoning_field
        self.omit_open_think = omit_open_think
        self.max_num_seqs = max_num_seqs
        self.api_key = api_key
        self.startup_delay = startup_delay
        self.requests: list[dict[str, Any]] = []
        self.streams: deque[dict[str, Any]] = deque(maxlen=100_000)  # GET /standin/streams
        self.hits: Counter[str] = Counter()
        self.connections: dict[str, list[str]] = {}
        self.disconnects = 0
        self.running = 0
        self.waiting = 0
        self.prompt_tokens_total = 0
        self.generation_tokens_total = 0
        self._inflight_tokens = 0
        self._replies: deque[_Reply] = deque()
        self._failures: deque[FailureKind] = deque()
        self._slots: asyncio.Condition | None = None
        self._changed = asyncio.Event()
        self._host = "127.0.0.1"
        self._ready_at = 0.0
        self._stopping = False

    # -- scripting ---------------------------------------------------------------------------

    def script_reply(self, answer: str, reasoning: str | None = "Let me think about this.") -> None:
        """Queue a forced reply; each completion request without an injected failure takes one.

        ``reasoning=None`` makes a reply without any ``<think>`` tags (a model that skipped
        reasoning); like vLLM's parser, a reasoning field then carries the whole text.
        """
        self._replies.append(_Reply(reasoning, answer))

    def inject_failure(self, kind: FailureKind, count: int = 1) -> None:
        """Make the next ``count`` completion requests fail in the given way."""
        if kind not in _FAILURES:
            raise ValueError(f"unknown failure kind {kind!r}; expected one of {_FAILURES}")
        self._failures.extend([kind] * count)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``predicate()`` holds, re-checked whenever a request starts, waits or ends.

        Tests use it to see what the server saw, e.g.
        ``await server.wait_for(lambda: server.running == 0 and server.disconnects == 1)``;
        raises TimeoutError after ``timeout`` seconds.
        """
        async with asyncio.timeout(timeout):
            while not predicate():
                await self._changed.wait()

    def _signal_change(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on host:port (port 0 picks a free one, see :attr:`port`)."""
        if self._runner is not None:
            raise RuntimeError("Standin already started")
        self._stopping = False
        self._slots = asyncio.Condition()
        app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[self._record])
        app.router.add_get("/standin/requests", self._recorded)
        app.router.add_get("/standin/streams", self._streamed)
        app.router.add_get("/health", self._health)
        app.router.add_get("/ping", self._health)
        app.router.add_get("/version", self._version)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/tokenize", self._tokenize)
        # handler_cancellation: a client disconnect cancels its handler, as vLLM aborts the request.
        await self._listen(app, host, port, handler_cancellation=True, shutdown_timeout=1.0)
        self._host = host
        self._ready_at = time.monotonic() + self.startup_delay

    async def stop(self) -> None:
        """Stop listening and end in-flight requests."""
        if self._runner is None:
            return
        self._stopping = True
        await self._close()

    @property
    def root_url(self) -> str:
        """``http://HOST:PORT``: where ``/health``, ``/metrics`` and ``/tokenize`` live."""
        host = "127.0.0.1" if self._host in ("0.0.0.0", "") else self._host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT/v1``: what an OpenAI client takes as ``base_url``."""
        return self.root_url + "/v1"

    @property
    def ready(self) -> bool:
        """False during ``startup_delay`` after start."""
        return self._runner is not None and time.monotonic() >= self._ready_at

    # -- small routes ------------------------------------------------------------------------

    @web.middleware
    async def _record(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Count the request per route and note which client connection carried it."""
        if not request.path.startswith("/standin/"):
            route = f"{request.method} {request.path}"
            self.hits[route] += 1
            peer = request.transport.get_extra_info("peername") if request.transport else None
            self.connections.setdefault(str(peer), []).append(route)
            self._signal_change()
        return await handler(request)

    async def _recorded(self, request: web.Request) -> web.Response:
        return web.json_response({"hits": dict(self.hits), "connections": list(self.connections.values())})

    async def _streamed(self, request: web.Request) -> web.Response:
        return web.json_response(list(self.streams))

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(status=200 if self.ready else 503)

    async def _version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": "0.0.0+botkit.standin"})

    async def _models(self, request: web.Request) -> web.Response:
        if (denied := self._check_auth(request)) is not None:
            return denied
        model = {
            "id": self.model_name,
            "object": "model",
            "created": int(time.time()),
            "owned_by": "vllm",
            "root": self.model_name,
            "parent": None,
            "max_model_len": self.max_model_len,
        }
        return web.json_response({"object": "list", "data": [model]})

    async def _metrics(self, request: web.Request) -> web.Response:
        labels = f'engine="0",model_name="{self.model_name}"'
        capacity = 16 * self.max_model_len
        metrics = [
            ("num_requests_running", "gauge", "Number of requests in model execution batches.", self.running),
            ("num_requests_waiting", "gauge", "Number of requests waiting to be processed.", self.waiting),
            (
                "kv_cache_usage_perc",
                "gauge",
                "KV-cache usage. 1 means 100 percent usage.",
                min(1.0, self._inflight_tokens / capacity),
            ),
            (
                "prompt_tokens_total",
                "counter",
                "Number of prefill tokens processed.",
                self.prompt_tokens_total,
            ),
            (
                "generation_tokens_total",
                "counter",
                "Number of generation tokens processed.",
                self.generation_tokens_total,
            ),
        ]
        lines: list[str] = []
        for name, kind, help_text, value in metrics:
            family = name.removesuffix("_total") if kind == "counter" else name
            lines += [
                f"# HELP vllm:{family} {help_text}",
                f"# TYPE vllm:{family} {kind}",
                f"vllm:{name}{{{labels}}} {float(value)}",
            ]
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain", charset="utf-8")

    async def _tokenize(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        if isinstance(body, web.Response):
            return body
        if (wrong := self._check_model(body)) is not None:
            return wrong
        if isinstance(body.get("messages"), list):
            text = render_chat(
                body["messages"],
                add_generation_prompt=bool(body.get("add_generation_prompt", True)),
                omit_open_think=self.omit_open_think,
            )
        elif isinstance(body.get("prompt"), str):
            text = (BOS if body.get("add_special_tokens", True) else "") + body["prompt"]
        else:
            return _error(400, "Either 'prompt' or 'messages' is required.", "BadRequestError")
        ids = [_token_id(t) for t in tokenize(text)]
        return web.json_response(
            {"count": len(ids), "max_model_len": self.max_model_len, "tokens": ids, "token_strs": None}
        )

    # -- request checks ----------------------------------------------------------------------

    async def _json_body(self, request: web.Request) -> dict[str, Any] | web.Response:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "Request body is not valid JSON.", "BadRequestError")
        if not isinstance(body, dict):
            return _error(400, "Request body must be a JSON object.", "BadRequestError")
        return body

    def _check_auth(self, request: web.Request) -> web.Response | None:
        if self.api_key is None or request.headers.get("Authorization") == f"Bearer {self.api_key}":
            return None
        return web.json_response({"error": "Unauthorized"}, status=401)

    def _check_model(self, body: dict[str, Any]) -> web.Response | None:
        model = body.get("model")
        if model is None or model == self.model_name:
            return None
        return _error(404, f"The model `{model}` does not exist.", "NotFoundError")

    def _admit(self, body: dict[str, Any]) -> _Job | web.Response:
        """Validate a completion request like vLLM and decide its reply."""
        if (wrong := self._check_model(body)) is not None:
            return wrong
        messages = body.get("messages")
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages) or not messages:
            return _error(400, "'messages' must be a non-empty list of message objects.", "BadRequestError")
        prefill = bool(body.get("continue_final_message")) and messages[-1].get("role") == "assistant"
        prompt = render_chat(
            messages,
            add_generation_prompt=bool(body.get("add_generation_prompt", True)),
            omit_open_think=self.omit_open_think,
            continue_final_message=prefill,
        )
        prompt_tokens = len(tokenize(prompt))
        requested = body.get("max_completion_tokens") or body.get("max_tokens")
        limit = self.max_model_len
        if (too_long := _context_error(prompt_tokens, requested, limit)) is not None:
            return too_long
        max_tokens = requested if isinstance(requested, int) and requested > 0 else limit - prompt_tokens
        failure = self._failures.popleft() if self._failures else None
        tokens, finish_reason = self._reply_tokens(messages, prompt, failure, max_tokens)
        return _Job(
            body=body,
            model=self.model_name,
            created=int(time.time()),
            request_id=f"chatcmpl-{uuid.uuid4().hex}",
            prompt_tokens=prompt_tokens,
            tokens=tokens,
            finish_reason=finish_reason,
            failure=failure,
            reasoning_field=self.reasoning_field,
            tokens_per_chunk=max(1, int(self.tokens_per_chunk)),
            tokens_per_second=float(self.tokens_per_second),
            time_to_first_token=float(self.time_to_first_token),
        )

    def _reply_tokens(
        self, messages: list[dict[str, Any]], prompt: str, failure: str | None, max_tokens: int
    ) -> tuple[list[str], str]:
        """The reply's tokens (a scripted one, else the canned answer) and its finish reason."""
        if failure is None and self._replies:
            reply = self._replies.popleft()
        else:
            reply = make_reply(_last_user_text({"messages": messages}))
        answer = "" if failure == "empty" else reply.answer
        if reply.reasoning is None:
            tokens = tokenize(answer)
        else:
            # No opening tag when the prompt already ends with one (template or prefill).
            opening = "" if prompt.rstrip().endswith("<think>") else "<think>\n"
            tokens = tokenize(f"{opening}{reply.reasoning}\n</think>\n\n{answer}")
        finish_reason = "stop"
        if len(tokens) > max_tokens:
            tokens, finish_reason = tokens[:max_tokens], "length"
        if failure == "cut":
            tokens = tokens[: max(1, len(tokens) // 2)]
        return tokens, finish_reason

    # -- completions -------------------------------------------------------------------------

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        if (denied := self._check_auth(request)) is not None:
            return denied
        body = await self._json_body(request)
        if isinstance(body, web.Response):
            return body
        self.requests.append(body)
        if not self.ready:
            return _error(503, "The server is starting up.", "ServiceUnavailableError")
        job = self._admit(body)
        if isinstance(job, web.Response):
            return job
        if job.failure == "http500":
            return _error(
                500, "Injected failure (botkit stand-in): internal server error.", "InternalServerError"
            )
        try:
            await self._acquire_slot()
        except asyncio.CancelledError:
            self._count_disconnect()
            raise
        self.prompt_tokens_total += job.prompt_tokens
        self._inflight_tokens += job.prompt_tokens
        try:
            if job.failure == "hang":
                await asyncio.Event().wait()  # until the client disconnects (handler cancelled)
            if job.body.get("stream"):
                return await self._stream(request, job)
            return await self._complete(request, job)
        except asyncio.CancelledError:
            self._count_disconnect()
            raise
        except ConnectionError:
            self._count_disconnect()
            return web.Response(status=499)  # never reaches the gone client
        finally:
            self._inflight_tokens -= job.prompt_tokens + job.generated
            await self._release_slot()

    def _count_disconnect(self) -> None:
        if not self._stopping:
            self.disconnects += 1
            self._signal_change()

    async def _acquire_slot(self) -> None:
        assert self._slots is not None
        async with self._slots:
            self.waiting += 1
            self._signal_change()
            try:
                await self._slots.wait_for(lambda: self.running < self.max_num_seqs)
            finally:
                self.waiting -= 1
            self.running += 1
            self._signal_change()

    async def _release_slot(self) -> None:
        assert self._slots is not None
        self.running -= 1
        self._signal_change()
        async with self._slots:
            self._slots.notify()

    @staticmethod
    def _chunks(job: _Job) -> Iterator[tuple[int, str]]:
        """Per chunk of ``tokens_per_chunk`` tokens: how many it holds and its delta's JSON members,
        encoded ("" for one with nothing to show, counted but not sent: a ``</think>`` alone).

        The reasoning / content split is vLLM's ``deepseek_r1`` parser's (:func:`_split_like_parser`),
        made once for the whole reply (:func:`_parser_view`) instead of token by token per chunk.
        """
        size, tokens, field = job.tokens_per_chunk, job.tokens, job.reasoning_field
        shown, answer_from = _parser_view(tokens) if field is not None else (tokens, 0)
        last = ((len(tokens) - 1) // size) * size
        for start in range(0, len(tokens), size):
            end = start + size
            reasoning = "".join(shown[start : min(end, answer_from)]) if start < answer_from else ""
            content = "".join(shown[max(start, answer_from) : end]) if end > answer_from else ""
            members = f'"{field}": {_ENCODE(reasoning)}' if reasoning and field is not None else ""
            if content or (start == last and not members):
                members += (", " if members else "") + '"content": ' + _ENCODE(content)
            yield min(size, len(tokens) - start), members

    async def _pace(self, job: _Job, tokens: int, first: bool) -> None:
        delay = job.time_to_first_token if first else 0.0
        if job.tokens_per_second > 0:
            delay += tokens / job.tokens_per_second
        await asyncio.sleep(delay)  # sleep(0) still lets a disconnect be noticed

    def _count_generated(self, job: _Job, tokens: int) -> None:
        job.generated += tokens
        self.generation_tokens_total += tokens
        self._inflight_tokens += tokens

    async def _stream(self, request: web.Request, job: _Job) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
        response.headers["Cache-Control"] = "no-cache"
        await response.prepare(request)
        options = job.body.get("stream_options") or {}
        usage_wanted, continuous = (
            bool(options.get("include_usage")),
            bool(options.get("continuous_usage_stats")),
        )
        frames = _Frames(job)
        await self._pace(job, 0, first=True)
        await response.write(frames.chunk(_ROLE_DELTA, None, frames.usage(job) if continuous else ""))
        first_token_at, last_token_at = await self._stream_tokens(response, job, frames, continuous)
        self.streams.append(
            {
                "asked": _last_user_text(job.body)[:2000],
                "first_token_at": first_token_at,
                "last_token_at": last_token_at,
                "tokens": job.generated,
            }
        )
        if job.failure == "cut":
            if request.transport is not None:
                request.transport.close()  # the connection breaks mid-answer: no end, no [DONE]
            return response
        if usage_wanted:
            await response.write(frames.usage_only(frames.usage(job)))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def _stream_tokens(
        self, response: web.StreamResponse, job: _Job, frames: _Frames, continuous: bool
    ) -> tuple[float, float]:
        """Write the token chunks, one write each, yielding to the loop between them (so every
        stream gets its turn, as vLLM's engine steps all running requests together, and a
        disconnect is seen); returns when the first and the last were written (monotonic)."""
        first_token_at = last_token_at = math.nan
        finish = job.finish_reason if job.failure != "cut" else None
        chunks = list(self._chunks(job))
        for number, (tokens, members) in enumerate(chunks, 1):
            await self._pace(job, tokens, first=False)
            self._count_generated(job, tokens)
            if not members:
                continue
            usage = frames.usage(job) if continuous else ""
            await response.write(frames.chunk(members, finish if number == len(chunks) else None, usage))
            last_token_at = time.monotonic()
            if math.isnan(first_token_at):
                first_token_at = last_token_at
        return first_token_at, last_token_at

    async def _complete(self, request: web.Request, job: _Job) -> web.Response:
        await self._pace(job, len(job.tokens), first=True)
        self._count_generated(job, len(job.tokens))
        if job.failure == "cut":
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=499)
        message: dict[str, Any] = {"role": "assistant", "tool_calls": []}
        if job.reasoning_field is None:
            message["content"] = "".join(job.tokens)
        else:
            reasoning, content, in_answer = _split_like_parser(job.tokens, False)
            message[job.reasoning_field] = reasoning
            message["content"] = content if in_answer else None
        body = {
            "id": job.request_id,
            "object": "chat.completion",
            "created": job.created,
            "model": job.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": job.finish_reason,
                    "stop_reason": None,
                }
            ],
            "usage": self._usage(job),
        }
        return web.json_response(body)

    @staticmethod
    def _usage(job: _Job) -> dict[str, int]:
        return {
            "prompt_tokens": job.prompt_tokens,
            "total_tokens": job.prompt_tokens + job.generated,
            "completion_tokens": job.generated,
        }


def _context_error(prompt_tokens: int, requested: Any, limit: int) -> web.Response | None:
    """vLLM's 400 for a prompt (or prompt plus max_tokens) over the context length."""
    if prompt_tokens >= limit:
        return _error(
            400,
            f"This model's maximum context length is {limit} tokens. However, your request has "
            f"{prompt_tokens} input tokens. Please reduce the length of the input messages.",
            "BadRequestError",
        )
    if isinstance(requested, int) and prompt_tokens + requested > limit:
        return _error(
            400,
            f"This model's maximum context length is {limit} tokens. However, you requested "
            f"{prompt_tokens + requested} tokens ({prompt_tokens} in the messages, {requested} in the "
            "completion). Please reduce the length of the messages or completion.",
            "BadRequestError",
        )
    return None


_ENCODE = json.JSONEncoder(ensure_ascii=False).encode  # what json.dumps(x, ensure_ascii=False) gives
_ROLE_DELTA = '"role": "assistant", "content": ""'


class _Frames:
    """One streamed reply's SSE frames, the bytes ``json.dumps(chunk, ensure_ascii=False)`` of the
    whole chunk object gave (its key order, ``", "`` and ``": "``), from pieces encoded once per
    reply: per chunk only the delta's text is encoded. At full speed json.dumps of every chunk was a
    tenth of the stand-in's CPU, and the stand-in shares a core with the fake platform in
    ``benchmarks/bench_e2e.py``, where botkit is measured. ``tests/test_standin_frames.py`` holds
    the old code's bytes."""

    def __init__(self, job: _Job) -> None:
        self._head = (
            f'data: {{"id": {_ENCODE(job.request_id)}, "object": "chat.completion.chunk", '
            f'"created": {_ENCODE(job.created)}, "model": {_ENCODE(job.model)}, "choices": ['
        )

    def chunk(self, members: str, finish_reason: str | None, usage: str) -> bytes:
        """A chunk of one choice whose delta has ``members`` (JSON object members, encoded)."""
        finish = "null}" if finish_reason is None else _ENCODE(finish_reason) + ', "stop_reason": null}'
        choice = '{"index": 0, "delta": {' + members + '}, "logprobs": null, "finish_reason": ' + finish
        return (self._head + choice + "]" + usage + "}\n\n").encode()

    def usage_only(self, usage: str) -> bytes:
        """The usage chunk after the last token chunk: no choices."""
        return (self._head + "]" + usage + "}\n\n").encode()

    @staticmethod
    def usage(job: _Job) -> str:
        """The ``"usage"`` member as :meth:`Standin._usage` has it, so far."""
        return (
            f', "usage": {{"prompt_tokens": {job.prompt_tokens}, '
            f'"total_tokens": {job.prompt_tokens + job.generated}, "completion_tokens": {job.generated}}}'
        )


def _parser_view(tokens: Sequence[str]) -> tuple[list[str], int]:
    """:func:`_split_like_parser` for the whole reply at once: the tokens as the parser shows them
    (``<think>`` before the answer, and the ``</think>`` that ends the reasoning, shown as "") and
    where the answer starts. Reasoning of any span is then ``shown[a:min(b, answer_from)]``, its
    content ``shown[max(a, answer_from):b]``."""
    end = next((i for i, token in enumerate(tokens) if token == "</think>"), None)
    if end is None:  # no answer yet: every token is reasoning
        return ["" if token == "<think>" else token for token in tokens], len(tokens)
    return ["" if token == "<think>" else token for token in tokens[:end]] + ["", *tokens[end + 1 :]], end + 1


# -- command line ---------------------------------------------------------------------------

# (fraction of the startup delay, line): the shapes vLLM prints while it starts, in its order.
_STARTUP_LINES = (
    (0.0, "INFO [core.py] Initializing a V1 LLM engine (v0.0.0+standin) with config: model={model!r}"),
    (0.1, "INFO [gpu_model_runner.py] Starting to load model {model}..."),
    (0.15, "Loading safetensors checkpoint shards:   0% Completed | 0/1 [00:00<?, ?it/s]"),
    (0.3, "INFO [default_loader.py] Loading weights took {seconds:.2f} seconds"),
    (0.35, "INFO [backends.py] Dynamo bytecode transform time: {seconds:.2f} s"),
    (0.5, "INFO [monitor.py] torch.compile took {seconds:.2f} s in total"),
    (0.55, "INFO [kv_cache_utils.py] GPU KV cache size: 100,000 tokens"),
    (0.7, "Capturing CUDA graphs (mixed prefill-decode, PIECEWISE): 100%|██████████| 51/51"),
    (0.9, "INFO [gpu_model_runner.py] Graph capturing finished in 1 secs, took 0.00 GiB"),
    (0.95, "INFO [core.py] init engine (profile, create kv cache, warmup model) took {seconds:.2f} seconds"),
)


async def _print_startup(model: str, delay: float) -> None:
    """Print vLLM's start-up lines over ``delay`` seconds, as a starting server would."""
    started = time.monotonic()
    for fraction, line in _STARTUP_LINES:
        await asyncio.sleep(max(0.0, started + fraction * delay - time.monotonic()))
        print(line.format(model=model, seconds=time.monotonic() - started), flush=True)
    await asyncio.sleep(max(0.0, started + delay - time.monotonic()))


def _parse_args(argv: list[str], prog: str = "python -m botkit.llm.standin") -> argparse.Namespace:
    """Parse stand-in and ``vllm serve`` arguments; unknown ``--flag value`` pairs are ignored."""
    args = list(argv)
    if args and args[0] == "serve":
        args.pop(0)
    model = args.pop(0) if args and not args[0].startswith("-") else None
    parser = argparse.ArgumentParser(
        prog=prog,
        description="botkit's vLLM stand-in: an OpenAI-compatible server with canned answers, "
        "for tests and machines without a GPU. Accepts (and ignores) the other `vllm serve` flags.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--tokens-per-second", type=float, default=0.0)
    parser.add_argument("--ttft", type=float, default=0.0, help="time to first token, seconds")
    parser.add_argument(
        "--tokens-per-chunk", "--stream-interval", dest="tokens_per_chunk", type=int, default=1
    )
    parser.add_argument("--reasoning-field", choices=["reasoning", "reasoning_content", "none"])
    parser.add_argument("--reasoning-parser")
    parser.add_argument("--served-model-name", nargs="+")
    parser.add_argument("--max-model-len", type=int, default=4096)
    parser.add_argument("--omit-open-think", action="store_true")
    parser.add_argument("--api-key")
    for ignored in (
        "--dtype",
        "--gpu-memory-utilization",
        "--tensor-parallel-size",
        "--api-server-count",
        "--load-format",
        "--model",
    ):
        parser.add_argument(ignored)
    for flag in (
        "--enforce-eager",
        "--trust-remote-code",
        "--disable-log-requests",
        "--enable-prefix-caching",
    ):
        parser.add_argument(flag, action="store_true")
    namespace, _unknown = parser.parse_known_args(args)
    namespace.model_name = (
        (namespace.served_model_name or [None])[0] or model or namespace.model or DEFAULT_MODEL
    )
    return namespace


async def _serve(ns: argparse.Namespace, startup_delay: float) -> int:
    field = {"none": None, None: "reasoning"}.get(ns.reasoning_field, ns.reasoning_field)
    server = Standin(
        model_name=ns.model_name,
        max_model_len=ns.max_model_len,
        tokens_per_second=ns.tokens_per_second,
        time_to_first_token=ns.ttft,
        tokens_per_chunk=ns.tokens_per_chunk,
        reasoning_field=field,
        omit_open_think=ns.omit_open_think,
        api_key=ns.api_key,
        startup_delay=startup_delay,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await server.start(ns.host, ns.port)

    async def announce() -> None:
        if startup_delay > 0:
            await _print_startup(ns.model_name, startup_delay)
        print(f"Starting vLLM API server on http://{ns.host}:{server.port}", flush=True)
        print(
            "Available routes are: /health, /ping, /version, /metrics, /v1/models, "
            "/v1/chat/completions, /tokenize",
            flush=True,
        )

    announcing = asyncio.create_task(announce())
    try:
        await stop.wait()
    finally:
        announcing.cancel()
        print("Shutting down the botkit vLLM stand-in", flush=True)
        await server.stop()
    return 0


def _fork_workers(count: int) -> list[int]:
    """``count`` children that sleep until a signal ends them (``BOTKIT_STANDIN_FORK_CHILDREN``).

    Forked before the server starts (no threads, no event loop yet), so each child is a plain
    copy that inherits stdout and the process group, and not the parent's death signal: like
    vLLM's workers, they stay when the main process is killed.
    """
    workers: list[int] = []
    for _ in range(count):
        sys.stdout.flush()  # nothing buffered is printed twice
        pid = os.fork()
        if pid == 0:  # the worker: never returns into the parent's code
            try:
                for signum in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(signum, signal.SIG_DFL)
                while True:
                    signal.pause()
            finally:
                os._exit(0)
        workers.append(pid)
    if workers:
        print(_WORKERS_LINE + " ".join(map(str, workers)), flush=True)
    return workers


def forked_workers(output: Iterable[str]) -> list[int]:
    """The pids of the workers a stand-in forked, from the lines it printed (the last start's)."""
    lines = [line for line in output if line.startswith(_WORKERS_LINE)]
    return [int(pid) for pid in lines[-1].removeprefix(_WORKERS_LINE).split()] if lines else []


def _stop_workers(workers: list[int]) -> None:
    """What vLLM's shutdown does for its workers: end them and wait for them."""
    for pid in workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    for pid in workers:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def main(argv: list[str] | None = None, prog: str = "python -m botkit.llm.standin") -> int:
    """Run the stand-in until SIGTERM/SIGINT; returns the process exit code."""
    ns = _parse_args(sys.argv[1:] if argv is None else argv, prog)
    print(f"botkit vLLM stand-in (not a real model) serving {ns.model_name!r}", flush=True)
    exit_code = os.environ.get("BOTKIT_STANDIN_EXIT_AT_START")
    if exit_code:
        print(f"Exiting at start with code {exit_code} (BOTKIT_STANDIN_EXIT_AT_START)", flush=True)
        return int(exit_code)
    delay = float(os.environ.get("BOTKIT_STANDIN_STARTUP_DELAY") or 0)
    workers = _fork_workers(int(os.environ.get("BOTKIT_STANDIN_FORK_CHILDREN") or 0))
    try:
        with contextlib.suppress(KeyboardInterrupt):
            return asyncio.run(_serve(ns, delay))
        return 0
    finally:
        _stop_workers(workers)


if __name__ == "__main__":
    sys.exit(main())
