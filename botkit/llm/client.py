"""Streaming client for vLLM's OpenAI-compatible API, as botkit uses it.

Why a wrapper around ``openai.AsyncOpenAI`` at all:

- Reasoning arrives in one of three shapes depending on the vLLM version and flags
  (``delta.reasoning``, ``delta.reasoning_content``, or ``<think>`` tags inside ``content``);
  :meth:`LLMClient.stream` turns all of them into the same :class:`Delta` events.
- Timeouts must distinguish "the model is thinking before the first token" (long) from "the
  stream stalled" (shorter); httpx has only one read timeout, so every chunk read is wrapped in
  its own ``asyncio`` deadline.
- Failures become :class:`~botkit.llm.errors.BackendError` with a ``kind`` the caller can act
  on, and without the API key in any message.
- Abandoning a stream (task cancelled, generator closed) must close the HTTP response, so
  vLLM sees the disconnect and aborts generation instead of burning GPU time.

The openai client retries nothing (``max_retries=0``): retry policy belongs to the caller, who
knows whether a half-streamed answer is already on screen. It is created on the first request,
and ``openai`` imported then: importing it takes longer than the rest of ``botkit chat``'s start-up.

Besides the streaming requests (the openai client's own connection pool), everything else botkit
asks a server (``/health``, ``/metrics``, ``/v1/models``, ``/tokenize``) goes through the one
aiohttp session of that server's client: the supervisor and the pool use the client's
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
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import aiohttp

from botkit.llm.errors import BackendError, BackendErrorKind
from botkit.llm.reasoning import FieldNormalizer, ReasoningSplitter

if TYPE_CHECKING:
    import openai
    from openai.types.chat import ChatCompletionChunk

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


def _reasoning_of(delta: Any) -> str | None:
    """The reasoning text of a delta, from whichever field this vLLM version uses.

    Only the first field found is used: some versions sent both with the same text.
    """
    extra = getattr(delta, "model_extra", None) or {}
    for name in _REASONING_FIELDS:
        value = getattr(delta, name, None)
        if value is None:
            value = extra.get(name)
        if isinstance(value, str):
            return value
    return None


class _ChunkReader:
    """Turns ChatCompletionChunks into events; one instance per response."""

    def __init__(self) -> None:
        self.server_splits = False  # the server sent a reasoning field
        self.splitter = ReasoningSplitter()
        self.splitter_used = False
        self.normalizer = FieldNormalizer()
        self.finish_reason: str | None = None
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None

    def read(self, chunk: ChatCompletionChunk) -> Iterator[Delta]:
        if chunk.usage is not None:
            self.prompt_tokens = chunk.usage.prompt_tokens
            self.completion_tokens = chunk.usage.completion_tokens
        for choice in chunk.choices:
            if choice.index != 0:
                continue
            reasoning = _reasoning_of(choice.delta)
            if reasoning is not None:
                self.server_splits = True
                text = self.normalizer.reasoning(reasoning)
                if text:
                    yield Delta("reasoning", text)
            content = choice.delta.content
            if content:
                if self.server_splits:
                    text = self.normalizer.answer(content)
                    if text:
                        yield Delta("answer", text)
                else:
                    self.splitter_used = True
                    for piece in self.splitter.feed(content):
                        yield Delta(piece.kind, piece.text)
            if choice.finish_reason is not None:
                self.finish_reason = choice.finish_reason

    def finish(self) -> Iterator[StreamEvent]:
        if self.finish_reason is None:
            raise BackendError("cut", "the stream ended without a finish_reason")
        was_answer = False
        if self.splitter_used:
            for piece in self.splitter.finish():
                yield Delta(piece.kind, piece.text)
            was_answer = self.splitter.no_tags
        yield Finished(self.finish_reason, self.prompt_tokens, self.completion_tokens, was_answer)


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
        self._openai: openai.AsyncOpenAI | None = None
        self._session: aiohttp.ClientSession | None = None
        self._api_error: type[openai.APIError] | None = None  # set by _open (openai loads lazily)
        self._closed = False

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
        first_deadline = asyncio.get_running_loop().time() + self._first_token_timeout
        chunks = await self._open(
            messages,
            first_deadline,
            temperature=temperature,
            top_p=top_p,
            max_tokens=max_tokens,
            extra_body=extra_body,
            seed=seed,
        )
        reader = _ChunkReader()
        try:
            deadline: float | None = first_deadline  # until the first chunk; then idle_timeout each
            while (chunk := await self._next_chunk(chunks, deadline)) is not None:
                deadline = None
                for delta in reader.read(chunk):
                    yield delta
            for event in reader.finish():
                yield event
        finally:
            await chunks.close()

    async def _open(
        self,
        messages: list[dict[str, str]],
        deadline: float,
        *,
        temperature: float,
        top_p: float,
        max_tokens: int,
        extra_body: dict[str, Any] | None,
        seed: int | None = None,
    ) -> openai.AsyncStream[ChatCompletionChunk]:
        import openai

        self._api_error = openai.APIError
        try:
            async with asyncio.timeout_at(deadline):
                return await self._api().chat.completions.create(
                    model=self.model,
                    messages=cast(Any, messages),
                    stream=True,
                    stream_options={"include_usage": True},
                    temperature=temperature,
                    top_p=top_p,
                    max_tokens=max_tokens,
                    extra_body=extra_body,
                    seed=seed,  # vLLM: this request's sampling seed (None: its own)
                )
        except TimeoutError as exc:
            raise self._timeout("no response") from exc
        except openai.APIError as exc:
            raise self._classify(exc, started=False) from exc

    async def _next_chunk(
        self, chunks: openai.AsyncStream[ChatCompletionChunk], first_deadline: float | None
    ) -> ChatCompletionChunk | None:
        """The next chunk (None at the end); ``first_deadline`` until the first one arrived.

        Runs per chunk: ``openai`` (imported lazily, for start-up time) is looked up once per
        stream, in :meth:`_open`, not here."""
        api_error = self._api_error
        assert api_error is not None, "_open() first"
        try:
            if first_deadline is None:
                async with asyncio.timeout(self._idle_timeout):
                    return await chunks.__anext__()
            async with asyncio.timeout_at(first_deadline):
                return await chunks.__anext__()
        except StopAsyncIteration:
            return None
        except TimeoutError as exc:
            raise self._timeout("no first token" if first_deadline is not None else "no data") from exc
        except api_error as exc:
            raise self._classify(exc, started=True) from exc

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
        return await self._probe(self.root_url + "/health", _drained, timeout) is not None

    async def metrics(self) -> dict[str, float] | None:
        """The server's ``vllm:*`` Prometheus samples summed by name; None when unreadable."""
        return await self._probe(self.root_url + "/metrics", _parsed_metrics)

    async def served_models(self) -> list[str] | None:
        """The model ids ``GET /v1/models`` lists; None when it does not answer 200 with JSON."""
        return await self._probe(self.base_url + "/models", _model_ids)

    async def aclose(self) -> None:
        """Close the HTTP connection pools; the client cannot be used afterwards."""
        self._closed = True
        if self._openai is not None:
            await self._openai.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- internals -------------------------------------------------------------------------

    def _api(self) -> openai.AsyncOpenAI:
        """The openai client of this server, created (and ``openai`` imported) on first use."""
        if self._closed:
            raise BackendError("unavailable", f"the client of {self.base_url} is closed")
        if self._openai is None:
            import openai

            # httpx's read timeout is only a backstop; the per-chunk asyncio deadlines decide.
            connect = self._connect_timeout
            read_backstop = max(self._first_token_timeout, self._idle_timeout) + 5.0
            self._openai = openai.AsyncOpenAI(
                base_url=self.base_url,
                api_key=self._api_key,
                max_retries=0,
                timeout=openai.Timeout(
                    None, connect=connect, read=read_backstop, write=connect, pool=connect
                ),
            )
        return self._openai

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
        limit = aiohttp.ClientTimeout(total=timeout if timeout is not None else self._probe_timeout)
        try:
            session = self._get_session()
            async with session.get(url, headers=self._headers(), timeout=limit) as resp:
                if resp.status != 200:
                    return None
                return await read(resp)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None

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

    def _classify(self, exc: openai.APIError, *, started: bool) -> BackendError:
        """Map an openai exception; ``started`` means response headers had arrived."""
        import openai

        detail = self._redact(f"{type(exc).__name__}: {exc.message}")
        if isinstance(exc, openai.APITimeoutError):
            return BackendError("timeout", detail)
        if isinstance(exc, openai.APIStatusError):
            return BackendError(_status_kind(exc.status_code), detail, status=exc.status_code)
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__
            if cause is not None:
                detail = f"{detail} ({self._redact(f'{type(cause).__name__}: {cause}')})"
            return BackendError("cut" if started else "unavailable", detail)
        # An error object sent inside the stream (vLLM does this for engine errors).
        code = exc.code if isinstance(exc.code, int) else None
        if code is None and isinstance(exc.body, dict) and isinstance(exc.body.get("code"), int):
            code = exc.body["code"]
        return BackendError(_status_kind(code) if code else "http", detail, status=code)

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
