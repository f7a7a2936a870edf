"""Streaming client for vLLM's OpenAI-compatible API, as botkit uses it.

Why a client of botkit's own rather than ``openai.AsyncOpenAI`` (which it used until issue 11):

- Reasoning arrives in one of three shapes depending on the vLLM version and flags
  (``delta.reasoning``, ``delta.reasoning_content``, or ``<think>`` tags inside ``content``);
  :meth:`LLMClient.stream` turns all of them into the same :class:`Delta` events.
- Timeouts must distinguish "the model is thinking before the first token" (long) from "the
  stream stalled" (shorter). One deadline covers the request until the first chunk; after it a
  watchdog timer per stream (:class:`_Watchdog`), re-armed only when it fires, ends a stream
  that sent nothing for ``idle_timeout``: no timer is opened per chunk.
- Speed: one process must keep up with a saturated GPU (issue 11). The SDK built a pydantic
  object per SSE chunk and awaited once per line; here the response is read with aiohttp, split
  into events per network read and parsed with the stdlib json (:mod:`botkit.llm.sse`).
- Failures become :class:`~botkit.llm.errors.BackendError` with a ``kind`` the caller can act
  on, and without the API key in any message.
- Abandoning a stream (task cancelled, generator closed) must close the HTTP response, so
  vLLM sees the disconnect and aborts generation instead of burning GPU time.

The client retries nothing: retry policy belongs to the caller, who knows whether a
half-streamed answer is already on screen.

The streams have an aiohttp session of their own (no connection limit: the backend pool bounds
them). Everything else botkit asks a server (``/health``, ``/metrics``, ``/v1/models``,
``/tokenize``) goes through the one other aiohttp session of that server's client, so a probe
never waits behind the streams: the supervisor and the pool use the client's
:meth:`LLMClient.health`, :meth:`LLMClient.metrics` and :meth:`LLMClient.served_models` rather
than sessions of their own. Those probes have a short timeout of their own (``probe_timeout``), so
a hung server never looks healthy. Whoever creates a client closes it, once, after everything
that uses it has stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import aiohttp

from botkit.llm.errors import BackendError, BackendErrorKind
from botkit.llm.reasoning import FieldNormalizer, ReasoningSplitter
from botkit.llm.sse import DONE, SSEDecoder, loads

if TYPE_CHECKING:
    from botkit.config import LLMSettings

__all__ = ["Delta", "Finished", "LLMClient", "StreamEvent", "client_for", "parse_metrics"]

_REASONING_FIELDS = ("reasoning", "reasoning_content")
_METRIC = re.compile(r"^(vllm:[a-z_]+)(?:\{[^}]*\})?\s+([0-9.eE+-]+|NaN)\s*$", re.MULTILINE)
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Delta:
    """A new piece of reasoning or answer text, in stream order."""

    kind: Literal["reasoning", "answer"]
    text: str


@dataclass(frozen=True, slots=True)
class Finished:
    """The last event of a successful stream.

    ``reasoning_was_answer`` is True when the text came without any ``<think>`` tags and
    without a reasoning field, i.e. the model did not reason: the ``reasoning`` deltas streamed
    so far were really the answer, and an ``answer`` delta with the whole text was sent just
    before this event (see :mod:`botkit.llm.reasoning`, rule 6). Consumers should then drop the
    reasoning they collected.
    """

    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    reasoning_was_answer: bool = False


StreamEvent = Delta | Finished


def parse_metrics(text: str) -> dict[str, float]:
    """Sum vLLM's Prometheus samples by metric name (over labels such as ``engine``)."""
    totals: dict[str, float] = {}
    for name, value in _METRIC.findall(text):
        with contextlib.suppress(ValueError):
            totals[name] = totals.get(name, 0.0) + float(value)
    return totals


def _status_kind(status: int) -> BackendErrorKind:
    """429/503 mean "reachable but not taking work now" (see errors.py); others are plain http."""
    return "overloaded" if status in (429, 503) else "http"


def _reasoning_of(delta: dict[str, Any]) -> str | None:
    """The reasoning text of a delta, from whichever field this vLLM version uses.

    Only the first field found is used: some versions sent both with the same text.
    """
    for name in _REASONING_FIELDS:
        value = delta.get(name)
        if isinstance(value, str):
            return value
    return None


