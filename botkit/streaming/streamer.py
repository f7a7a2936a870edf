"""Showing a reply while the model writes it: coalesced edits, a shared budget, a final edit.

The streamer owns what the user sees. Deltas arrive far faster than any platform accepts edits,
so they only mark the view dirty; one pump task turns the latest view into at most one edit per
``edit_interval`` per reply, and only with a token from the scope's shared
:class:`~botkit.streaming.budget.EditBudget`. Every platform call goes through the one
:class:`~botkit.streaming.retry.RetryPolicy`: the placeholder and the final view (with its
continuation messages) jump the queue and land, retried through 429s and transient errors; a
streaming edit is tried once, since the next edit supersedes it, and its 429 pauses the budget.

Each kind of call draws on its own budget where the platform limits it separately
(:meth:`LiveReply.rate_scope <botkit.events.LiveReply.rate_scope>`): posts (the placeholder, continuations)
never wait behind edits. Nobody waits for the placeholder: :meth:`ReplyStreamer.begin` posts it
in the background while the model starts, and only the edits wait until it exists. When the edit
budget is backed up, the streamer takes the cheapest visible progress: a status-only update ("
Thinking… 3s") goes out only if an edit token is free at once, and the final answer of a
one-message reply is posted as a new message (then the placeholder is deleted, in the background,
on the delete budget) if that is sooner than waiting for an edit (:attr:`LiveReply.can_replace`).

When the edit budget cannot stream every live reply in its scope at all (more replies than it
has edits for within :data:`STREAM_HORIZON`: :meth:`EditBudget.crowded`), a reply whose adapter
can show a status line (:attr:`LiveReply.can_show_status`, Slack's
``assistant.threads.setStatus``) shows that instead of a placeholder, on its own budget, and its
final answer is posted as new messages, the last one with its feedback buttons in the same call
(:attr:`LiveReply.posts_with_buttons`): no edit at all, so the edit budget is left to the replies
that stream. With few replies, every reply streams its partial text as before
(``[slack] progress``: :data:`~botkit.events.ProgressMode`).

A ``text_filter`` (a plugin's redaction, say) sees every text before it is shown: the placeholder,
each partial view, the final text and the failure text, always whole, before it is split into
messages.

A ``view`` (a math turn's LaTeX-to-Unicode) shapes each whole text shown, before the filter;
what the streamer reports as the partial answer, and what is stored, stays as the model wrote it.

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
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from botkit.events import Attachment, CallKind, LiveReply, RateLimited, RateScope, TransientPlatformError
from botkit.markers import Role
from botkit.streaming.budget import BudgetRegistry, EditBudget
from botkit.streaming.formatting import quote, split_message
from botkit.streaming.notices import NO_NOTICES, Notices, append_notice, before_view
from botkit.streaming.retry import FIRST, RetryPolicy

log = logging.getLogger("botkit.streaming.streamer")

#: How a persona's reasoning is shown while it streams (``reasoning_display`` in its front matter).
ReasoningDisplay = Literal["hidden", "thinking", "quoted"]

#: The first message of every reply, shown at once.
PLACEHOLDER = "_Thinking…_"

#: Seconds over which a reply should get at least one edit of its own to be worth streaming:
#: about how long a reply streams. With more live replies in a scope than the edit budget grants
#: in this time, a new reply shows a status line instead (:meth:`EditBudget.crowded`).
STREAM_HORIZON = 20.0


@runtime_checkable
class StreamsFirst(Protocol):
    """A reply that can show its first message without its channel's post budget (Slack's
    ``chat.startStream``, on a budget of its own: ``[slack] streaming = "auto"``)."""

    def stream_first(self) -> RateScope | None:
        """Show the first message that way if the platform's budget for it has room now: the
        scope that message then draws on; None: post it as usual. Where the platform then
        refuses that way, the call showing the message raises :class:`PostInstead`."""
        ...


class PostInstead(Exception):
    """The first message could not be shown the way :meth:`StreamsFirst.stream_first` chose
    (the platform refused it, nothing is shown): the core posts it on the post budget."""


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
    replaced: int = 0  # final texts posted as a new message instead of an edit
    skipped_status: int = 0  # status-only updates left out because no edit token was free
    status_line: bool = False  # shown as a status line (LiveReply.show_status), not a placeholder


#: Background deletions of replaced placeholders, kept referenced until they end.
_CLEANUPS: set[asyncio.Task[None]] = set()


def _buttons_done(task: asyncio.Task[None]) -> None:
    _CLEANUPS.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.warning("the feedback buttons could not be added to a reply", exc_info=task.exception())


class ReplyStreamer:
    """Turns reasoning/answer deltas into placeholder, edits, continuations and a final edit."""

    # Crash windows (botkit.repair): told the final view's messages (as the platform will
    # show them, in each form it may: LiveReply.rendered_views) and the id of the message its
    # first one edits in place (None: posted anew, by the view or in its place: LiveReply.moves)
    # before the first call that shows it goes out, and each message a text posted anew
    # replaced (False) and its deletion once it landed (True).
    # Each is awaited: the record is on disk before the call that relies on it goes out.
    # Set per instance by its caller (botkit.pipeline.turns); None: nobody is told.
    before_final: Callable[[list[list[str]], str | None], Awaitable[None]] | None = None
    strays: Callable[[str, bool], Awaitable[None]] | None = None
    # Told every message id of the reply each time a continuation message was posted (not
    # awaited: the record is started, the stream goes on), so that a restart knows all of a
    # long reply's messages, not only its first (botkit.repair).
    continued: Callable[[list[str]], None] | None = None

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
        budgets: BudgetRegistry | None = None,
        view: Callable[[str, bool], str] | None = None,
        first_text_at_once: bool = False,
    ) -> None:
        """``budget`` is the edit budget; with ``budgets``, posts and deletions draw on the scopes
        the reply names for them (:meth:`LiveReply.rate_scope`), otherwise on ``budget`` too.

        ``first_text_at_once``: the first partial view with model text in it (the answer's
        first words) is edited in as soon as it comes if an edit token is free at once, instead
        of waiting for the edit interval since the placeholder (or the last "Thinking…" edit):
        the user sees the answer start when the model starts it. Later edits keep the interval."""
        self.reply = reply
        self.view = view  # (text, final) -> what is shown, e.g. LaTeX as Unicode; never what is stored
        self.notices = notices
        self.budget = budget
        self.text_filter = text_filter

        self._budgets = budgets
        self._scope_epoch = reply.scope_epoch
        self._clock = clock
        self._use_budgets(budget)
        self._status_mode = False  # a status line stands in for the placeholder: no edits
        self._status_calling = False  # the status call is in flight (not waiting for a token)
        self._stream_ended: Callable[[], None] | None = None  # counts it out of budget.streams
        self._final_paid: Callable[[], None] | None = None  # counts it out of budget.owed
        self._placeholder: asyncio.Task[str] | None = None
        self._first_posts: RetryPolicy | None = None  # the first message's, where not a post (StreamsFirst)
        self.edit_interval = edit_interval
        self.display = display
        self.thinking_interval = thinking_interval
        self.first_text_at_once = first_text_at_once
        self._text_shown = False  # a partial view with model text went out (see first_text_at_once)
        self._text_came = asyncio.Event()  # the answer's first text arrived (wakes _pace)
        self._view = _View()
        self._shown: list[str] = []
        self._last_edit = 0.0  # when the visible text last changed (the budget's priority)
        # The final view told to before_final with its first message edited in place (the views,
        # that message's id), until a call on that message goes out: see _anew_if_moved.
        self._in_place: tuple[list[list[str]], str] | None = None
        self._last_failure = 0.0  # when a streaming edit last failed (paces the next one too)
        self._dirty = asyncio.Event()
        self._closing = False
        self._pump: asyncio.Task[None] | None = None
        self._io_lock = asyncio.Lock()
        self.stats = StreamStats()

    def _use_budgets(self, budget: EditBudget) -> None:
        """Edits draw on ``budget``; posts, deletions and status lines on the scopes the reply
        names for them (with a registry; otherwise on ``budget`` too)."""
        reply, budgets, clock = self.reply, self._budgets, self._clock
        edit_scope = reply.rate_scope("edit")

        def policy(kind: CallKind) -> RetryPolicy:
            scope = reply.rate_scope(kind)
            if budgets is None or scope == edit_scope:
                return RetryPolicy(budget, clock=clock)
            return RetryPolicy(budgets.for_scope(scope), clock=clock)

        self.budget = budget
        self._calls = RetryPolicy(budget, clock=clock)
        self._posts = policy("post")
        self._deletes = policy("delete")
        self._statuses = policy("status")

    def _follow_scopes(self) -> None:
        """The reply's scopes moved since they were chosen (:attr:`LiveReply.scope_epoch`: a
        Discord slash reply that outlived its token goes on in the channel): the calls from
        now on draw on the budgets of the new scopes, and the reply streams there (counted in
        the new edit budget's streams and owed finals, out of the old one's)."""
        epoch = self.reply.scope_epoch
        if epoch == self._scope_epoch or self._budgets is None:
            return
        self._scope_epoch = epoch
        budget = self._budgets.for_scope(self.reply.rate_scope("edit"))
        if budget is self.budget:
            return
        # (A final view's move: its stream was counted out already; its final is still owed.)
        streaming, owing = self._stream_ended is not None and not self._closing, self._final_paid is not None
        for release in (self._stream_ended, self._final_paid):
            if release is not None:
                release()
        self._use_budgets(budget)
        if streaming:
            self._stream_ended = budget.stream_started()
            weakref.finalize(self, self._stream_ended)
        if owing:
            self._final_paid = None
            self._owe_final()

    # -- input side -------------------------------------------------------------------------
    async def start(self, placeholder: str = PLACEHOLDER) -> str:
        """Post the placeholder now (users see a reaction within a second), start pumping, and
        return the placeholder's id once it is posted. :meth:`begin` does not wait for it."""
        self.begin(placeholder)
        return await self.placeholder_posted()

    def begin(self, placeholder: str = PLACEHOLDER) -> None:
        """Post the placeholder in the background and start pumping; return at once, so the
        model's stream starts while the placeholder is on its way. Edits wait until it exists.

        The persona's before-notice is on top of it from this first message on.
        """
        first = before_view(placeholder, self.notices.before)
        self._stream_ended = self.budget.stream_started()
        # Counted out when the reply lands, or when it is dropped without landing (a turn that
        # died past every handler), so a leak never leaves the scope "crowded" for good.
        weakref.finalize(self, self._stream_ended)
        if self._wants_status():
            self._status_mode = True
            self._placeholder = asyncio.create_task(self._status_first(first), name="botkit-reply-status")
        else:
            self._owe_final()
            self._placeholder = asyncio.create_task(
                self.post_first(first, live=True), name="botkit-reply-placeholder"
            )
        self._pump = asyncio.create_task(self._run_pump(), name="botkit-reply-pump")

    def _wants_status(self) -> bool:
        """A status line instead of a placeholder: the adapter can show one, the persona has no
        before-notice (it belongs on top of the first message), and ``progress`` says always, or
        ``auto`` and the edit budget is too crowded to stream this reply."""
        reply = self.reply
        if not reply.can_show_status or self.notices.before or self.stats.message_ids:
            return False
        if reply.progress == "status":
            return True
        return reply.progress == "auto" and self.budget.crowded(STREAM_HORIZON)

    async def _status_first(self, placeholder: str) -> str:
        """Show the reply's status line (on the status budget) and return "" (no message yet);
        where the platform refuses, post ``placeholder`` as usual and stream into it."""

        async def call() -> bool:
            # Only while the call is in flight may the final not cancel it (it could land after
            # the answer and leave the status up); waiting for a token or a 429's pause, it may.
            self._status_calling = True
            try:
                return await self.reply.show_status(self.reply.status_text)
            finally:
                self._status_calling = False

        try:
            shown = await self._statuses.land(call, priority=FIRST)
        except Exception:
            log.warning("the status line could not be shown; posting a placeholder", exc_info=True)
            shown = False
        if shown:
            self.stats.status_line = True
            self._last_edit = self._clock()
            return ""
        self._status_mode = False
        self._owe_final()
        return await self.post_first(placeholder, live=True)

    def _owe_final(self) -> None:
        """This reply's final will be an edit on the edit budget: a window budget keeps a slot
        for it (partial edits of other replies are held back first), until the final landed."""
        if self._final_paid is None:
            self._final_paid = self.budget.owe_final()
            weakref.finalize(self, self._final_paid)

    @property
    def begun(self) -> bool:
        """The placeholder is posted or on its way: the reply, not a notice, is the answer now."""
        return self._placeholder is not None or bool(self.stats.message_ids)

    async def placeholder_posted(self) -> str:
        """The placeholder's id, once :meth:`begin`'s post landed (raises what refused it); ""
        when a status line stands in for it (no message until the final one)."""
        assert self._placeholder is not None, "begin() first"
        return await asyncio.shield(self._placeholder)

    async def post_first(self, text: str | None = None, *, live: bool = False) -> str:
        """Post the reply's first message and return its id, without streaming anything yet.

        Without ``text``: the placeholder under the persona's before-notice, as :meth:`start` shows it.
        ``live`` (:meth:`begin`): what the view shows by the time the post's token comes, if the
        model wrote answer text meanwhile (or finished: a channel's posts backed up behind other
        replies' can take longer than an answer), else ``text``. Then the first message already
        shows it: one call instead of a placeholder and an edit, and the text sooner.

        It draws on the reply's post budget (on Discord the channel's message-create bucket;
        on Slack ``chat.postMessage``'s per channel), ahead of every edit in line, and lands: a
        429 pauses that budget and is waited out, a transient error is retried, until the deadline.
        """
        shown = self._filtered(before_view(PLACEHOLDER, self.notices.before) if text is None else text)
        posted = [shown]

        async def post() -> str:
            if live and self._has_text():
                chunks = self._chunks_now()
                posted[0] = chunks[0]
                self._text_shown = True
                final = self._view.final is not None
                self._mark("final" if final else "partial")
                if final:  # a crash from here on: the restart pass must know it shows the final
                    await self._tell(self.before_final, self.reply.rendered_views(chunks), None)
            else:
                posted[0] = shown
            return await self.reply.post_placeholder(posted[0])

        message_id = await self._posts.land(post, priority=FIRST)
        # A message posted before handed back instead (LiveReply.handed_back: a retried post
        # whose first response was lost): it shows what it showed then, so the next view edits it.
        handed = self.reply.handed_back
        self._shown = [handed.text if handed is not None and handed.message_id == message_id else posted[0]]
        self.stats.message_ids = [message_id]
        self._last_edit = self._clock()
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
        self._text_came.set()
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

    async def attach(self, attachment: Attachment) -> bool:
        """Show ``attachment`` with the finished reply (:meth:`LiveReply.attach`): retried like a
        notice, without drawing on the edit budget. False if the platform cannot show files or
        refused; the failure is logged and the reply, already final, stays as it is."""
        try:
            return await self._calls.land(lambda: self.reply.attach(attachment), priority=None)
        except Exception:
            log.warning("an attachment could not be shown with the reply", exc_info=True)
            return False

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
        if self._stream_ended is not None:
            self._stream_ended()
        placeholder = self._placeholder
        if (
            self._status_mode
            and placeholder is not None
            and not placeholder.done()
            and not self._status_calling
        ):
            placeholder.cancel()  # still waiting for a status token: the answer needs none
        await self._placeholder_settled()
        try:
            try:
                await self._show(self._render(), final=True, feedback_turn=feedback_turn)
            except PostInstead:
                self._first_posts = None  # refused that way: a post on the channel's budget after all
                await self._show(self._render(), final=True, feedback_turn=feedback_turn)
        finally:
            if self._final_paid is not None:
                self._final_paid()

    def _first_without_post(self) -> None:
        """A status-line reply's final is its first message: where the channel's post budget is
        contended (a post would wait) and the reply can show it otherwise (:class:`StreamsFirst`),
        it draws on that way's budget instead, leaving the channel's posts to the others. Called
        just before that message's call draws its token, with no await between: replies ending
        together see each other's draws (the fourth of a burst of 3 finds none left)."""
        reply = self.reply
        if self._budgets is None or not isinstance(reply, StreamsFirst) or self._posts.budget.free_now():
            return
        scope = reply.stream_first()
        if scope is not None:
            self._first_posts = RetryPolicy(self._budgets.for_scope(scope), clock=self._clock)

    async def _placeholder_settled(self) -> bool:
        """Wait for a placeholder still on its way; False if it could not be posted (the final
        text is then posted as a new message)."""
        if self._placeholder is None:
            return bool(self.stats.message_ids)
        try:
            await asyncio.shield(self._placeholder)
        except asyncio.CancelledError:
            if not self._placeholder.cancelled():
                raise
            return False
        except Exception:
            log.warning("the placeholder could not be posted; the reply posts its text anew", exc_info=True)
            return False
        return True

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
        if not await self._placeholder_settled() or self._status_mode:
            return  # nothing to edit: the final text is posted anew
        while not self._closing:
            timeout = self.thinking_interval if self._thinking_clock_running() else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), timeout)
            if self._closing:
                return
            self._dirty.clear()
            await self._pace()
            if self._closing:
                return
            if self._status_only() and not self.budget.free_now():
                # The cheapest progress is none: the placeholder already says the reply is
                # coming, and an edit token is worth more to a reply with answer text.
                self.stats.skipped_status += 1
                self._last_failure = self._clock()  # look again an edit interval later
                continue
            try:
                with_text = not self._status_only()
                await self._show(self._render(), final=False)
                self._text_shown = self._text_shown or with_text
            except TransientPlatformError as err:
                # Not retried: the next edit (the latest view, once the budget allows) supersedes
                # it. A 429 already paused the budget.
                if not isinstance(err, RateLimited):
                    log.warning("streaming edit failed (%s); the next edit supersedes it", err)
                    self._last_failure = self._clock()
                self._dirty.set()
            except Exception:
                log.exception("streaming edit refused; the final edit tries again")

    async def _pace(self) -> None:
        """Wait until the next partial edit may go (:meth:`_edit_wait`). While no model text has
        been shown, the answer's first text cuts an interval wait short (a "Thinking…" view had
        the pump waiting already when it came)."""
        wait = self._edit_wait()
        if wait > 0 and self.first_text_at_once and not self._text_shown:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._text_came.wait(), wait)
            wait = self._edit_wait()
        if wait > 0:
            await asyncio.sleep(wait)

    def _edit_wait(self) -> float:
        """Seconds until the next partial edit may go: an edit interval after the last edit (or
        failure); the first view with model text only after a failure's interval, when
        :attr:`first_text_at_once` and an edit token is free now (nobody waits for one)."""
        since = max(self._last_edit, self._last_failure)
        if (
            self.first_text_at_once
            and not self._text_shown
            and not self._status_only()
            and self.budget.free_now()
        ):
            since = self._last_failure
        return since + self.edit_interval - self._clock()

    def _has_text(self) -> bool:
        """The model's answer (partial or final) is there to show."""
        return self._view.final is not None or bool(self._view.answer)

    def _chunks_now(self) -> list[str]:
        """The view's messages as :meth:`_show` would show them now."""
        final = self._view.final is not None
        text = self._render() or PLACEHOLDER
        shown = self._filtered(self.view(text, final) if self.view is not None else text) or PLACEHOLDER
        return split_message(shown, self.reply.max_chars, self.reply.measure)

    def _status_only(self) -> bool:
        """The next partial view has no model text in it (a thinking clock, a status line)."""
        view = self._view
        return not view.answer and view.notice is None and not (self.display == "quoted" and view.reasoning)

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
        text = text or PLACEHOLDER
        shown = self._filtered(self.view(text, final) if self.view is not None else text) or PLACEHOLDER
        chunks = split_message(shown, self.reply.max_chars, self.reply.measure)
        self._mark("final" if final else "partial")
        self._follow_scopes()
        if self._replace_sooner(chunks, final=final):
            if final:
                await self._tell(self.before_final, self.reply.rendered_views(chunks), None)
            with_buttons = feedback_turn if final and self.reply.posts_with_buttons else None
            await _shield(self._replace(chunks, final=final, feedback_turn=with_buttons))
            if feedback_turn is not None and with_buttons is None:
                # The edit budget is what is short here: the buttons come when it allows, and
                # nothing (the final write, the thread's next turn) waits for them.
                task = asyncio.create_task(
                    self._add_buttons(chunks, feedback_turn), name="botkit-reply-buttons"
                )
                _CLEANUPS.add(task)
                task.add_done_callback(_buttons_done)
            return
        if len(chunks) < len(self._shown):
            chunks += ["…"] * (len(self._shown) - len(chunks))
        if final:
            await self._intend_final(self.reply.rendered_views(chunks), self._first_in_place())
        last = len(chunks) - 1
        posted_buttons = False
        for index, chunk in enumerate(chunks):
            buttons = feedback_turn is not None and index == last
            if index < len(self._shown) and (buttons or self._shown[index] == chunk):
                continue  # unchanged, or edited below with its buttons in the same call
            if buttons and self.reply.posts_with_buttons:
                # A new last message: posted with its buttons in one call, not a queued edit.
                apply = functools.partial(self._shielded_apply, index, chunk, feedback_turn)
                posted_buttons = True
            else:
                apply = functools.partial(self._shielded_apply, index, chunk)
            if final and index == 0 and self._status_mode and not self._shown:
                self._first_without_post()  # decided here: nothing awaited before its token is drawn
            calls = self._policy_for(index)
            if final:
                await calls.land(apply, priority=FIRST, follow=functools.partial(self._following, index))
            else:
                await calls.once(apply, priority=self._last_edit)
        if feedback_turn is not None and not posted_buttons:
            await self._add_buttons(chunks, feedback_turn)
        self._last_edit = self._clock()

    async def _intend_final(self, views: list[list[str]], first: str | None) -> None:
        """Tell ``before_final`` the view, its first message edited in place as ``first``
        (None: anew); kept until that message's call goes out (:meth:`_anew_if_moved`)."""
        self._in_place = None if first is None else (views, first)
        await self._tell(self.before_final, views, first)

    async def _anew_if_moved(self, index: int) -> None:
        """Before a call on the view's first message: where the intent said it is edited in
        place but the reply now shows it in a message posted in its place (a Discord slash reply
        whose token aged out while its final edit waited, a 429's Retry-After: the edit is its
        first channel message, :meth:`LiveReply.moves`), the intent is told again, anew, so the
        restart looks for that message by its text (its id may never come back)."""
        intended = self._in_place
        if index != 0 or intended is None or not self.reply.moves(intended[1]):
            return
        self._in_place = None
        await self._tell(self.before_final, intended[0], None)

    def _first_in_place(self) -> str | None:
        """The id of the message a view shown by edits has first, if that message shows it (it is
        edited, or left as it is); None where the view posts its first message anew (no first
        message yet: a placeholder that could not be posted, a status line standing in for it)
        or the reply shows it in a message posted in its place (:meth:`LiveReply.moves`)."""
        ids = self.stats.message_ids
        if not self._shown or not ids or not ids[0] or self.reply.moves(ids[0]):
            return None
        return ids[0]

    def _mark(self, role: Role) -> None:
        """What the reply's next calls show, on its marker (placeholder, partial, final)."""
        if self.reply.marker is not None:
            self.reply.marker = self.reply.marker.as_role(role)

    @staticmethod
    async def _tell(hook: Callable[..., Awaitable[None]] | None, *args: object) -> None:
        """A crash-window hook (a small durable file write, off the event loop), awaited so its
        record is on disk before the next call: its failure is logged, never the reply's."""
        if hook is None:
            return
        try:
            await hook(*args)
        except Exception:
            log.exception("a reply's crash-window record could not be written")

    async def _add_buttons(self, chunks: list[str], feedback_turn: int) -> None:
        """The last message once more with its 👍/👎 buttons (on the edit budget: the answer is
        visible already; a final posted anew gets them when the budget allows)."""
        last = len(chunks) - 1
        with_buttons = functools.partial(self._shielded_apply, last, chunks[last], feedback_turn)
        following = functools.partial(self._following, last)
        await self._policy_for(last).land(with_buttons, priority=FIRST, follow=following)

    def _following(self, index: int) -> RetryPolicy:
        """The policy a retry of a call showing message ``index`` draws on: the reply's scopes
        followed first (:meth:`_follow_scopes`), since they can move while a final call waits
        out a 429 (a Discord slash reply's token ages out: the retry is its first channel
        message, on the channel's post budget, not on the interaction's edit budget)."""
        self._follow_scopes()
        return self._policy_for(index)

    def _policy_for(self, index: int) -> RetryPolicy:
        """The budget a call showing message ``index`` draws on: a new message's is the post
        budget; an edit's is the edit budget, unless the platform makes that edit a new message
        (:meth:`LiveReply.edit_kind`: a Discord slash reply's first channel message once its
        token aged out), which then counts on the post budget like every first post."""
        if index >= len(self._shown):
            return self._first_posts if index == 0 and self._first_posts is not None else self._posts
        if self.reply.edit_kind(self.stats.message_ids[index]) == "post":
            return self._posts
        return self._calls

    def _replace_sooner(self, chunks: list[str], *, final: bool) -> bool:
        """Whether posting the view as a new message shows it sooner than editing: the reply is
        one message that would change, the adapter can delete it, and the edit budget's queue is
        longer than the post budget's. A partial view is posted anew once at most, to bring the
        first model text out of a placeholder, and only with a post token free at once (a final
        view: whenever that is sooner)."""
        if not self.reply.can_replace or len(self._shown) != 1 or chunks[0] == self._shown[0]:
            return False
        if self._posts.budget is self._calls.budget:
            return False
        if final:
            return self._calls.budget.expected_wait(FIRST) > self._posts.budget.expected_wait(FIRST)
        # A partial view only takes a post token that is free now: it must never queue ahead of
        # (or hold up) another reply's placeholder or final.
        if len(chunks) != 1 or self.stats.replaced or self._status_only():
            return False
        # An endless wait: a window budget holds partial edits back for the finals it owes; the
        # post token is then worth more to a final (of a status-line reply) than to partial text.
        wait = self._calls.budget.expected_wait(self._last_edit)
        return self._posts.budget.free_now() and 0 < wait < float("inf")

    async def _replace(self, chunks: list[str], *, final: bool, feedback_turn: int | None = None) -> None:
        """Post ``chunks`` as new messages, then delete the old first message in the background
        (on the delete budget: the new text is visible already, so nothing waits for it). A
        final view lands; a partial one is tried once (the next edit supersedes it). Run
        shielded, like every call that may post: a cancelled pump never loses a posted id. With
        ``feedback_turn`` the last message is posted with its buttons
        (:meth:`LiveReply.post_with_feedback`)."""
        async with self._io_lock:  # an edit of the old message still in flight ends first
            old = self.stats.message_ids[0]
            posted: list[str] = []
            try:
                for index, chunk in enumerate(chunks):
                    post: Callable[[], Awaitable[str]] = functools.partial(
                        self.reply.post_continuation, chunk
                    )
                    if feedback_turn is not None and index == len(chunks) - 1:
                        post = functools.partial(self.reply.post_with_feedback, chunk, feedback_turn)
                    if final:
                        posted.append(await self._posts.land(post, priority=FIRST))
                    else:
                        posted.append(await self._posts.once(post, priority=self._last_edit))
            except RateLimited as err:
                self._posts.budget.pause(err.retry_after)  # even if whoever waited was cancelled
                raise
            self._shown, self.stats.message_ids = list(chunks), posted
            await self._tell(self.strays, old, False)
        self.stats.replaced += 1
        self._last_edit = self._clock()
        task = asyncio.create_task(self._delete(old), name="botkit-reply-delete-placeholder")
        _CLEANUPS.add(task)
        task.add_done_callback(_CLEANUPS.discard)

    async def _delete(self, message_id: str) -> None:
        try:
            await self._deletes.land(lambda: self.reply.delete(message_id))
        except Exception:
            log.warning("a replaced message could not be deleted", exc_info=True)
            return
        await self._tell(self.strays, message_id, True)

    def _shielded_apply(self, index: int, chunk: str, feedback_turn: int | None = None) -> Awaitable[None]:
        # Shielded: cancelling the pump must not lose a posted message's id; the lock makes the
        # final edit wait for an edit still in flight.
        return _shield(self._locked_apply(index, chunk, feedback_turn))

    async def _locked_apply(self, index: int, chunk: str, feedback_turn: int | None) -> None:
        async with self._io_lock:
            # The budget the call draws on (an edit the platform makes a post: the post budget),
            # read before the call moves the message (LiveReply.edit_kind).
            budget = self._policy_for(index).budget
            # Its token may predate a 429 that came while it waited for the lock (behind this
            # reply's edit in flight): the pause holds it too.
            paused = budget.paused_for()
            if paused > 0:
                await asyncio.sleep(paused)
            await self._anew_if_moved(index)
            try:
                await self._apply(index, chunk, feedback_turn)
            except RateLimited as err:
                # Paused here, not only by the retry policy: if the pump that waited for this
                # call was cancelled meanwhile, its 429 must still hold the scope off.
                budget.pause(err.retry_after)
                raise

    async def _apply(self, index: int, chunk: str, feedback_turn: int | None = None) -> None:
        if feedback_turn is not None:
            if index >= len(self._shown):
                if self.reply.posts_with_buttons:  # a new last message, with its buttons in one call
                    message_id = await self.reply.post_with_feedback(chunk, feedback_turn)
                    self._posted(chunk, message_id)
                    return
                await self._apply(index, chunk)  # a new last message: posted, then given its buttons
            await self.reply.edit_with_feedback(self.stats.message_ids[index], chunk, feedback_turn)
            self._shown[index] = chunk
        elif index < len(self._shown):
            await self.reply.edit(self.stats.message_ids[index], chunk)
            self._shown[index] = chunk
        else:
            self._posted(chunk, await self.reply.post_continuation(chunk))

    def _posted(self, chunk: str, message_id: str) -> None:
        """A new message of the reply is up: shown, and its id told (:attr:`continued`)."""
        self._shown.append(chunk)
        self.stats.message_ids.append(message_id)
        if self.continued is not None:
            self.continued(list(self.stats.message_ids))


def _shield(call: Awaitable[None]) -> Awaitable[None]:
    """``asyncio.shield`` whose inner task's error counts as seen when its waiter was cancelled
    (the error was handled inside: a 429 paused the budget, a refusal the final edit retries)."""
    inner = asyncio.ensure_future(call)
    inner.add_done_callback(lambda task: task.cancelled() or task.exception())
    return asyncio.shield(inner)
