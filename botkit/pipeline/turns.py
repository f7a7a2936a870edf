"""The conversation engine: one turn from question to stored, fully shown answer.

It loads the thread's history, renders the persona into the user turn, fits the prompt into the
model's context, streams the model's reasoning and answer into a :class:`ReplyStreamer`, runs
plugin middleware around all of that, and records the turn so that a crash leaves a visible
trace ("streaming" rows are marked interrupted at the next start) rather than a silent gap.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from botkit.events import ConversationKey, IncomingMessage, LiveReply
from botkit.llm.client import Delta, Finished, StreamEvent
from botkit.llm.errors import BackendError
from botkit.llm.pool import BackendPool, WaitReason
from botkit.llm.prompt import Prompt, build_prompt, estimate_tokens
from botkit.plugins.api import BoundMiddleware, NextStep, Refusal, Turn, TurnResult, TurnStatus
from botkit.streaming.budget import BudgetRegistry
from botkit.streaming.formatting import final_answer_line
from botkit.streaming.streamer import ReplyStreamer

if TYPE_CHECKING:
    from botkit.config import Settings
    from botkit.personas import Persona
    from botkit.store import ConversationStore, HistoryTurn

log = logging.getLogger("botkit.pipeline.turns")

INTERRUPTED_RETRY_NOTE = (
    "⚠️ _Interrupted: the model server stopped in the middle of this answer. "
    "It will be answered again here as soon as the server is back._"
)
INTERRUPTED_NOTE = "⚠️ _Interrupted: botkit stopped before this answer was finished. Please ask again._"
TRIMMED_NOTE = (
    "_Note: the oldest messages of this thread no longer fit in the model's context "
    "and were left out of this answer._"
)


@dataclass
class _Attempt:
    reasoning: str = ""
    answer: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    first_token_at: float | None = None
    finish_reason: str | None = None


@dataclass
class _TurnRecord:
    """What the store learns about a turn as it goes: its row, then its usage and timing."""

    assistant_id: int | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    ttft_ms: int | None = None

    def usage_from(self, attempt: _Attempt, started: float) -> None:
        self.prompt_tokens = attempt.prompt_tokens
        self.completion_tokens = attempt.completion_tokens
        if attempt.first_token_at is not None:
            self.ttft_ms = int((attempt.first_token_at - started) * 1000)


@dataclass
class _ThreadGate:
    """One turn at a time per thread; ``users`` counts turns holding or awaiting the lock, so the
    entry is dropped only when nobody needs it (``Lock.locked()`` is briefly False between two)."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class ContextOverflow(Refusal):
    """The question alone does not fit in the model's context."""