class _ChunkReader:
    """Turns chat.completion.chunk objects (parsed JSON) into events; one instance per response."""

    def __init__(self) -> None:
        self.server_splits = False  # the server sent a reasoning field
        self.splitter = ReasoningSplitter()
        self.splitter_used = False
        self.normalizer = FieldNormalizer()
        self.finish_reason: str | None = None
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None

    def read(self, chunk: dict[str, Any]) -> list[Delta]:
        usage = chunk.get("usage")
        if usage:
            self.prompt_tokens = usage.get("prompt_tokens")
            self.completion_tokens = usage.get("completion_tokens")
        out: list[Delta] = []
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            reasoning = _reasoning_of(delta)
            if reasoning is not None:
                self.server_splits = True
                text = self.normalizer.reasoning(reasoning)
                if text:
                    out.append(Delta("reasoning", text))
            content = delta.get("content")
            if content:
                if self.server_splits:
                    text = self.normalizer.answer(content)
                    if text:
                        out.append(Delta("answer", text))
                else:
                    self.splitter_used = True
                    out.extend(Delta(piece.kind, piece.text) for piece in self.splitter.feed(content))
            if choice.get("finish_reason") is not None:
                self.finish_reason = choice["finish_reason"]
        return out

    def finish(self) -> Iterator[StreamEvent]:
        if self.finish_reason is None:
            raise BackendError("cut", "the stream ended without a finish_reason")
        was_answer = False
        if self.splitter_used:
            for piece in self.splitter.finish():
                yield Delta(piece.kind, piece.text)
            was_answer = self.splitter.no_tags
        yield Finished(self.finish_reason, self.prompt_tokens, self.completion_tokens, was_answer)


