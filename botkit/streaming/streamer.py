"""Showing a reply while the model writes it: coalesced edits, a shared budget, a final edit.

The streamer owns what the user sees. Deltas arrive far faster than any platform accepts edits,
so they only mark the view dirty; one pump task turns the latest view into at most one edit per
``edit_interval`` per reply, and only with a token from the scope's shared
:class:`~botkit.streaming.budget.EditBudget`. The final view always lands: it jumps the queue, and a
:class:`~botkit.events.RateLimited` answer is waited out and retried rather than dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from botkit.events import LiveReply, RateLimited
from botkit.streaming.budget import EditBudget
from botkit.streaming.formatting import quote, split_message

log = logging.getLogger("botkit.streaming.streamer")

ReasoningDisplay = Literal["hidden", "thinking", "quoted"]

PLACEHOLDER = "_Thinking…_"
FINAL_DEADLINE = 300.0  # seconds a final edit keeps retrying through rate limits


@dataclass
class _View:
    status: str | None = None
    reasoning: str = ""
    answer: str = ""
    final: str | None = None
    reasoning_started: float | None = None
    reasoning_ended: float | None = None
    notice: str | None = None  # shown under the partial answer until the stream resumes


@dataclass
class StreamStats:
    edits: int = 0
    posts: int = 0
    rate_limited: int = 0
    message_ids: list[str] = field(default_factory=list)


class ReplyStreamer:
    """Turns reasoning/answer deltas into placeholder, edits, continuations and a final edit."""

    def __init__(
        self,
        reply: LiveReply,
        budget: EditBudget,
        *,
        edit_interval: float = 1.0,
        display: ReasoningDisplay = "thinking",
        thinking_interval: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
        text_filter: Callable[[str], str] | None = None,
    ) -> None:
        self.reply = reply
        self.budget = budget
        self.edit_interval = edit_interval
        self.display = display
        self.thinking_interval = thinking_interval
        self._clock = clock
        self._filter = text_filter
        self._view = _View()
        self._shown: list[str] = []
        self._last_edit = 0.0
        self._dirty = asyncio.Event()
        self._closing = False
        self._pump: asyncio.Task[None] | None = None
        self._io_lock = asyncio.Lock()
        self.stats = StreamStats()

    # -- input side -------------------------------------------------------------------------
    async def start(self, placeholder: str = PLACEHOLDER) -> str:
        """Post the placeholder now (users see a reaction within a second) and start pumping.

        It draws on the scope's budget like every edit (platforms such as Discord count posts
        and edits in one per-channel limit), ahead of every edit in line.
        """
        deadline = self._clock() + FINAL_DEADLINE
        while True:
            await self.budget.acquire(float("-inf"))
            try:
                shown = self._filter(placeholder) if self._filter else placeholder
                message_id = await self.reply.post_placeholder(shown)
                break
            except RateLimited as err:
                self.stats.rate_limited += 1
                self.budget.pause(err.retry_after)
                if self._clock() > deadline:
                    raise
                await asyncio.sleep(err.retry_after)
        self._shown = [shown]
        self.stats.message_ids = [message_id]
        self.stats.posts += 1
        self._last_edit = self._clock()
        self._pump = asyncio.create_task(self._run_pump(), name="botkit-reply-pump")
        return message_id

    def set_status(self, text: str | None) -> None:
        self._view.status = text
        self._dirty.set()

    def add_reasoning(self, text: str) -> None:
        if self._view.reasoning_started is None:
            self._view.reasoning_started = self._clock()
        self._view.reasoning += text
        if self.display == "quoted" or (
            self.display == "thinking" and self._view.reasoning_started is not None
        ):
            self._dirty.set()

    def add_answer(self, text: str) -> None:
        if self._view.reasoning_ended is None:
            self._view.reasoning_ended = self._clock()
        self._view.answer += text
        self._dirty.set()

    @property
    def partial_answer(self) -> str:
        return self._view.answer

    @property
    def partial_reasoning(self) -> str:
        return self._view.reasoning

    def set_notice(self, text: str | None) -> None:
        """A line under what was streamed so far (e.g. "interrupted, will retry"); reset() clears it."""
        self._view.notice = text
        self._dirty.set()

    def drop_reasoning(self) -> None:
        """The text streamed as reasoning turned out to be the answer (a model that did not think)."""
        self._view.reasoning = ""
        self._dirty.set()

    def reset(self) -> None:
        """Forget what was streamed and any status (a retry, or the model slot finally came)."""
        self._view = _View()
        self._dirty.set()

    async def finish(self, final_text: str) -> list[str]:
        """Land ``final_text`` as the reply (split over messages as needed); return message ids."""
        await self._land(final_text)
        try:
            await self.reply.finish()
        except Exception:  # the answer is already visible; a failed close is only logged
            log.exception("closing reply failed")
        return list(self.stats.message_ids)

    async def fail(self, error_text: str) -> list[str]:
        """End the reply with what was shown so far plus a visible, specific error."""
        partial = self._view.answer.strip()
        await self._land(f"{partial}\n\n{error_text}" if partial else error_text)
        try:
            await self.reply.fail(error_text)
        except Exception:
            log.exception("reporting the failure to the adapter failed")
        return list(self.stats.message_ids)

    async def _land(self, final_text: str) -> None:
        self._view.final = final_text
        await self._stop_pump()
        await self._show(self._render(), final=True)

    async def aclose(self) -> None:
        await self._stop_pump()

    # -- rendering ---------------------------------------------------------------------------
    def _render(self) -> str:
        view = self._view
        if view.final is not None:
            return self._render_answer_part(final=True)
        if view.notice is not None:
            partial = self._render_answer_part(final=False).strip()
            return f"{partial}\n\n{view.notice}" if partial else view.notice
        if view.answer:
            return self._render_answer_part(final=False)
        if view.reasoning and self.display == "quoted":
            tail = view.reasoning[-(self.reply.max_chars - 200) :]
            return quote(tail) if tail.strip() else PLACEHOLDER
        if view.reasoning_started is not None and self.display == "thinking":
            seconds = int(self._clock() - view.reasoning_started)
            return f"_Thinking… {seconds}s_" if seconds >= 1 else PLACEHOLDER
        return view.status or PLACEHOLDER

    def _render_answer_part(self, *, final: bool) -> str:
        view = self._view
        answer = view.final if final and view.final is not None else view.answer
        if self.display == "quoted" and view.reasoning.strip():
            return f"{quote(view.reasoning)}\n\n{answer}"
        return answer

    # -- output side -------------------------------------------------------------------------
    async def _run_pump(self) -> None:
        while not self._closing:
            timeout = self.thinking_interval if self._thinking_clock_running() else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), timeout)
            if self._closing:
                return
            self._dirty.clear()
            wait = self._last_edit + self.edit_interval - self._clock()
            if wait > 0:
                await asyncio.sleep(wait)
            if self._closing:
                return
            try:
                await self._show(self._render(), final=False)
            except RateLimited as err:
                self.stats.rate_limited += 1
                self.budget.pause(err.retry_after)
                self._dirty.set()
            except Exception:
                log.exception("streaming edit failed; the final edit will retry")

    def _thinking_clock_running(self) -> bool:
        view = self._view
        return self.display == "thinking" and view.reasoning_started is not None and not view.answer

    async def _stop_pump(self) -> None:
        self._closing = True
        self._dirty.set()
        if self._pump is not None:
            pump, self._pump = self._pump, None
            pump.cancel()
            await asyncio.wait([pump])  # propagates our own cancellation, not the pump's

    async def _show(self, text: str, *, final: bool) -> None:
        """Make the visible messages equal ``split(text)``: edit what changed, post what is new."""
        text = text or PLACEHOLDER
        if self._filter is not None:
            text = self._filter(text)
        chunks = split_message(text, self.reply.max_chars, self.reply.measure)
        if len(chunks) < len(self._shown):
            chunks += ["…"] * (len(self._shown) - len(chunks))
        deadline = self._clock() + FINAL_DEADLINE
        failures = 0
        for index, chunk in enumerate(chunks):
            if index < len(self._shown) and self._shown[index] == chunk:
                continue
            while True:
                await self.budget.acquire(float("-inf") if final else self._last_edit)
                try:
                    # Shielded: cancelling the pump must not lose a posted message's id; the
                    # lock makes the final edit wait for an edit still in flight.
                    await asyncio.shield(self._locked_apply(index, chunk))
                    break
                except RateLimited as err:
                    self.stats.rate_limited += 1
                    self.budget.pause(err.retry_after)
                    if not final or self._clock() > deadline:
                        raise
                    await asyncio.sleep(err.retry_after)
                except Exception:
                    # The final edit always lands: a transient platform error (a reset
                    # connection, a 5xx) is retried with backoff until the deadline.
                    if not final or self._clock() > deadline:
                        raise
                    failures += 1
                    log.warning("final edit failed (attempt %d); retrying", failures, exc_info=True)
                    await asyncio.sleep(min(30.0, 0.5 * 2**failures))
        self._last_edit = self._clock()

    async def _locked_apply(self, index: int, chunk: str) -> None:
        async with self._io_lock:
            await self._apply(index, chunk)

    async def _apply(self, index: int, chunk: str) -> None:
        if index < len(self._shown):
            await self.reply.edit(self.stats.message_ids[index], chunk)
            self._shown[index] = chunk
            self.stats.edits += 1
        else:
            message_id = await self.reply.post_continuation(chunk)
            self._shown.append(chunk)
            self.stats.message_ids.append(message_id)
            self.stats.posts += 1
