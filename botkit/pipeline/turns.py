"""A model turn from the chain's go-ahead to a stored, fully shown answer.

The runner owns the order of things the user sees: the placeholder at once, the thread's
previous turn finished first (its answer is in this one's history), the answer streamed, and a
final edit that always lands — shielded, so a shutdown during it cannot leave the reply on a
partial view or the row "streaming". The parts are units of their own: :mod:`.gate` (one turn
per thread), :mod:`.context` (fitting history), :mod:`.generation` (the model call and its
recoveries), :mod:`.recorder` (the rows).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from botkit.adapter import USER_CANCELLED
from botkit.events import LiveReply
from botkit.llm.errors import BackendError
from botkit.llm.pool import BackendPool
from botkit.markers import ReplyMarker
from botkit.mathtext.directive import is_math_turn, with_directive
from botkit.mathtext.render import formula_image, has_formulas
from botkit.mathtext.unicode import latex_to_unicode, render_unicode
from botkit.pipeline.chain import MiddlewareChain
from botkit.pipeline.checkpoints import CHECKPOINT_INTERVAL, Checkpoints
from botkit.pipeline.context import FittedPrompt, fit_history, prompt_room
from botkit.pipeline.filters import TextFilters
from botkit.pipeline.gate import Place, ThreadGates
from botkit.pipeline.generation import Attempt, Generation
from botkit.pipeline.recorder import FinalWrites, TurnRecorder
from botkit.plugins.api import Refusal, Request, TurnResult, TurnStatus
from botkit.store.spool import WriteSpool
from botkit.streaming.budget import BudgetRegistry
from botkit.streaming.formatting import final_answer_line
from botkit.streaming.notices import NO_NOTICES, ends_with_notice
from botkit.streaming.streamer import ReplyStreamer

if TYPE_CHECKING:
    from botkit.config import Settings
    from botkit.personas import Persona
    from botkit.store import ConversationStore, HistoryTurn
    from botkit.store.records import TurnIds

log = logging.getLogger("botkit.pipeline.turns")

INTERRUPTED_NOTE = "⚠️ _Interrupted: botkit stopped before this answer was finished. Please ask again._"
CANCELLED_NOTE = "⏹ _Cancelled._"
TRIMMED_NOTE = (
    "_Note: the oldest messages of this thread no longer fit in the model's context "
    "and were left out of this answer._"
)


CheckAccess = Callable[[Request], Awaitable[None]]
"""Raises :class:`Refusal` if the request's (final) persona is not open to its asker here."""


@dataclass
class _Live:
    """One turn's moving parts, created when the innermost step runs."""

    streamer: ReplyStreamer
    place: Place
    recorder: TurnRecorder
    persona: Persona
    notices: list[str] = field(default_factory=list)
    generated: bool = False  # the model answered (not a middleware): the final reply gets 👍/👎
    math: bool = False  # answered as mathematics: directive, boxed line, Unicode, formula image
    placeholder_recorded: asyncio.Task[None] | None = None  # a placeholder that landed after enqueue
    continued_recorded: asyncio.Task[None] | None = None  # the latest continuation's record

    @property
    def shown(self) -> bool:
        """The placeholder is up or on its way: from here on the turn ends in the reply, never
        in a notice."""
        return self.streamer.begun

    async def ids_recorded(self) -> None:
        """The late placeholder's id and the continuations' are stored (before the final write,
        which must come last)."""
        pending = [t for t in (self.placeholder_recorded, self.continued_recorded) if t is not None]
        if pending:
            await asyncio.wait(pending)

    def record_as_posted(self, *, placeholder_known: bool) -> None:
        """From now on the messages the streamer posts are recorded as they land: the ones a
        text posted anew replaced, the continuations, and the placeholder's id if it was still
        on its way when the turn was recorded."""
        self.streamer.strays = self.recorder.stray
        self.streamer.reply.left_unmarked = self.recorder.unmarked_stream
        self.streamer.continued = self.record_continued
        if not placeholder_known:
            self.placeholder_recorded = asyncio.create_task(
                _record_placeholder(self), name="botkit-turn-placeholder-id"
            )

    def record_continued(self, message_ids: list[str]) -> None:
        """Store the reply's message ids now that a continuation message was posted (a long
        answer), each record after the one before it: a restart then knows every message of
        the reply and can tell whether its final view was shown (botkit.repair)."""
        before = [t for t in (self.placeholder_recorded, self.continued_recorded) if t is not None]
        self.continued_recorded = asyncio.create_task(
            _record_ids(self.recorder, message_ids, before), name="botkit-turn-continuation-ids"
        )