class _Watchdog:
    """Ends a stream that sent nothing for too long, with one timer per stream instead of one
    deadline per chunk: the reader only notes when data came (``last``); the timer, when it
    fires, re-arms itself for ``last + idle`` if data came meanwhile, and otherwise marks the
    stream ``expired`` and closes the response, which ends the pending read. Until the first
    data it waits for the first-token deadline instead."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, response: aiohttp.ClientResponse, first: float, idle: float
    ) -> None:
        self._loop, self._response, self._idle = loop, response, idle
        self.last: float | None = None  # when data last arrived; None: not yet
        self.expired: str | None = None  # why the stream was ended
        self._handle = loop.call_at(first, self._fire)

    def _fire(self) -> None:
        if self.last is None:
            self.expired = "no first token"
        else:
            due = self.last + self._idle
            if due > self._loop.time():
                self._handle = self._loop.call_at(due, self._fire)
                return
            self.expired = "no data"
        self._response.close()

    def first_data(self) -> None:
        """From the first data on, the stream is watched for ``idle`` seconds of silence."""
        self._handle.cancel()
        self._handle = self._loop.call_at(self._loop.time() + self._idle, self._fire)

    def cancel(self) -> None:
        self._handle.cancel()


class LLMClient:
    """An OpenAI-compatible (vLLM) chat client that streams reasoning and answer separately.

    ``base_url`` ends in ``/v1``; vLLM's extra routes (``/health``, ``/metrics``, ``/tokenize``)
    live at the server root, which is ``base_url`` without that suffix. ``probe_timeout`` bounds
    each ``/health``, ``/metrics`` and ``/v1/models`` request.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str = "EMPTY",
        connect_timeout: float = 10,
        first_token_timeout: float = 120,
        idle_timeout: float = 60,
        probe_timeout: float = 5,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.root_url = self.base_url.removesuffix("/v1")
        self.model = model
        self._api_key = api_key
        self._connect_timeout = connect_timeout
        self._first_token_timeout = first_token_timeout
        self._idle_timeout = idle_timeout
        self._probe_timeout = probe_timeout
        self._session: aiohttp.ClientSession | None = None
        self._streams: aiohttp.ClientSession | None = None
        self._closed = False
        # A stream has no total limit; the first-token deadline and the watchdog bound it.
        self._stream_timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout)

    async def stream(
        self,
        messages: list[dict[str, str]],
        *,
        temperature: float,
        top_p: float,
        max_tokens: int,
        extra_body: dict[str, Any] | None = None,
        seed: int | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Stream one chat completion as :class:`Delta` events followed by one :class:`Finished`.

        Raises :class:`BackendError`. Closing or cancelling the iteration closes the HTTP
        response at once.
        """
        loop = asyncio.get_running_loop()
        first_deadline = loop.time() + self._first_token_timeout
        body = self._body(messages, temperature, top_p, max_tokens, extra_body, seed)
        response = await self._open(body, first_deadline)
        watchdog = _Watchdog(loop, response, first_deadline, self._idle_timeout)
        reader = _ChunkReader()
        decoder = SSEDecoder()
        done = False
        try:
            try:
                async for data in response.content.iter_any():
                    if watchdog.last is None:
                        watchdog.first_data()
                    watchdog.last = loop.time()
                    for event in decoder.feed(data):
                        if event == DONE:
                            done = True
                            break
                        for delta in reader.read(self._chunk(event)):
                            yield delta
                    if done:
                        break
                if not done:
                    for event in decoder.finish():
                        if event == DONE:
                            done = True
                        else:
                            for delta in reader.read(self._chunk(event)):
                                yield delta
            except (aiohttp.ClientError, ConnectionError) as exc:
                if watchdog.expired is None:
                    raise BackendError("cut", self._redact(f"{type(exc).__name__}: {exc}")) from exc
            if watchdog.expired is not None:
                raise self._timeout(watchdog.expired)
            for finished in reader.finish():
                yield finished
        finally:
            watchdog.cancel()
            if done:
                response.release()  # read to the end: the connection goes back to the pool
            else:
                response.close()  # abandoned or broken: vLLM sees the disconnect and stops

    def _body(
        self,
        messages: list[dict[str, str]],
        temperature: float,
        top_p: float,
        max_tokens: int,
        extra_body: dict[str, Any] | None,
        seed: int | None,
    ) -> dict[str, Any]:
        """The streaming request's JSON body (usage in the last chunk, for the token counts)."""
        return {
            "model": self.model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": temperature,
            "top_p": top_p,
            "max_tokens": max_tokens,
            **({"seed": seed} if seed is not None else {}),  # vLLM: this request's sampling seed
            **(extra_body or {}),
        }

    async def _open(self, body: dict[str, Any], deadline: float) -> aiohttp.ClientResponse:
        """POST the request; the response once its headers said 200, else a BackendError."""
        try:
            session = self._stream_session()
            async with asyncio.timeout_at(deadline):
                response = await session.post(
                    self.base_url + "/chat/completions",
                    json=body,
                    headers=self._headers(),
                    timeout=self._stream_timeout,
                )
                if response.status != 200:
                    try:
                        raise self._status_error(response.status, await response.read())
                    finally:
                        response.release()
        except TimeoutError as exc:
            raise self._timeout("no response") from exc
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise BackendError("unavailable", self._redact(f"{type(exc).__name__}: {exc}")) from exc
        return response

    def _chunk(self, data: bytes) -> dict[str, Any]:
        """One event's JSON; an error object sent inside the stream (vLLM does this for engine
        errors) is raised as the BackendError its code says."""
        try:
            chunk = loads(data)
        except ValueError as exc:
            raise BackendError(
                "http", self._redact(f"the server sent an event that is not JSON: {data[:200]!r}")
            ) from exc
        if not isinstance(chunk, dict):
            raise BackendError(
                "http", self._redact(f"the server sent an event that is not an object: {data[:200]!r}")
            )
        error = chunk.get("error")
        if error is not None:
            code = error.get("code") if isinstance(error, dict) else None
            message = error.get("message") if isinstance(error, dict) else error
            status = code if isinstance(code, int) else None
            kind: BackendErrorKind = _status_kind(status) if status else "http"
            raise BackendError(kind, self._redact(f"error in the stream: {message}"), status=status)
        return chunk

    def _status_error(self, status: int, raw: bytes) -> BackendError:
        """An error status, with the message of the OpenAI (or vLLM) error object if there is one."""
        message = raw[:500].decode(errors="replace")
        with contextlib.suppress(ValueError):
            data = loads(raw)
            if isinstance(data, dict):
                error = data.get("error", data)
                if isinstance(error, dict) and isinstance(error.get("message"), str):
                    message = error["message"]
        return BackendError(_status_kind(status), self._redact(f"HTTP {status}: {message}"), status=status)

    async def count_prompt_tokens(self, messages: list[dict[str, str]]) -> int | None:
        """Prompt length in tokens as the server counts it (vLLM ``POST /tokenize``).

        Returns None when the server has no such endpoint (not vLLM, or a router that does not
        forward it), so callers can fall back to an estimate.
        """
        body = {"model": self.model, "messages": messages}
        data = await self._root_request("POST", "/tokenize", body)
        if data is None:
            return None
        count = data.get("count")
        return count if isinstance(count, int) else None

    async def health(self, timeout: float | None = None) -> bool:
        """True when ``GET /health`` at the server root answers 200 within ``timeout`` (default
        ``probe_timeout``); never raises."""
        return await self.health_problem(timeout) is None

    async def health_problem(self, timeout: float | None = None) -> str | None:
        """None when ``GET /health`` answers 200, else what went wrong in words an operator can
        act on (``/healthz``, ``botkit status``): nothing listening, a timeout, an HTTP status."""
        _, problem = await self._probe_why(self.root_url + "/health", _drained, timeout)
        return problem

    async def metrics(self) -> dict[str, float] | None:
        """The server's ``vllm:*`` Prometheus samples summed by name; None when unreadable."""
        return await self._probe(self.root_url + "/metrics", _parsed_metrics)

    async def served_models(self) -> list[str] | None:
        """The model ids ``GET /v1/models`` lists; None when it does not answer 200 with JSON."""
        return await self._probe(self.base_url + "/models", _model_ids)

    async def aclose(self) -> None:
        """Close the HTTP connection pools; the client cannot be used afterwards."""
        self._closed = True
        if self._streams is not None:
            await self._streams.close()
            self._streams = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- internals -------------------------------------------------------------------------

    def _stream_session(self) -> aiohttp.ClientSession:
        """The streams' own session: no connection limit (the backend pool's ``max_in_flight``
        bounds them), and a probe never waits for, or shares a connection with, a stream."""
        if self._closed:
            raise aiohttp.ClientConnectionError(f"the client of {self.base_url} is closed")
        if self._streams is None:
            self._streams = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        return self._streams

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:  # never a second session behind the owner's back
            raise aiohttp.ClientConnectionError(f"the client of {self.base_url} is closed")
        if self._session is None:
            timeout = aiohttp.ClientTimeout(
                total=self._connect_timeout + self._idle_timeout, sock_connect=self._connect_timeout
            )
            self._session = aiohttp.ClientSession(timeout=timeout)
        return self._session

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"}

    async def _probe(
        self,
        url: str,
        read: Callable[[aiohttp.ClientResponse], Awaitable[_T]],
        timeout: float | None = None,
    ) -> _T | None:
        """GET ``url`` with the short probe timeout: what ``read`` makes of a 200, else None."""
        return (await self._probe_why(url, read, timeout))[0]

    async def _probe_why(
        self,
        url: str,
        read: Callable[[aiohttp.ClientResponse], Awaitable[_T]],
        timeout: float | None = None,
    ) -> tuple[_T | None, str | None]:
        """:meth:`_probe`, with why it got nothing (None when it did)."""
        seconds = timeout if timeout is not None else self._probe_timeout
        path = url.removeprefix(self.root_url)
        try:
            session = self._get_session()
            async with session.get(
                url, headers=self._headers(), timeout=aiohttp.ClientTimeout(total=seconds)
            ) as resp:
                if resp.status != 200:
                    return None, f"GET {path} answered HTTP {resp.status}"
                return await read(resp), None
        except aiohttp.ClientConnectionError as err:
            reason = getattr(err, "os_error", None) or err  # "[Errno 111] Connect call failed (...)"
            return (
                None,
                f"cannot connect to {self.root_url}: {self._redact(str(reason)) or type(err).__name__}",
            )
        except TimeoutError:
            return None, f"GET {path} did not answer within {seconds:g} s"
        except (aiohttp.ClientError, ValueError) as err:
            return None, f"GET {path} failed: {self._redact(str(err)) or type(err).__name__}"

    async def _root_request(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """JSON request to a root route; None on 404/405, BackendError on other failures."""
        url = self.root_url + path
        try:
            session = self._get_session()
            async with session.request(method, url, json=body, headers=self._headers()) as resp:
                if resp.status in (404, 405):
                    return None
                if resp.status != 200:
                    text = await resp.text()
                    raise BackendError(
                        _status_kind(resp.status), self._redact(text[:500]), status=resp.status
                    )
                data = await resp.json()
        except aiohttp.ClientConnectionError as exc:
            raise BackendError("unavailable", self._redact(f"{path}: {exc}")) from exc
        except TimeoutError as exc:
            raise self._timeout(f"{path} did not answer") from exc
        except (aiohttp.ClientError, ValueError) as exc:
            raise BackendError("http", self._redact(f"{path}: {exc}")) from exc
        return data if isinstance(data, dict) else None

    def _timeout(self, what: str) -> BackendError:
        limits = (
            f"connect {self._connect_timeout:g}s, first token {self._first_token_timeout:g}s, "
            f"idle {self._idle_timeout:g}s"
        )
        return BackendError("timeout", f"{what} from {self.base_url} ({limits})")

    def _redact(self, text: str) -> str:
        key = self._api_key
        if key and key != "EMPTY" and len(key) >= 4:
            text = text.replace(key, "***")
        return text


def client_for(settings: LLMSettings, base_url: str) -> LLMClient:
    """The client of one server, with the configured key and timeouts."""
    return LLMClient(
        base_url=base_url,
        model=settings.model,
        api_key=settings.api_key.get_secret_value(),
        connect_timeout=settings.connect_timeout,
        first_token_timeout=settings.first_token_timeout,
        idle_timeout=settings.idle_timeout,
    )


async def _drained(response: aiohttp.ClientResponse) -> bool:
    await response.read()  # read to the end, so the connection goes back to the pool
    return True


async def _parsed_metrics(response: aiohttp.ClientResponse) -> dict[str, float]:
    return parse_metrics(await response.text())


async def _model_ids(response: aiohttp.ClientResponse) -> list[str]:
    body = await response.json()
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        return []
    return [str(m["id"]) for m in data if isinstance(m, dict) and "id" in m]