class TurnRunner:
    def __init__(
        self,
        *,
        store: ConversationStore,
        pool: BackendPool,
        settings: Settings,
        budgets: BudgetRegistry,
        middleware: Sequence[BoundMiddleware] = (),
    ) -> None:
        self.store = store
        self.pool = pool
        self.settings = settings
        self.budgets = budgets
        self.middleware = list(middleware)
        self._turn_locks: dict[ConversationKey, _ThreadGate] = {}
        self.turn_counts: Counter[str] = Counter()

    def streamer_for(self, reply: LiveReply, persona: Persona | None) -> ReplyStreamer:
        budget = self.budgets.get(reply.rate_key, reply.edit_rate, reply.edit_burst)
        return ReplyStreamer(
            reply,
            budget,
            edit_interval=self.settings.stream.edit_interval,
            display=persona.reasoning_display if persona else "thinking",
            thinking_interval=self.settings.stream.thinking_update_interval,
        )

    async def run_turn(
        self, message: IncomingMessage, reply: LiveReply, persona: Persona, question: str
    ) -> TurnResult:
        """Answer ``question`` with ``persona`` in ``message``'s thread, end to end.

        The placeholder shows at once; the turn itself waits until the thread's previous turn is
        stored, so a quick follow-up is answered with the earlier exchange in its history.
        """
        streamer = self.streamer_for(reply, persona)
        await streamer.start()
        gate = self._turn_locks.setdefault(message.key, _ThreadGate())
        gate.users += 1
        try:
            try:
                await gate.lock.acquire()
            except asyncio.CancelledError:  # shut down while waiting behind the previous turn
                await asyncio.shield(self._interrupted(streamer, _TurnRecord()))
                raise
            try:
                return await self._run_locked(message, reply, persona, question, streamer)
            finally:
                gate.lock.release()
        finally:
            gate.users -= 1
            if gate.users == 0:
                del self._turn_locks[message.key]

    async def _run_locked(
        self,
        message: IncomingMessage,
        reply: LiveReply,
        persona: Persona,
        question: str,
        streamer: ReplyStreamer,
    ) -> TurnResult:
        started = time.monotonic()
        record = _TurnRecord()
        try:
            result = await self._chain(lambda turn: self._generate(turn, streamer, record, started))(
                Turn(message, question, persona)
            )
        except Refusal as refusal:
            result = TurnResult("refused", error=str(refusal))
        except asyncio.CancelledError:
            await asyncio.shield(self._interrupted(streamer, record))
            raise
        except Exception as err:  # a bug must still end in a visible reply, never silence
            log.exception("turn failed in %s", message.key)
            result = TurnResult(
                "failed", error=f"⚠️ Something went wrong inside botkit ({type(err).__name__})."
            )
        # Shielded: a shutdown arriving during the final edit must not leave the reply on a
        # partial view or the stored turn "streaming"; the final edit and the store finish first.
        await asyncio.shield(self._show_and_store(result, streamer, record, persona, started))
        self.turn_counts[result.status] += 1
        return result

    def _chain(self, innermost: NextStep) -> NextStep:
        step = innermost
        for middleware in reversed(self.middleware):
            step = _bind(middleware, step)
        return step

    async def _generate(
        self, turn: Turn, streamer: ReplyStreamer, record: _TurnRecord, started: float
    ) -> TurnResult:
        message, persona = turn.message, turn.persona
        key = message.key
        conversation = await self.store.conversation_id(key.platform, key.workspace, key.channel, key.thread)
        history = await self.store.history(conversation)
        user_content = persona.render(
            turn.question,
            user_name=message.user_name or message.user,
            platform=message.platform,
            channel=message.channel,
            **turn.variables,
        )
        ids = await self.store.start_turn(
            conversation,
            user_text=turn.question,
            user_id=message.user,
            delivery_id=message.delivery_id,
            persona_name=persona.name,
            persona_hash=persona.content_hash,
            model=self.settings.llm.model,
        )
        record.assistant_id = ids.assistant_message_id
        # The placeholder's id is on record from the start, so a crash leaves a findable message.
        await self.store.record_message_ids(ids.assistant_message_id, list(streamer.stats.message_ids))
        attempt = _Attempt()
        notices: list[str] = []
        retried_interrupted = False
        try:
            prompt, prompt_tokens, kept = await self._fit(history, user_content)
            if len(kept) < len(history):
                notices.append(TRIMMED_NOTE)
            max_tokens = min(
                persona.max_tokens or self.settings.llm.max_tokens,
                self.settings.llm.max_model_len - prompt_tokens,
            )
            while True:
                attempt = _Attempt()
                try:
                    await self._stream(prompt, persona, max_tokens, streamer, message.user, attempt)
                    if not attempt.answer.strip() and attempt.finish_reason == "length":
                        # Reasoning ran into max_tokens: a retry would only burn the budget again.
                        raise BackendError("length", "the reasoning used all of max_tokens")
                    if not attempt.answer.strip():
                        log.info("empty answer in %s; retrying once with the <think> prefill", key)
                        streamer.reset()
                        attempt = _Attempt()
                        retry = build_prompt(kept, user_content, prefill=True)
                        await self._stream(retry, persona, max_tokens, streamer, message.user, attempt)
                        if not attempt.answer.strip():
                            raise BackendError("empty", "the model returned an empty answer twice")
                    break
                except BackendError as err:
                    if err.kind != "cut" or retried_interrupted or not self.settings.llm.retry_interrupted:
                        raise
                    # The server died mid-answer: say so where the user is looking, store the
                    # turn as interrupted, and answer again in the same message once it is back.
                    retried_interrupted = True
                    log.warning("stream cut in %s (%s); retrying once when the backend is back", key, err)
                    streamer.set_notice(INTERRUPTED_RETRY_NOTE)
                    await self.store.finish_turn(
                        ids.assistant_message_id,
                        status="interrupted",
                        answer=attempt.answer,
                        reasoning=attempt.reasoning,
                        error=err.detail or err.kind,
                    )
        except BackendError as err:
            status: TurnStatus = "interrupted" if err.kind == "cut" or retried_interrupted else "failed"
            record.usage_from(attempt, started)
            return TurnResult(
                status, attempt.answer, attempt.reasoning, error=err.user_message, notices=notices
            )
        record.usage_from(attempt, started)
        return TurnResult("complete", attempt.answer, attempt.reasoning, notices=notices)

    async def _stream(
        self,
        prompt: Prompt,
        persona: Persona,
        max_tokens: int,
        streamer: ReplyStreamer,
        user: str,
        attempt: _Attempt,
    ) -> None:
        """One generation into ``attempt``, on a backend slot; fails over before the first token."""
        llm = self.settings.llm

        def waiting(position: int, reason: WaitReason) -> None:
            streamer.set_status(_queue_text(position, reason))

        tries = len(self.pool.backends)
        while True:
            async with self.pool.slot(user, waiting) as backend:
                if attempt.first_token_at is None:
                    streamer.reset()  # drop the queue notice or an interrupted partial
                events = backend.client.stream(
                    prompt.messages,
                    temperature=persona.temperature if persona.temperature is not None else llm.temperature,
                    top_p=persona.top_p if persona.top_p is not None else llm.top_p,
                    max_tokens=max_tokens,
                    extra_body=prompt.extra_body,
                )
                try:
                    await self._consume(events, streamer, attempt)
                    return
                except BackendError as err:
                    tries -= 1
                    before_first_token = attempt.first_token_at is None
                    if err.kind not in ("unavailable", "timeout") or not before_first_token or tries <= 0:
                        raise
                    self.pool.mark_down(backend, err)  # refused or hung: try another replica

    @staticmethod
    async def _consume(
        events: AsyncIterator[StreamEvent], streamer: ReplyStreamer, attempt: _Attempt
    ) -> None:
        async for event in events:
            if isinstance(event, Delta):
                if attempt.first_token_at is None:
                    attempt.first_token_at = time.monotonic()
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
                attempt.prompt_tokens = event.prompt_tokens
                attempt.completion_tokens = event.completion_tokens
                attempt.finish_reason = event.finish_reason

    async def _fit(
        self, history: Sequence[HistoryTurn], user_content: str
    ) -> tuple[Prompt, int, Sequence[HistoryTurn]]:
        """The longest suffix of ``history`` whose prompt leaves room for an answer."""
        llm = self.settings.llm
        room = llm.max_model_len - min(llm.max_tokens, llm.max_model_len // 2)

        counter = self.pool.tokenizer()

        async def count(prompt: Prompt) -> int:
            counted: int | None = None
            if counter is not None:
                try:
                    counted = await counter.count_prompt_tokens(prompt.messages)
                except BackendError:  # still starting, or gone: the estimate errs on the long side
                    counted = None
            return counted if counted is not None else estimate_tokens(prompt.messages)

        full = build_prompt(history, user_content)
        tokens = await count(full)
        if tokens <= room:
            return full, tokens, history
        bare = build_prompt([], user_content)
        bare_tokens = await count(bare)
        if bare_tokens > room:
            raise ContextOverflow(
                f"⚠️ Your message is too long for the model: about {bare_tokens} tokens with the persona's "
                f"instructions, and at most {room} fit. Please shorten it or split it into parts."
            )
        low, high = 0, len(history)  # low exchanges always fit, high do not
        best, best_tokens = bare, bare_tokens
        while high - low > 1:
            mid = (low + high) // 2
            candidate = build_prompt(history[len(history) - mid :], user_content)
            candidate_tokens = await count(candidate)
            if candidate_tokens <= room:
                low, best, best_tokens = mid, candidate, candidate_tokens
            else:
                high = mid
        return best, best_tokens, history[len(history) - low :] if low else []

    async def _show_and_store(
        self,
        result: TurnResult,
        streamer: ReplyStreamer,
        record: _TurnRecord,
        persona: Persona,
        started: float,
    ) -> None:
        try:
            if result.status == "complete":
                message_ids = await streamer.finish(_final_text(result, persona))
            else:
                message_ids = await streamer.fail(result.error or "⚠️ No answer.")
        except Exception as err:  # the platform refused even the retried final edit
            log.exception("the final edit of a reply could not be shown")
            message_ids = list(streamer.stats.message_ids)
            if result.status == "complete":
                result.status = "interrupted"
            result.error = f"{result.error or ''} (final edit failed: {type(err).__name__})".strip()
        assistant_id = record.assistant_id
        if assistant_id is None:
            return  # refused before anything was stored
        await self.store.finish_turn(
            assistant_id,
            status=result.status if result.status in ("complete", "interrupted") else "failed",
            answer=result.answer,
            reasoning=result.reasoning.strip(),
            prompt_tokens=record.prompt_tokens,
            completion_tokens=record.completion_tokens,
            ttft_ms=record.ttft_ms,
            total_ms=int((time.monotonic() - started) * 1000),
            error=result.error,
            platform_message_ids=message_ids,
        )

    async def _interrupted(self, streamer: ReplyStreamer, record: _TurnRecord) -> None:
        try:
            message_ids = await asyncio.wait_for(streamer.fail(INTERRUPTED_NOTE), 10)
        except Exception:
            log.exception("could not show the interruption note")
            message_ids = streamer.stats.message_ids
        assistant_id = record.assistant_id
        if assistant_id is not None:
            await self.store.finish_turn(
                assistant_id,
                status="interrupted",
                answer=streamer.partial_answer,
                reasoning=streamer.partial_reasoning,
                error="botkit stopped during the turn",
                platform_message_ids=list(message_ids),
            )


def _queue_text(position: int, reason: WaitReason) -> str:
    if reason == "starting":
        return (
            f"⏳ _The model is starting; your question is queued (#{position} in line) "
            "and will be answered here as soon as it is ready._"
        )
    if reason == "down":
        return (
            f"⏳ _The model server is not answering right now; your question is queued (#{position} in line) "
            "and will be answered here when it is back._"
        )
    return f"⏳ _Many questions right now: yours is #{position} in line and will be answered here._"


def _bind(middleware: BoundMiddleware, next_step: NextStep) -> NextStep:
    async def step(turn: Turn) -> TurnResult:
        return await middleware(turn, next_step)

    return step


def _final_text(result: TurnResult, persona: Persona) -> str:
    parts = [result.answer.strip()]
    if persona.answer_format == "boxed":
        line = final_answer_line(result.answer)
        if line:
            parts.append(line)
    parts.extend(result.notices)
    return "\n\n".join(p for p in parts if p)