class TurnRunner:
    def __init__(
        self,
        *,
        store: ConversationStore,
        pool: BackendPool,
        settings: Settings,
        budgets: BudgetRegistry,
        filters: TextFilters | None = None,
    ) -> None:
        self.store = store
        self.pool = pool
        self.settings = settings
        self.budgets = budgets
        self.filters = filters or TextFilters()
        self.gates = ThreadGates()
        database = settings.database
        self.writes = FinalWrites(
            store,
            retry_timeout=database.write_retry_timeout,
            spool=WriteSpool.for_database(store.url, database.pending_writes_dir),
        )
        # Every streaming turn's text so far, for all of them in one write per interval.
        self.checkpoints = Checkpoints(store, interval=CHECKPOINT_INTERVAL)
        self.turn_counts: Counter[str] = Counter()
        # (platform, delivery id) -> the inbox rows Router.submit wrote, until a turn adopts them.
        self.inbox: dict[tuple[str, str], TurnIds] = {}

    def streamer_for(self, reply: LiveReply, persona: Persona | None, *, math: bool = False) -> ReplyStreamer:
        return ReplyStreamer(
            reply,
            self.budgets.for_scope(reply.rate_scope("edit")),
            budgets=self.budgets,
            edit_interval=self.settings.stream.edit_interval,
            display=persona.reasoning_display if persona else "thinking",
            thinking_interval=self.settings.stream.thinking_update_interval,
            first_text_at_once=self.settings.stream.first_text_at_once,
            text_filter=self.filters.for_display(),
            notices=persona.notices if persona else NO_NOTICES,
            view=_math_view if math else None,
        )

    async def run(
        self, request: Request, reply: LiveReply, chain: MiddlewareChain, check: CheckAccess
    ) -> TurnResult:
        """Pass ``request`` through ``chain``; the innermost step checks access on the persona
        the chain settled on, posts the placeholder, records the turn as ``queued`` with the
        placeholder's id (a restart finds it even if it never got its turn), waits for the
        thread and generates.

        A :class:`Refusal` before the placeholder propagates (the caller shows it to the asker
        alone); after it, the refusal is shown in the reply and stored. Cancelled after it, the
        reply says why and the turn is stored: ``cancelled`` when its asker stopped it
        (:meth:`Submission.cancel <botkit.adapter.Submission.cancel>`), ``interrupted`` when botkit
        is shutting down.
        """
        live: _Live | None = None

        async def answer(final: Request) -> TurnResult:
            nonlocal live
            await check(final)
            live = self._prepare(final, reply)
            await self._post_and_record(final, reply, live)
            await live.place.acquire()  # this thread's previous turn finishes first
            return await self._generate(final, live)

        try:
            try:
                result = await chain.run(request, answer)
            except asyncio.CancelledError as cancel:
                if live is not None and live.shown:
                    await asyncio.shield(self._cancelled(live, cancel))
                raise
            except Exception as err:
                if live is None or not live.shown:  # nothing shown yet: the router tells the asker
                    self.turn_counts["refused" if isinstance(err, Refusal) else "failed"] += 1
                    raise
                result = self._result_of(err, request)
            if live is None:  # a middleware answered without calling next_step
                live = self._prepare(request, reply)
                await live.streamer.start()
            await asyncio.shield(self._show_and_store(result, live))
            self.turn_counts[result.status] += 1
            return result
        finally:
            if live is not None:
                live.place.release()

    async def _post_and_record(self, final: Request, reply: LiveReply, live: _Live) -> None:
        """Start the placeholder and record the turn (``queued``, or ``streaming`` when it is
        first in its thread) with the placeholder's id and the reply's marker."""
        # The accepted message's inbox rows (Router.submit wrote them before the ack) become
        # this turn's rows; a second turn for one message (a plugin's) gets its own.
        inbox = self.inbox.pop((final.message.platform, final.message.delivery_id), None)
        if inbox is not None:  # its placeholder carries the turn's marker (botkit.markers)
            reply.marker = ReplyMarker(inbox.assistant_message_id)
        # Users see a reaction at once, but nothing waits for it: the placeholder is posted
        # while the turn is recorded and the model starts; edits wait until it exists.
        live.streamer.begin()
        posted = list(live.streamer.stats.message_ids)
        # With no turn before it in the thread, the model is called right after: the row is
        # written ``streaming`` at once (one write fewer than ``queued`` and then ``streaming``).
        first = live.place.first_in_line
        await live.recorder.enqueue(final, live.persona, posted, inbox, streaming=first)
        turn = live.recorder.assistant_id
        if turn is not None and (reply.marker is None or reply.marker.turn != turn):
            reply.marker = ReplyMarker(turn, "partial")  # the inbox rows were taken: its own
        live.record_as_posted(placeholder_known=bool(posted))

    async def _cancelled(self, live: _Live, cancel: asyncio.CancelledError) -> None:
        """Its asker stopped it (``cancelled``), or botkit is shutting down (``interrupted``)."""
        if USER_CANCELLED in cancel.args:
            self.turn_counts["cancelled"] += 1
            await self._interrupted(live, CANCELLED_NOTE, "cancelled")
        else:
            await self._interrupted(live)

    @staticmethod
    def _result_of(err: Exception, request: Request) -> TurnResult:
        """A turn that raised after its placeholder: shown and stored, never silence."""
        if isinstance(err, Refusal):
            return TurnResult("refused", error=str(err))
        log.error("turn failed in %s", request.message.key, exc_info=err)
        return TurnResult("failed", error=f"⚠️ Something went wrong inside botkit ({type(err).__name__}).")

    def _prepare(self, request: Request, reply: LiveReply) -> _Live:
        persona = request.persona
        assert persona is not None, "a turn request carries its persona"
        math = is_math_turn(persona, request.question)
        return _Live(
            self.streamer_for(reply, persona, math=math),
            self.gates.reserve(request.message.key),
            TurnRecorder(
                self.store,
                self.filters,
                self.settings.llm.model,
                writes=self.writes,
                notice=persona.notices.after,
                store_reasoning=persona.store_reasoning,
            ),
            persona,
            math=math,
        )

    async def _generate(self, request: Request, live: _Live) -> TurnResult:
        message, persona = request.message, live.persona
        await live.recorder.streaming(live.streamer.stats.message_ids)
        history = await live.recorder.history(first_in_line=live.place.first_in_line)
        user_content = persona.render(
            request.question,
            user_name=message.user_name or message.user,
            platform=message.platform,
            channel=message.channel,
            **request.variables,
        )
        if live.math:
            user_content = with_directive(user_content)
        generation = Generation(self.pool, self.settings.llm, persona, message.user, live.streamer)
        live.recorder.usage = generation.usage

        async def on_cut(attempt: Attempt, err: BackendError) -> None:
            await live.recorder.finish(
                "interrupted",
                answer=attempt.answer,
                reasoning=attempt.reasoning,
                error=err.detail or err.kind,
                interim=True,  # answered again in place: the final write follows
            )

        turn = live.recorder.assistant_id
        assert turn is not None, "the turn's rows exist once it streams"
        streamer = live.streamer
        self.checkpoints.track(
            turn,
            lambda: (streamer.partial_answer, streamer.partial_reasoning),
            live.recorder.checkpoint_values,
        )
        try:
            fitted = await self._fit(history, user_content, persona.max_tokens)
            if fitted.trimmed(history):
                live.notices.append(TRIMMED_NOTE)
            attempt = await generation.run(fitted, user_content, on_cut)
        except BackendError as err:
            partial = generation.attempt
            status: TurnStatus = "interrupted" if err.kind == "cut" or generation.cut_retried else "failed"
            return TurnResult(status, partial.answer, partial.reasoning, err.user_message, live.notices)
        finally:
            # A checkpoint in flight is not waited for: one blocked on a locked database must not
            # hold up the final edit (a late one cannot overwrite the final row: see store.checkpoint).
            self.checkpoints.untrack(turn)
        live.generated = True
        return TurnResult("complete", attempt.answer, attempt.reasoning, notices=live.notices)

    async def _fit(
        self, history: Sequence[HistoryTurn], user_content: str, answer_tokens: int | None
    ) -> FittedPrompt:
        """The prompt with as much history as fits; not counted by the server where a bound
        proves it fits with room for the whole answer (so ``max_tokens`` is what a count gave)."""
        llm = self.settings.llm
        sure_fit = llm.max_model_len - (answer_tokens or llm.max_tokens)
        return await fit_history(
            history, user_content, room=prompt_room(llm), counter=self.pool.tokenizer(), sure_fit=sure_fit
        )

    async def _show_and_store(self, result: TurnResult, live: _Live) -> None:
        """The final edit, then the final write, which waits out a database outage (see
        :class:`~botkit.pipeline.recorder.FinalWrites`): the answer stays as shown, and the user
        never sees an error for a database that was away after the answer was shown.

        :meth:`run` gives the thread to its next turn only after this returns, i.e. once the
        write landed or gave up, so that turn's history (read from SQL) has this exchange: see
        :mod:`.gate` for why the gate is held rather than pending exchanges overlaid.
        """
        streamer = live.streamer
        attaching: asyncio.Task[None] | None = None
        feedback_turn = self._feedback_turn(live) if result.status == "complete" else None
        # The final view's intent is spooled before its first call goes out (botkit.repair),
        # with whether its last message is meant to carry the 👍/👎 (a restart adds them).
        streamer.before_final = functools.partial(
            live.recorder.intend,
            status=result.status if result.status in ("complete", "interrupted") else "failed",
            answer=result.answer,
            reasoning=result.reasoning,
            error=result.error,
            feedback=feedback_turn is not None and streamer.reply.feedback_buttons,
        )
        try:
            if result.status == "complete":
                message_ids = await streamer.finish(
                    final_text(result, live.persona, math=live.math), feedback_turn=feedback_turn
                )
                if live.math and streamer.reply.can_attach and has_formulas(result.answer):
                    # Beside the final write, not before it: an upload never delays the answer's row.
                    attaching = asyncio.create_task(self._attach_formulas(live, result.answer))
            else:
                message_ids = await streamer.fail(result.error or "⚠️ No answer.")
        except Exception as err:  # the platform refused even the retried final edit
            log.exception("the final edit of a reply could not be shown")
            message_ids = list(streamer.stats.message_ids)
            if result.status == "complete":
                result.status = "interrupted"
            result.error = f"{result.error or ''} (final edit failed: {type(err).__name__})".strip()
        await live.ids_recorded()
        await live.recorder.finish(
            result.status if result.status in ("complete", "interrupted") else "failed",
            answer=result.answer,
            reasoning=result.reasoning,
            error=result.error,
            message_ids=message_ids,
        )
        if attaching is not None:
            await attaching

    def _feedback_turn(self, live: _Live) -> int | None:
        """The turn id a complete model answer's 👍/👎 carry; None: no buttons (feedback off, or
        an answer a middleware gave without the model)."""
        if not self.settings.feedback.enabled or not live.generated:
            return None
        return live.recorder.assistant_id

    @staticmethod
    async def _attach_formulas(live: _Live, answer: str) -> None:
        """The final answer's display formulas as one PNG, after its text landed. Drawing it or
        uploading it may fail (logged): the answer, already shown, stays as it is."""
        try:
            image = await asyncio.to_thread(formula_image, answer)
        except Exception:
            log.exception("could not draw the formulas of an answer")
            return
        if image is not None:
            await live.streamer.attach(image)

    async def _interrupted(
        self, live: _Live, note: str = INTERRUPTED_NOTE, status: str = "interrupted"
    ) -> None:
        """A turn cancelled mid-way (a shutdown, or its asker): what was shown plus ``note``."""
        streamer = live.streamer
        try:
            message_ids = await asyncio.wait_for(streamer.fail(note), 10)
        except Exception:
            log.exception("could not show the interruption note")
            message_ids = streamer.stats.message_ids
        await live.ids_recorded()
        await live.recorder.finish(
            status,
            answer=streamer.partial_answer,
            reasoning=streamer.partial_reasoning,
            error="cancelled by the asker" if status == "cancelled" else "botkit stopped during the turn",
            message_ids=message_ids,
        )


