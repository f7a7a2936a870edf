"""Data rights in SQL: finding a thread or a user's turns, and removing whole turns.

A *turn* is one question (a ``user`` row) and the answer that replies to it (the ``assistant``
row whose ``reply_to_id`` points at it). Removing a turn removes both rows, and with the answer
its reasoning, so no answer is left behind whose question is gone, and the thread's history (what
the next question sends the model) no longer holds either of them.

A turn in progress is never removed: an answer still ``queued`` or ``streaming`` belongs to a
turn that is running (removing its rows would make its final write fail) or to one a stopped
botkit left, which its next start stores as interrupted. Such turns are returned apart, so the
caller can say they were left. That also covers the write spool (:mod:`botkit.store.spool`) and
the durable inbox: the only turns with text outside the ``messages`` table, or not yet adopted,
are unfinished ones.

What no removal touches, because it holds no text anyone wrote: ``conversations`` (the
platform's ids of a thread), ``deliveries`` (event ids) and the audit trail.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, and_, case, delete, exists, func, or_, select
from sqlalchemy.orm import aliased

from botkit.events import ConversationKey
from botkit.store.models import UNFINISHED_STATUSES, Conversation, Message

if TYPE_CHECKING:
    from botkit.store.store import ConversationStore

#: Ids per ``IN (...)`` list: far below SQLite's and asyncpg's limits on bound parameters.
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Thread:
    """One stored conversation: its id and its platform key."""

    id: int
    key: ConversationKey


@dataclass(frozen=True, slots=True)
class TurnRow:
    """What a removal needs to know about one turn (no text)."""

    question_id: int
    answer_id: int | None
    key: ConversationKey
    user_id: str | None
    persona: str | None
    asked_at: datetime
    status: str | None  # the answer's; None when the question has no answer row
    has_reasoning: bool

    @property
    def in_progress(self) -> bool:
        return self.status in UNFINISHED_STATUSES

    @property
    def channel(self) -> str:
        """The channel as ``[retention] channels`` and ``--channel`` name it in full."""
        return f"{self.key.platform}:{self.key.workspace}/{self.key.channel}"


@dataclass(frozen=True, slots=True)
class Removed:
    """How many rows a removal took away (counts only: this goes into the audit trail)."""

    questions: int = 0
    answers: int = 0
    reasoning: int = 0
    in_progress: int = 0  # turns left because they were still running

    def detail(self) -> dict[str, int]:
        return {
            "questions": self.questions,
            "answers": self.answers,
            "reasoning": self.reasoning,
            "in_progress_left": self.in_progress,
        }


def channel_names(key: ConversationKey) -> tuple[str, str, str]:
    """The names a configuration may give a turn's channel, most specific first: the same
    forms as ``[personas.bindings]`` (``platform:workspace/channel``, ``platform:channel``, the id)."""
    return (f"{key.platform}:{key.workspace}/{key.channel}", f"{key.platform}:{key.channel}", key.channel)


@dataclass(frozen=True, slots=True)
class Lifetime:
    """One retention rule as SQL can narrow by it: turns asked before ``cutoff`` with this
    persona and/or in this channel (a name of :func:`channel_names`' forms); None: any."""

    cutoff: datetime
    persona: str | None = None
    channel: str | None = None


def _in_channel(name: str) -> ColumnElement[bool]:
    """``platform:workspace/channel``, ``platform:channel`` or a bare channel id, as SQL."""
    platform, colon, rest = name.partition(":")
    if not colon:
        return Conversation.channel == name
    workspace, slash, channel = rest.rpartition("/")
    where = [Conversation.platform == platform, Conversation.channel == channel]
    if slash:
        where.append(Conversation.workspace == workspace)
    return and_(*where)


def split_in_progress(turns: Iterable[TurnRow]) -> tuple[list[TurnRow], int]:
    """(the turns that may be removed, how many questions were left because an answer of theirs
    is still in progress)."""
    turns = list(turns)
    busy = {t.question_id for t in turns if t.in_progress}
    return [t for t in turns if t.question_id not in busy], len(busy)


def by_persona_and_channel(turns: Iterable[TurnRow]) -> list[tuple[str, str, int]]:
    """(persona, channel, turns) rows for a report, largest first."""
    counts = Counter((t.persona or "-", t.channel) for t in {t.question_id: t for t in turns}.values())
    return [(persona, channel, n) for (persona, channel), n in counts.most_common()]


def _chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


class DataRights:
    """The queries behind ``botkit export``, ``botkit db forget|prune`` and retention."""

    def __init__(self, store: ConversationStore) -> None:
        self._sessions = store.sessions

    async def threads(
        self, platform: str, workspace: str | None, channel: str | None, thread: str
    ) -> list[Thread]:
        """The stored conversations with this key; ``None`` matches any workspace or channel."""
        where = [Conversation.platform == platform, Conversation.thread == thread]
        if workspace is not None:
            where.append(Conversation.workspace == workspace)
        if channel is not None:
            where.append(Conversation.channel == channel)
        return await self._threads(select(Conversation).where(*where))

    async def threads_of(self, user: str, platform: str | None = None) -> list[Thread]:
        """Every conversation in which ``user`` asked something."""
        asked = select(Message.conversation_id).where(Message.role == "user", Message.user_id == user)
        stmt = select(Conversation).where(Conversation.id.in_(asked))
        if platform is not None:
            stmt = stmt.where(Conversation.platform == platform)
        return await self._threads(stmt)

    async def _threads(self, stmt: Any) -> list[Thread]:
        async with self._sessions() as session:
            rows = (await session.scalars(stmt.order_by(Conversation.id))).all()
        return [Thread(r.id, ConversationKey(r.platform, r.workspace, r.channel, r.thread)) for r in rows]

    async def turns(
        self,
        *,
        user: str | None = None,
        platform: str | None = None,
        asked_before: datetime | None = None,
        persona: str | None = None,
        lifetimes: Sequence[Lifetime] = (),
    ) -> list[TurnRow]:
        """Every turn matching all the filters given, oldest first (in-progress ones included:
        see :func:`split_in_progress`); with ``lifetimes``, only turns one of them has expired."""
        answer = aliased(Message)
        persona_name = func.coalesce(answer.persona_name, Message.persona_name)
        reasoning = case((func.coalesce(func.length(answer.reasoning), 0) > 0, 1), else_=0)
        where: list[ColumnElement[bool]] = [Message.role == "user"]
        if user is not None:
            where.append(Message.user_id == user)
        if platform is not None:
            where.append(Conversation.platform == platform)
        if asked_before is not None:
            where.append(Message.created_at < asked_before)
        if persona is not None:
            where.append(persona_name == persona)
        if lifetimes:
            where.append(or_(*(self._expired(rule, persona_name) for rule in lifetimes)))
        stmt = (
            select(
                Message.id,
                answer.id,
                Conversation.platform,
                Conversation.workspace,
                Conversation.channel,
                Conversation.thread,
                Message.user_id,
                persona_name,
                Message.created_at,
                answer.status,
                reasoning,
            )
            .join(Conversation, Conversation.id == Message.conversation_id)
            .outerjoin(answer, (answer.reply_to_id == Message.id) & (answer.role == "assistant"))
            .where(*where)
            .order_by(Message.id)
        )
        async with self._sessions() as session:
            rows = (await session.execute(stmt)).all()
        return [
            TurnRow(q, a, ConversationKey(p, w, c, t), u, name, at, status, bool(r))
            for q, a, p, w, c, t, u, name, at, status, r in rows
        ]

    @staticmethod
    def _expired(rule: Lifetime, persona_name: ColumnElement[str]) -> ColumnElement[bool]:
        where = [Message.created_at < rule.cutoff]
        if rule.persona is not None:
            where.append(persona_name == rule.persona)
        if rule.channel is not None:
            where.append(_in_channel(rule.channel))
        return and_(*where)

    async def remove(self, turns: Sequence[TurnRow]) -> Removed:
        """Delete these turns' answers, then their questions, in one transaction.

        The statements re-check what the selection saw: an answer that went back to
        ``streaming`` meanwhile (an interrupted reply answered again) is not deleted, and
        neither is its question, so a running turn never loses its rows.
        """
        removable, in_progress = split_in_progress(turns)
        answers = sorted({t.answer_id for t in removable if t.answer_id is not None})
        questions = sorted({t.question_id for t in removable})
        reasoning = len({t.answer_id for t in removable if t.has_reasoning})
        answered = aliased(Message)
        running = exists(
            select(answered.id).where(
                answered.reply_to_id == Message.id, answered.status.in_(UNFINISHED_STATUSES)
            )
        )
        removed_answers = removed_questions = 0
        async with self._sessions.begin() as session:
            for chunk in _chunks(answers):
                result = await session.execute(
                    delete(Message).where(
                        Message.id.in_(chunk),
                        Message.role == "assistant",
                        Message.status.not_in(UNFINISHED_STATUSES),
                    )
                )
                removed_answers += _rowcount(result)
            for chunk in _chunks(questions):
                result = await session.execute(
                    delete(Message).where(Message.id.in_(chunk), Message.role == "user", ~running)
                )
                removed_questions += _rowcount(result)
        return Removed(removed_questions, removed_answers, reasoning, in_progress)

    async def remove_orphan_answers(self, user: str, platform: str | None = None) -> int:
        """Finished answer rows that carry ``user`` as their asker but no longer point at a
        question (an inbox reply row whose question went first); none are made by botkit today,
        so this is the belt to :meth:`remove`'s braces for ``forget``."""
        where: list[ColumnElement[bool]] = [
            Message.role == "assistant",
            Message.user_id == user,
            Message.reply_to_id.is_(None),
            Message.status.not_in(UNFINISHED_STATUSES),
        ]
        if platform is not None:
            where.append(
                Message.conversation_id.in_(select(Conversation.id).where(Conversation.platform == platform))
            )
        async with self._sessions.begin() as session:
            return _rowcount(await session.execute(delete(Message).where(*where)))
