"""One model answer into a streamer, with botkit's three recoveries, each stated once:

- **failover**: a backend that refuses the connection or hangs before the first token is marked
  down and the request goes to another replica, or waits for this one's next passing health
  check (at most twice per replica);
- **empty answer**: the model sometimes returns only whitespace; it is asked once more with the
  assistant turn pre-filled with ``<think>\\n`` (the model card's guard). Not when the reasoning
  used all of ``max_tokens``: a retry would only burn the budget again;
- **cut stream**: the server died mid-answer; the user is told in place, the turn is stored as
  interrupted, and it is asked again in the same message once a backend is back (once, and only
  with ``llm.retry_interrupted``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from botkit.config import LLMSettings
from botkit.llm.client import Delta, Finished, StreamEvent
from botkit.llm.errors import BackendError
from botkit.llm.pool import BackendPool, Startup, WaitReason
from botkit.llm.prompt import Prompt, build_prompt
from botkit.personas import Persona
from botkit.pipeline.context import FittedPrompt
from botkit.pipeline.recorder import Usage

log = logging.getLogger("botkit.pipeline.generation")

INTERRUPTED_RETRY_NOTE = (
    "⚠️ _Interrupted: the model server stopped in the middle of this answer. "
    "It will be answered again here as soon as the server is back._"
)


@dataclass
class Attempt:
    reasoning: str = ""
    answer: str = ""
    finish_reason: str | None = None

    @property
    def empty(self) -> bool:
        return not self.answer.strip()


OnCut = Callable[[Attempt, BackendError], Awaitable[None]]


class AnswerView(Protocol):
    """Where a generation shows what it gets: a chat reply's
    :class:`~botkit.streaming.streamer.ReplyStreamer`, or ``botkit eval``'s collector, so that
    both go through this one prompt path (guard, sampling, retries, reasoning split)."""

    def add_reasoning(self, text: str) -> None: ...

    def add_answer(self, text: str) -> None: ...

    def drop_reasoning(self) -> None: ...

    def reset(self) -> None: ...

    def set_notice(self, text: str | None) -> None: ...

    def set_status(self, text: str | None) -> None: ...


async def consume(
    events: AsyncIterator[StreamEvent], streamer: AnswerView, attempt: Attempt, usage: Usage
) -> None:
    async for event in events:
        if isinstance(event, Delta):
            if usage.first_token_at is None:
                usage.first_token_at = time.monotonic()
            if event.kind == "reasoning":
                attempt.reasoning += event.text
                streamer.add_reasoning(event.text)
            else:
                attempt.answer += event.text
                streamer.add_answer(event.text)
        elif isinstance(event, Finished):
            if event.reasoning_was_answer:  # no <think> tags at all: it was the answer all along
                attempt.reasoning = ""
                streamer.drop_reasoning()
            usage.prompt_tokens = event.prompt_tokens
            usage.completion_tokens = event.completion_tokens
            attempt.finish_reason = event.finish_reason


class Generation:
    """Generates one turn's answer; the caller owns the reply (final edit) and the rows."""

    def __init__(
        self,
        pool: BackendPool,
        llm: LLMSettings,
        persona: Persona,
        user: str,
        streamer: AnswerView,
        *,
        seed: int | None = None,
    ) -> None:
        self.pool, self.llm, self.persona, self.user, self.streamer = pool, llm, persona, user, streamer
        self.seed = seed  # sent as the request's sampling seed (``botkit eval`` pairs runs by it)
        self.usage = Usage()
        self.attempt = Attempt()
        self.cut_retried = False
        self.empty_retried = False

    @property
    def sampling(self) -> dict[str, float]:
        persona, llm = self.persona, self.llm
        return {
            "temperature": persona.temperature if persona.temperature is not None else llm.temperature,
            "top_p": persona.top_p if persona.top_p is not None else llm.top_p,
        }

    async def run(self, fitted: FittedPrompt, user_content: str, on_cut: OnCut) -> Attempt:
        """The answer, retried in place once if the stream is cut; raises BackendError otherwise."""
        max_tokens = min(
            self.persona.max_tokens or self.llm.max_tokens, self.llm.max_model_len - fitted.tokens
        )
        while True:
            try:
                return await self._answer(fitted, user_content, max_tokens)
            except BackendError as err:
                if err.kind != "cut" or self.cut_retried or not self.llm.retry_interrupted:
                    raise
                self.cut_retried = True
                log.warning("stream cut (%s); retrying once when the backend is back", err)
                self.streamer.set_notice(INTERRUPTED_RETRY_NOTE)
                await on_cut(self.attempt, err)

    async def _answer(self, fitted: FittedPrompt, user_content: str, max_tokens: int) -> Attempt:
        await self._stream(fitted.prompt, max_tokens)
        if self.attempt.empty and self.attempt.finish_reason == "length":
            raise BackendError("length", "the reasoning used all of max_tokens")
        if self.attempt.empty:
            log.info("empty answer; retrying once with the <think> prefill")
            self.empty_retried = True
            self.streamer.reset()
            await self._stream(build_prompt(fitted.kept, user_content, prefill=True), max_tokens)
            if self.attempt.empty:
                raise BackendError("empty", "the model returned an empty answer twice")
        return self.attempt

    async def _stream(self, prompt: Prompt, max_tokens: int) -> None:
        """One generation on a backend slot; fails over to another replica before the first token."""
        self.attempt = Attempt()
        self.usage.first_token_at = None
        # A refused or hung backend is marked down and the request tries again. A refusal is
        # cheap (a restarting server): it may wait (within the pool's queue_timeout) for the same
        # server's next passing health check, twice per replica. A hang cost a whole
        # first_token_timeout: it only moves on to another replica, once each.
        refusals, hangs = 2 * len(self.pool.backends), len(self.pool.backends)
        while True:
            async with self.pool.slot(self.user, self._waiting) as backend:
                self.streamer.reset()  # drop the queue notice or an interrupted partial
                events = backend.client.stream(
                    prompt.messages,
                    max_tokens=max_tokens,
                    extra_body=prompt.extra_body,
                    seed=self.seed,
                    **self.sampling,
                )
                try:
                    await consume(events, self.streamer, self.attempt, self.usage)
                    return
                except BackendError as err:
                    refusals -= err.kind == "unavailable"
                    hangs -= err.kind == "timeout"
                    started = self.usage.first_token_at is not None
                    if err.kind not in ("unavailable", "timeout") or started or min(refusals, hangs) <= 0:
                        raise
                    self.pool.mark_down(backend, err)

    def _waiting(self, position: int, reason: WaitReason) -> None:
        self.streamer.set_status(queue_text(position, reason, self.pool.startup()))


def queue_text(position: int, reason: WaitReason, startup: Startup | None = None) -> str:
    """The notice a queued question shows. While the server starts it says what the server is
    doing and for how long (a cold start takes minutes: the user should see it move)."""
    if reason == "starting":
        doing = ""
        if startup is not None:
            waited = _duration(time.monotonic() - startup.since)
            doing = f" ({startup.phase}, {waited})" if startup.phase else f" ({waited})"
        return (
            f"⏳ _The model is starting{doing}; your question is queued (#{position} in line) "
            "and will be answered here as soon as it is ready._"
        )
    if reason == "down":
        return (
            f"⏳ _The model server is not answering right now; your question is queued (#{position} in line) "
            "and will be answered here when it is back._"
        )
    return f"⏳ _Many questions right now: yours is #{position} in line and will be answered here._"


def _duration(seconds: float) -> str:
    whole = max(0, int(seconds))
    return f"{whole} s" if whole < 60 else f"{whole // 60} min {whole % 60} s"