async def _record_placeholder(live: _Live) -> None:
    """Store the placeholder's id once it is posted, so a restart can repair the message."""
    try:
        message_id = await live.streamer.placeholder_posted()
        # "": a status line stands in for it (the final message is stored with the turn);
        # otherwise not stored with the turn's start already.
        if message_id and live.recorder.recorded_ids != (message_id,):
            await live.recorder.record_message_ids([message_id])
    except Exception as err:  # no placeholder: the final text is posted anew and stored with it
        log.info("the placeholder's id was not stored (%s)", type(err).__name__)


async def _record_ids(
    recorder: TurnRecorder, message_ids: list[str], after: list[asyncio.Task[None]]
) -> None:
    """Store ``message_ids`` once the records ``after`` are done (a failure is only logged: the
    final write stores them anyway)."""
    if after:
        await asyncio.wait(after)
    try:
        await recorder.record_message_ids(message_ids)
    except Exception as err:
        log.info("the reply's continuation ids were not stored (%s)", type(err).__name__)


def _math_view(text: str, final: bool) -> str:
    """What a math turn shows: its LaTeX as Unicode; an unfinished formula of a partial view held back."""
    return render_unicode(text, partial=not final)


def final_text(result: TurnResult, persona: Persona, *, math: bool = False) -> str:
    """The complete answer as shown: the answer, a boxed persona's (or a math turn's)
    ``**Final answer**`` line (its value as Unicode in a math turn), the
    persona's after-notice, then botkit's own notes (history trimmed...).

    The notice is botkit's, not the model's: it is added to every answer that has text, unless
    the answer already ends with it (a model that obeyed an older template), so it is never
    shown twice. The recorder stores it with the answer (:meth:`TurnRecorder.finish`).
    """
    answer = result.answer.strip()
    parts = [answer]
    if persona.answer_format == "boxed" or math:
        line = final_answer_line(result.answer, latex_to_unicode if math else None)
        if line:
            parts.append(line)
    after = persona.notices.after
    if after and answer and not ends_with_notice(answer, after):
        parts.append(after)
    parts.extend(result.notices)
    return "\n\n".join(p for p in parts if p)
