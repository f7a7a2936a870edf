"""Showing a reply while the model writes it: coalesced edits, a shared budget, a final edit.

The streamer owns what the user sees. Deltas arrive far faster than any platform accepts edits,
so they only mark the view dirty; one pump task turns the latest view into at most one edit per
``edit_interval`` per reply, and only with a token from the scope's shared
:class:`~botkit.streaming.budget.EditBudget`. Every platform call goes through the one
:class:`~botkit.streaming.retry.RetryPolicy`: the placeholder and the final view (with its
continuation messages) jump the queue and land, retried through 429s and transient errors; a
streaming edit is tried once, since the next edit supersedes it, and its 429 pauses the budget.

A ``text_filter`` (a plugin's redaction, say) sees every text before it is shown: the placeholder,
each partial view, the final text and the failure text, always whole, before it is split into
messages.

A persona's :class:`~botkit.streaming.notices.Notices` are the streamer's to show: the
before-notice on top of the placeholder and of every partial view (added once per edit, not per
token), the after-notice under any answer text a failure leaves shown (the final text of a
complete answer carries it already: :func:`botkit.pipeline.turns.final_text`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from botkit.events import LiveReply, RateLimited, TransientPlatformError
from botkit.streaming.budget import EditBudget
from botkit.streaming.formatting import quote, split_message
from botkit.streaming.notices import NO_NOTICES, Notices, append_notice, before_view
from botkit.streaming.retry import FIRST, RetryPolicy

log = logging.getLogger("botkit.streaming.streamer")

#: How a persona's reasoning is shown while it streams (``reasoning_display`` in its front matter).
ReasoningDisplay = Literal["hidden", "thinking", "quoted"]

#: The first message of every reply, shown at once.
PLACEHOLDER = "_Thinking…_"


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
    """What the reply has posted so far: its messages' platform ids, first one first."""

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
        text_filter: Callable[[str], str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        notices: Notices = NO_NOTICES,
    ) -> None:
        self.reply = reply
        self.notices = notices
        self.budget = budget
        self.text_filter = text_filter
        self._calls = RetryPolicy(budget, clock=clock)
        self.edit_interval = edit_interval
        self.display = display
        self.thinking_interval = thinking_interval
        self._clock = clock
        self._view = _View()
        self._shown: list[str] = []
        self._last_edit = 0.0  # when the visible text last changed (the budget's priority)
        self._last_failure = 0.0  # when a streaming edit last failed (paces the next one too)
        self._dirty = asyncio.Event()
        self._closing = False
        self._pump: asyncio.Task[None] | None = None
        self._io_lock = asyncio.Lock()
        self.stats = StreamStats()

    # -- input side -------------------------------------------------------------------------
    async def start(self, placeholder: str = PLACEHOLDER) -> str:
        """Post the placeholder now (users see a reaction within a second) and start pumping.

        The persona's before-notice is on top of it from this first message on.
        """
        message_id = await self.post_first(before_view(placeholder, self.notices.before))
        self._last_edit = self._clock()
        self._pump = asyncio.create_task(self._run_pump(), name="botkit-reply-pump")
        return message_id

    async def post_first(self, text: str | None = None) -> str:
        """Post the reply's first message and return its id, without streaming anything yet.

        Without ``text``: the placeholder under the persona's before-notice, as :meth:`start` shows it.

        It draws on the scope's budget like every edit (platforms such as Discord count posts
        and edits in one per-channel limit), ahead of every edit in line, and lands: a 429
        pauses the budget and is waited out, a transient error is retried, until the deadline.
        """
        shown = self._filtered(before_view(PLACEHOLDER, self.notices.before) if text is None else text)
        message_id = await self._calls.land(lambda: self.reply.post_placeholder(shown), priority=FIRST)
        self._shown = [shown]
        self.stats.message_ids = [message_id]
        return message_id

    async def notice(self, text: str) -> bool:
        """Show ``text`` to the asker alone (:meth:`LiveReply.post_notice`); False: show it as a
        reply instead.

        A notice is retried like the final edit (it is the whole answer to the user), but it
        does not draw on the edit budget: it is not an edit of a message in the scope (Slack's
        ``chat.postEphemeral``, a Discord interaction's follow-up). Its 429 still pauses the
        budget. If it cannot be shown privately in time, the reply shows it, under the same policy.
        """
        shown = self._filtered(text)
        try:
            return await self._calls.land(lambda: self.reply.post_notice(shown), priority=None)
        except Exception:
            log.warning("a private notice could not be shown; showing it as the reply", exc_info=True)
            return False

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

    async def finish(self, final_text: str, *, feedback_turn: int | None = None) -> list[str]:
        """Land ``final_text`` as the reply (split over messages as needed); return message ids.

        ``feedback_turn``: a complete model answer whose last message gets 👍/👎 buttons for
        that turn (:meth:`LiveReply.edit_with_feedback`), where the reply can show them.
        """
        if not self.reply.feedback_buttons:
            feedback_turn = None
        await self._land(final_text, feedback_turn)
        await self._close(self.reply.finish)
        return list(self.stats.message_ids)

    async def fail(self, error_text: str) -> list[str]:
        """End the reply with what was shown so far plus a visible, specific error.

        Answer text shown so far keeps the persona's after-notice: a partial legal answer without
        its disclaimer is worse than none. A bare error (no answer text) gets none.
        """
        partial = append_notice(self._view.answer.strip(), self.notices.after)
        await self._land(f"{partial}\n\n{error_text}" if partial else error_text)
        await self._close(functools.partial(self.reply.fail, self._filtered(error_text)))
        return list(self.stats.message_ids)

    async def _land(self, final_text: str, feedback_turn: int | None = None) -> None:
        self._view.final = final_text
        await self._stop_pump()
        await self._show(self._render(), final=True, feedback_turn=feedback_turn)

    async def _close(self, close: Callable[[], Awaitable[None]]) -> None:
        """The adapter's last call (stop a native stream...): retried like the final edit, without
        drawing on the budget; the answer is already visible, so a failure is only logged."""
        try:
            await self._calls.land(close, priority=None)
        except Exception:
            log.exception("closing the reply failed")

    def _filtered(self, text: str) -> str:
        return self.text_filter(text) if self.text_filter is not None else text

    # -- rendering ---------------------------------------------------------------------------
    def _render(self) -> str:
        view = self._view
        if view.final is not None:
            return self._render_answer_part(final=True)
        return before_view(self._render_partial(), self.notices.before)

    def _render_partial(self) -> str:
        view = self._view
        if view.notice is not None:
            partial = self._render_answer_part(final=False).strip()
            return f"{partial}\n\n{view.notice}" if partial else view.notice
        if view.answer:
            return self._render_answer_part(final=False)
        if view.reasoning and self.display == "quoted":
            room = self.reply.max_chars - 200 - len(self.notices.before or "")
            tail = view.reasoning[-max(room, 200) :]
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
            wait = max(self._last_edit, self._last_failure) + self.edit_interval - self._clock()
            if wait > 0:
                await asyncio.sleep(wait)
            if self._closing:
                return
            try:
                await self._show(self._render(), final=False)
            except TransientPlatformError as err:
                # Not retried: the next edit (the latest view, once the budget allows) supersedes
                # it. A 429 already paused the budget.
                if not isinstance(err, RateLimited):
                    log.warning("streaming edit failed (%s); the next edit supersedes it", err)
                    self._last_failure = self._clock()
                self._dirty.set()
            except Exception:
                log.exception("streaming edit refused; the final edit tries again")

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

    async def _show(self, text: str, *, final: bool, feedback_turn: int | None = None) -> None:
        """Make the visible messages equal ``split(filter(text))``: edit what changed, post what
        is new. The final view lands (each call retried); a streaming one is tried once. With
        ``feedback_turn`` the last message is edited once more with its buttons, changed or not."""
        shown = self._filtered(text or PLACEHOLDER) or PLACEHOLDER
        chunks = split_message(shown, self.reply.max_chars, self.reply.measure)
        if len(chunks) < len(self._shown):
            chunks += ["…"] * (len(self._shown) - len(chunks))
        last = len(chunks) - 1
        for index, chunk in enumerate(chunks):
            buttons = feedback_turn is not None and index == last
            if index < len(self._shown) and (buttons or self._shown[index] == chunk):
                continue  # unchanged, or edited below with its buttons in the same call
            apply = functools.partial(self._shielded_apply, index, chunk)
            if final:
                await self._calls.land(apply, priority=FIRST)
            else:
                await self._calls.once(apply, priority=self._last_edit)
        if feedback_turn is not None:
            with_buttons = functools.partial(self._shielded_apply, last, chunks[last], feedback_turn)
            await self._calls.land(with_buttons, priority=FIRST)
        self._last_edit = self._clock()

    def _shielded_apply(self, index: int, chunk: str, feedback_turn: int | None = None) -> Awaitable[None]:
        # Shielded: cancelling the pump must not lose a posted message's id; the lock makes the
        # final edit wait for an edit still in flight.
        return asyncio.shield(self._locked_apply(index, chunk, feedback_turn))

    async def _locked_apply(self, index: int, chunk: str, feedback_turn: int | None) -> None:
        async with self._io_lock:
            await self._apply(index, chunk, feedback_turn)

    async def _apply(self, index: int, chunk: str, feedback_turn: int | None = None) -> None:
        if feedback_turn is not None:
            if index >= len(self._shown):  # a new last message: posted, then given its buttons
                await self._apply(index, chunk)
            await self.reply.edit_with_feedback(self.stats.message_ids[index], chunk, feedback_turn)
            self._shown[index] = chunk
        elif index < len(self._shown):
            await self.reply.edit(self.stats.message_ids[index], chunk)
            self._shown[index] = chunk
        else:
            message_id = await self.reply.post_continuation(chunk)
            self._shown.append(chunk)
            self.stats.message_ids.append(message_id)
