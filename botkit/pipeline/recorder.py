"""What the store learns about one turn as it goes: its rows, its usage and timing, its end.

The rows are written before the model is called and the placeholder's id with them, so a crash
leaves a findable, visibly unfinished turn rather than a silent gap. Everything stored passes the
plugins' text filters: the answer always, the question and reasoning where a filter asks.

The final write comes after the final edit (the user does not wait for SQL), so it must outlast
a database outage: :class:`FinalWrites` retries it with backoff for ``database.write_retry_timeout``
seconds, counts it as pending for ``/healthz`` and ``/metrics`` meanwhile, and keeps it in the
:class:`~botkit.store.spool.WriteSpool` so that the next start stores it if this process dies.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_delay,
    wait_exponential,
    wait_random,
)

from botkit.events import ConversationKey
from botkit.pipeline.filters import TextFilters
from botkit.plugins.api import Request
from botkit.store.spool import SpooledWrite, WriteSpool
from botkit.store.store import is_unavailable
from botkit.streaming.notices import append_notice

if TYPE_CHECKING:
    from botkit.personas import Persona
    from botkit.store import ConversationStore, HistoryTurn
    from botkit.store.records import TurnIds

log = logging.getLogger("botkit.pipeline.recorder")

PENDING_AFTER = 0.25  # seconds: a final write that has not landed by then is pending (retried)
RETRY_INITIAL = 0.25  # seconds before the first retry of a pending write, doubling...
RETRY_MAX = 4.0  # ... up to this: a database that is back takes the write within seconds


@dataclass(frozen=True)
class WriteStatus:
    """The final writes of this process, as ``/healthz`` and ``/metrics`` show them."""

    pending: int  # waiting for the database now
    oldest_pending_seconds: float  # how long the oldest of them has waited (0 if none)
    landed_late: int  # landed after waiting (since start)
    given_up: int  # not stored after write_retry_timeout (since start); they stay spooled

    def as_json(self) -> dict[str, Any]:
        return {
            "pending_writes": self.pending,
            "oldest_pending_write_seconds": round(self.oldest_pending_seconds, 1),
            "writes_landed_late": self.landed_late,
            "writes_given_up": self.given_up,
        }


@dataclass(frozen=True)
class _Pending:
    key: ConversationKey
    since: float


class FinalWrites:
    """Lands every turn's final write, through a database outage if need be.

    The write is spooled to disk first and the first attempt made at once; if it fails on an
    unavailable database (or has not answered within :data:`PENDING_AFTER`, e.g. a SQLite file
    locked by another process) the write is pending: kept in the spool, counted, and retried with exponential backoff and jitter
    until it lands or ``retry_timeout`` passes. Giving up is logged as an error with the
    conversation and the answer's length (never its text); the spooled copy is kept for the next
    start. An error that is not about availability (a bug) is raised, as before.
    """

    def __init__(
        self,
        store: ConversationStore,
        *,
        retry_timeout: float,
        spool: WriteSpool | None,
        clock: Callable[[], float] = time.monotonic,
        pending_after: float = PENDING_AFTER,
    ) -> None:
        self.store = store
        self.retry_timeout = retry_timeout
        self.spool = spool
        self.pending_after = pending_after
        self._clock = clock
        self._pending: dict[int, _Pending] = {}
        self.landed_late = 0
        self.given_up = 0

    def status(self) -> WriteStatus:
        now = self._clock()
        oldest = min((p.since for p in self._pending.values()), default=now)
        return WriteStatus(len(self._pending), now - oldest, self.landed_late, self.given_up)

    async def land(
        self, key: ConversationKey, turn: int, values: dict[str, Any], *, covered: bool = False
    ) -> bool:
        """Store ``values`` (:meth:`ConversationStore.finish_turn`'s) on ``turn``; False if it gave up.

        ``covered``: the final view's intent is on disk already (:meth:`TurnRecorder.intend`),
        so the write's own record is needed only once it is pending (see below)."""
        # On disk BEFORE the first attempt: the answer is already shown in full, and a process
        # killed (or a machine cut off) while that attempt is in flight must not leave the next
        # start only the older checkpoint (it would "repair" the complete answer into a partial
        # one). With the final view's intent on disk (``covered``) that is so already: the next
        # start reads the platform, finds the view shown and stores the turn as meant. So the
        # write's own record, fsynced and over the intent, is written only once the attempt is
        # slow or failed (pending); in the usual case the attempt lands and the intent goes, and
        # the disk flushes nothing beside the database's own commit. Without an intent the
        # record is written (fsynced, off the event loop) before the attempt, as ever.
        entry = SpooledWrite(turn, (key.platform, key.workspace, key.channel, key.thread), values)
        saved: asyncio.Future[None] | None = None
        if self.spool is not None and not covered:
            saved = self.spool.save_soon(entry)
            await saved
        write = functools.partial(self.store.finish_turn, turn, **values)
        first = asyncio.ensure_future(write())
        await asyncio.wait([first], timeout=self.pending_after)
        if first.done():
            error = first.exception()
            if error is None:
                await self._discard(turn, saved)
                return True
            if not is_unavailable(error):
                await self._discard(turn, saved, durable=True)  # the row stays unfinished
                raise error
        if self.spool is not None and covered:  # pending: the write itself is what to keep now
            saved = self.spool.save_soon(entry, over_durable=True)
        return await self._retry(key, turn, values, first, write, saved)

    async def _discard(self, turn: int, saved: asyncio.Future[None] | None, *, durable: bool = False) -> None:
        """The spooled record goes once it is not needed. After a landed write it is only
        scheduled, not waited for (the thread's next turn waits for this): the row is final, so
        a record the unlink has not reached yet, or that a power cut brings back, is stale and
        dropped at the next start. The spool's worker runs it after the record's own save."""
        if self.spool is None:
            return
        if not durable:
            self.spool.discard_soon(turn)
            return
        if saved is not None:
            await saved
        await self.spool.discard(turn, durable=True)

    async def _retry(
        self,
        key: ConversationKey,
        turn: int,
        values: dict[str, Any],
        first: asyncio.Future[None],
        write: Callable[[], Awaitable[None]],
        saved: asyncio.Future[None] | None = None,
    ) -> bool:
        self._pending[turn] = _Pending(key, self._clock())  # spooled already, by land()
        # A first attempt that failed is an outage worth a warning; one that is merely slow (a
        # busy database: many turns ending at once queue behind one SQLite writer) is only
        # pending: it is awaited, not repeated, and warned about once it fails.
        failed = first.done()
        log.log(
            logging.WARNING if failed else logging.INFO,
            "the database has not taken the final write of turn %s in %s yet (%s); retrying for up to %.0fs",
            turn,
            key,
            "it failed" if failed else f"no answer within {self.pending_after:g}s",
            self.retry_timeout,
        )
        attempts: list[asyncio.Future[None]] = [first]
        try:
            async for attempt in self._retrying():
                with attempt:
                    await (attempts.pop() if attempts else write())
        except Exception as err:
            if not is_unavailable(err):
                raise
            self._gave_up(key, turn, values, err)
            return False
        finally:
            self._pending.pop(turn, None)
        self.landed_late += 1
        await self._discard(turn, saved)
        log.info("the final write of turn %s in %s landed late", turn, key)
        return True

    def _retrying(self) -> AsyncRetrying:
        return AsyncRetrying(
            retry=retry_if_exception(is_unavailable),
            stop=stop_after_delay(self.retry_timeout),
            wait=wait_exponential(multiplier=RETRY_INITIAL, max=RETRY_MAX) + wait_random(0, RETRY_INITIAL),
            before_sleep=_log_retry,
            reraise=True,
        )

    def _gave_up(self, key: ConversationKey, turn: int, values: dict[str, Any], err: Exception) -> None:
        """Loud, and never the text: only its length, and where the spool keeps it."""
        self.given_up += 1
        log.error(
            "GAVE UP storing the final answer of turn %s in %s (%d characters, shown to the user): "
            "the database was unavailable for %.0fs (%s). It is kept in %s for the next start.",
            turn,
            key,
            len(values.get("answer") or ""),
            self.retry_timeout,
            type(err).__name__,
            self.spool.directory if self.spool is not None else "no spool (in-memory database)",
        )


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    log.warning("final write attempt %d failed (%s); retrying", state.attempt_number, type(error).__name__)


@dataclass
class Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    first_token_at: float | None = None


@dataclass
class TurnRecorder:
    store: ConversationStore
    filters: TextFilters
    model: str
    started: float = field(default_factory=time.monotonic)
    conversation: int | None = None
    assistant_id: int | None = None
    usage: Usage = field(default_factory=Usage)
    writes: FinalWrites | None = None  # None: the final write is one attempt (no outage handling)
    key: ConversationKey | None = None
    notice: str | None = None  # the persona's after-notice, stored with any answer text
    store_reasoning: bool = True  # False (the persona's ``store_reasoning``): reasoning is NULL
    new_thread: bool = False  # this turn's intake created the conversation (no history yet)
    recorded_ids: tuple[str, ...] = ()  # the platform message ids stored on the reply row so far
    # The ones among them whose write has landed (a restart can know them): see intend.
    stored_ids: tuple[str, ...] = ()
    stored_streaming: bool = False  # the reply row is ``streaming`` in the database already
    intended: bool = False  # the final view's intent is on disk (see intend)

    async def enqueue(
        self,
        request: Request,
        persona: Persona,
        message_ids: Sequence[str],
        inbox: TurnIds | None = None,
        *,
        streaming: bool = False,
    ) -> None:
        """The turn's rows with the placeholder's id: the accepted message's ``inbox`` rows
        updated (persona, settled question, placeholder), or, without inbox rows (or if they
        were taken already), the question and a ``queued`` reply row in one transaction.

        ``streaming``: the turn calls the model right after this (no turn before it in its
        thread), so the row is written ``streaming`` at once and :meth:`streaming` has nothing
        to store unless the placeholder's id arrived in between."""
        self.stored_streaming = streaming
        message = request.message
        key = self.key = message.key
        self.recorded_ids = tuple(message_ids)
        if inbox is not None and inbox.conversation_id is not None:
            self.conversation = inbox.conversation_id  # looked up when the message was accepted
        else:
            self.conversation = await self.store.conversation_id(
                key.platform, key.workspace, key.channel, key.thread
            )
        question = self.filters.question(request.question)
        if inbox is not None and await self.store.adopt_inbox(
            inbox,
            user_text=question,
            persona_name=persona.name,
            persona_hash=persona.content_hash,
            model=self.model,
            platform_message_ids=list(message_ids),
            streaming=streaming,
        ):
            self.assistant_id = inbox.assistant_message_id
            self.new_thread = inbox.new_conversation
            self.stored_ids = tuple(message_ids)
            return
        ids = await self.store.start_turn(
            self.conversation,
            user_text=question,
            user_id=message.user,
            delivery_id=message.delivery_id,
            persona_name=persona.name,
            persona_hash=persona.content_hash,
            model=self.model,
            status="streaming" if streaming else "queued",
            platform_message_ids=list(message_ids),
        )
        self.assistant_id = ids.assistant_message_id
        self.stored_ids = tuple(message_ids)

    async def record_message_ids(self, message_ids: Sequence[str]) -> None:
        """The reply's messages, posted after :meth:`enqueue` wrote the rows."""
        assert self.assistant_id is not None, "enqueue() first"
        self.recorded_ids = tuple(message_ids)
        await self.store.record_message_ids(self.assistant_id, list(message_ids))
        self.stored_ids = tuple(message_ids)

    async def streaming(self, message_ids: Sequence[str] = ()) -> None:
        """The model is being called; ``message_ids``: the reply's messages posted by now, stored
        in the same UPDATE if they are not yet (a placeholder that landed after :meth:`enqueue`:
        one statement where two were, and :func:`~.turns._record_placeholder` then skips it)."""
        assert self.assistant_id is not None, "enqueue() first"
        self.started = time.monotonic()
        ids = tuple(message_ids)
        if ids and ids != self.recorded_ids:
            self.recorded_ids = ids
            await self.store.mark_streaming(self.assistant_id, platform_message_ids=list(ids))
            self.stored_ids = ids
        elif not self.stored_streaming:
            await self.store.mark_streaming(self.assistant_id)
        self.stored_streaming = True

    async def checkpoint(self, answer: str, reasoning: str) -> None:
        """The streamed text so far, stored as :meth:`finish` would (with the notice, without the
        reasoning if the persona says so): the restart pass shows it as it is stored."""
        assert self.assistant_id is not None, "enqueue() first"
        stored, stored_reasoning = self.checkpoint_values(answer, reasoning)
        await self.store.checkpoint(self.assistant_id, answer=stored, reasoning=stored_reasoning)

    def checkpoint_values(self, answer: str, reasoning: str) -> tuple[str, str | None]:
        """(answer, reasoning) as a checkpoint stores them (:mod:`botkit.pipeline.checkpoints`
        batches them for all streaming turns)."""
        return self._stored_answer(answer), self._stored_reasoning(reasoning)

    def _stored_answer(self, answer: str) -> str:
        """What the user was shown of the answer: the text and the persona's after-notice (any
        answer text carries it, a partial one too), filtered for display. Stored with the notice
        so the record shows the disclaimer the user got; :meth:`ConversationStore.history`
        strips it again before the model sees it."""
        return self.filters.shown(append_notice(answer, self.notice))

    def _stored_reasoning(self, reasoning: str) -> str | None:
        """``None`` (NULL) for a persona with ``store_reasoning: false``: a medical question's
        reasoning restates the patient's details at length, and is kept only if wanted."""
        return self.filters.reasoning(reasoning.strip()) if self.store_reasoning else None

    async def history(self, *, first_in_line: bool = False) -> Sequence[HistoryTurn]:
        """The thread's completed exchanges (this turn's own rows are not complete yet), without
        this persona's notice.

        None without a read when this turn's intake created the conversation and no turn of the
        thread was in line before it (``first_in_line``, from its :class:`~.gate.Place`): a new
        thread's first turn, most turns of all, has nothing to read. A turn accepted later in
        that thread but answered first is in line before it, so its answer is read as usual.
        """
        assert self.conversation is not None, "enqueue() first"
        if self.new_thread and first_in_line:
            return []
        return await self.store.history(self.conversation, notices=(self.notice,) if self.notice else ())

    async def finish(
        self,
        status: str,
        *,
        answer: str,
        reasoning: str,
        error: str | None,
        message_ids: Sequence[str] | None = None,
        interim: bool = False,
    ) -> bool:
        """Store the turn's outcome (nothing if it was refused before its rows existed).

        The final write goes through :class:`FinalWrites` (retried while the database is away;
        False if it gave up). ``interim``: an outcome the turn may still change (a cut stream
        about to be answered again) is one attempt, and a failure is only logged, since the
        final write follows.
        """
        if self.assistant_id is None:
            return True
        values = self._values(
            status, answer=answer, reasoning=reasoning, error=error, message_ids=message_ids
        )
        if interim:
            try:
                await self.store.finish_turn(self.assistant_id, **values)
            except Exception as err:
                if not is_unavailable(err):
                    raise
                log.warning("could not store the interim state of turn %s (%s)", self.assistant_id, err)
                return False
            return True
        if self.writes is None or self.key is None:
            await self.store.finish_turn(self.assistant_id, **values)
            return True
        return await self.writes.land(self.key, self.assistant_id, values, covered=self.intended)

    def _values(
        self,
        status: str,
        *,
        answer: str,
        reasoning: str,
        error: str | None,
        message_ids: Sequence[str] | None,
    ) -> dict[str, Any]:
        """The final write's columns (:meth:`ConversationStore.finish_turn`'s keyword arguments)."""
        ttft = self.usage.first_token_at
        return {
            "status": status,
            "answer": self._stored_answer(answer),
            "reasoning": self._stored_reasoning(reasoning),
            "prompt_tokens": self.usage.prompt_tokens,
            "completion_tokens": self.usage.completion_tokens,
            "ttft_ms": None if ttft is None else int((ttft - self.started) * 1000),
            "total_ms": int((time.monotonic() - self.started) * 1000),
            "error": error,
            "platform_message_ids": None if message_ids is None else list(message_ids),
        }

    async def intend(
        self,
        shown: Sequence[Sequence[str]],
        first: str | None = None,
        *,
        status: str,
        answer: str,
        reasoning: str,
        error: str | None,
        feedback: bool = False,
    ) -> None:
        """The final view is about to be shown as ``shown`` (its messages as the platform will
        show them, in each form it may: :meth:`~botkit.events.LiveReply.rendered_views`): spool
        what :meth:`finish` will store, as an intent, before the request goes out. A process
        killed with it in flight leaves the next start able to tell, by reading the platform, a
        final view that was applied (stored as meant, never edited) from one that was not
        (interrupted, its partial kept): see :mod:`botkit.repair`. Awaited by the streamer
        before that request: the intent is on disk (fsynced) by then, a power cut included.
        ``feedback``: the view's last message is meant to carry 👍/👎, which a restart that finds
        the view shown without them adds. ``first``: the message the view's first one edits in
        place (None: posted anew). Only where that is not a message whose id the row holds is
        the view's first message *anew* to the restart, which then looks for it by its text:
        elsewhere another turn's identical answer there could pass for it."""
        spool = self.writes.spool if self.writes is not None else None
        if spool is None or self.assistant_id is None or self.key is None:
            return
        values = self._values(status, answer=answer, reasoning=reasoning, error=error, message_ids=None)
        key = self.key
        await spool.save(
            SpooledWrite(
                self.assistant_id,
                (key.platform, key.workspace, key.channel, key.thread),
                values,
                tuple(shown[0]),
                tuple(tuple(form) for form in shown[1:]),
                feedback,
                anew=first is None or first not in self.stored_ids,
            )
        )
        self.intended = True

    async def stray(self, message_id: str, removed: bool) -> None:
        """A message of this turn replaced by a text posted anew (``removed``: its deletion
        landed): kept in the spool meanwhile, so the next start deletes what a kill left. The
        addition is durable before the streamer goes on (to the delete, and the final write that
        would tell a restart the turn is done); the removal need not be (see the spool)."""
        spooled = self._spooled()
        if spooled is None:
            return
        spool, turn, key = spooled
        if removed:
            await spool.stray_removed(turn, message_id)
        else:
            await spool.add_stray(turn, key, message_id)

    async def unmarked_stream(self, message_id: str, buttons: bool = False) -> None:
        """A message of this turn the platform shows without the turn's marker, and refused to
        mark (:attr:`LiveReply.left_unmarked`): recorded durably, before the reply goes on to its
        final write, so that the next start or a sweep marks it and, until then, no other turn's
        restart takes it for its own (:mod:`botkit.repair`). ``buttons``: the refused marking
        carried the final's 👍/👎, so the later marking gives them too."""
        spooled = self._spooled()
        if spooled is not None:
            spool, turn, key = spooled
            await spool.unmarked.add(turn, key, message_id, buttons=buttons)

    def _spooled(self) -> tuple[WriteSpool, int, tuple[str, str, str, str]] | None:
        """The spool, this turn's id and its conversation's key as the spool records it; None
        where nothing is spooled (no spool, or the turn not recorded yet)."""
        spool = self.writes.spool if self.writes is not None else None
        if spool is None or self.assistant_id is None or self.key is None:
            return None
        key = self.key
        return spool, self.assistant_id, (key.platform, key.workspace, key.channel, key.thread)
