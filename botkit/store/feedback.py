"""Feedback votes in SQL: one 👍/👎 per user and turn, and the per-persona-version tallies.

A vote is written in ONE transaction with its delivery claim (``deliveries``, under the click's
``feedback:`` delivery id), like a message's: a redelivered click loses the unique-key race and
is not counted twice, and a process that dies mid-way leaves neither. One vote per user and turn
is the ``feedback`` table's unique key; a second click updates the row (the vote is changed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from botkit.store.models import Delivery, FeedbackVote, Message, utcnow

VoteResult = Literal["recorded", "changed", "unchanged", "duplicate", "unknown"]
"""``unknown``: no complete model answer has that turn id (deleted, or not one that had buttons)."""


@dataclass(frozen=True, slots=True)
class VersionFeedback:
    """One persona version's final replies and the votes cast on them (``botkit eval report``)."""

    persona: str
    version: str  # the persona's content hash
    replies: int  # complete model answers (the replies that carry the buttons)
    votes: int
    up: int

    @property
    def down(self) -> int:
        return self.votes - self.up

    @property
    def vote_rate(self) -> float | None:
        """Votes per final reply; None without replies."""
        return self.votes / self.replies if self.replies else None

    @property
    def up_share(self) -> float | None:
        """The share of votes that are 👍; None without votes."""
        return self.up / self.votes if self.votes else None


async def record_vote(
    sessions: async_sessionmaker[AsyncSession],
    *,
    turn_id: int,
    platform: str,
    voter: str,
    vote: str,
    delivery_id: str,
) -> VoteResult:
    """Store ``voter``'s ``vote`` on the turn whose reply row is ``turn_id``; see the module."""
    for _ in range(2):  # a concurrent first vote by the same user wins the insert: update then
        try:
            return await _record_once(sessions, turn_id, platform, voter, vote, delivery_id)
        except IntegrityError:
            if await _claimed(sessions, platform, delivery_id):
                return "duplicate"
    raise RuntimeError(f"could not store the vote of {voter} on turn {turn_id}")  # pragma: no cover


async def _record_once(
    sessions: async_sessionmaker[AsyncSession],
    turn_id: int,
    platform: str,
    voter: str,
    vote: str,
    delivery_id: str,
) -> VoteResult:
    async with sessions.begin() as session:
        turn = (
            await session.execute(
                select(Message.persona_name, Message.persona_hash, Message.conversation_id).where(
                    Message.id == turn_id,
                    Message.role == "assistant",
                    # streaming: the buttons are shown just before the final write lands
                    Message.status.in_(("streaming", "complete")),
                    Message.persona_name.is_not(None),
                )
            )
        ).one_or_none()
        if turn is None:
            return "unknown"
        session.add(
            Delivery(platform=platform, delivery_id=delivery_id, conversation_id=turn.conversation_id)
        )
        await session.flush()
        row = await session.scalar(
            select(FeedbackVote).where(
                FeedbackVote.message_id == turn_id,
                FeedbackVote.platform == platform,
                FeedbackVote.voter == voter,
            )
        )
        if row is None:
            session.add(
                FeedbackVote(
                    message_id=turn_id,
                    platform=platform,
                    voter=voter,
                    vote=vote,
                    persona_name=turn.persona_name,
                    persona_hash=turn.persona_hash,
                )
            )
            return "recorded"
        if row.vote == vote:
            return "unchanged"
        row.vote = vote
        row.updated_at = utcnow()
        return "changed"


async def _claimed(sessions: async_sessionmaker[AsyncSession], platform: str, delivery_id: str) -> bool:
    async with sessions() as session:
        found = await session.scalar(
            select(Delivery.id).where(Delivery.platform == platform, Delivery.delivery_id == delivery_id)
        )
    return found is not None


async def version_feedback(
    sessions: async_sessionmaker[AsyncSession], *, since: datetime | None = None, persona: str | None = None
) -> list[VersionFeedback]:
    """Per persona version (name, hash): its complete answers created since ``since`` and the
    votes on those answers, sorted by persona then by the version's first answer."""
    conditions: list[ColumnElement[bool]] = [
        Message.role == "assistant",
        Message.status == "complete",
        Message.persona_name.is_not(None),
    ]
    if since is not None:
        conditions.append(Message.created_at >= since)
    if persona is not None:
        conditions.append(Message.persona_name == persona)
    replies = (
        select(Message.persona_name, Message.persona_hash, func.count(), func.min(Message.created_at))
        .where(*conditions)
        .group_by(Message.persona_name, Message.persona_hash)
    )
    votes = (
        select(
            Message.persona_name,
            Message.persona_hash,
            func.count(FeedbackVote.id),
            func.coalesce(func.sum(case((FeedbackVote.vote == "up", 1), else_=0)), 0),
        )
        .join(FeedbackVote, FeedbackVote.message_id == Message.id)
        .where(*conditions)
        .group_by(Message.persona_name, Message.persona_hash)
    )
    async with sessions() as session:
        reply_rows = (await session.execute(replies)).all()
        tallies = {(r[0], r[1]): (int(r[2]), int(r[3])) for r in (await session.execute(votes)).all()}
    ordered = sorted(reply_rows, key=lambda r: (r[0], r[3]))
    return [
        VersionFeedback(str(name), str(version or ""), int(count), *tallies.get((name, version), (0, 0)))
        for name, version, count, _ in ordered
    ]


@dataclass(frozen=True, slots=True)
class StoredVote:
    """A ``feedback`` row."""

    turn_id: int
    platform: str
    voter: str
    vote: str
    persona_name: str | None
    persona_hash: str | None
    created_at: datetime
    updated_at: datetime


async def votes_on(sessions: async_sessionmaker[AsyncSession], turn_id: int) -> list[StoredVote]:
    """Every vote on one turn, oldest first (for admin tools and tests)."""
    async with sessions() as session:
        rows = (
            await session.scalars(
                select(FeedbackVote).where(FeedbackVote.message_id == turn_id).order_by(FeedbackVote.id)
            )
        ).all()
    return [
        StoredVote(
            r.message_id,
            r.platform,
            r.voter,
            r.vote,
            r.persona_name,
            r.persona_hash,
            r.created_at,
            r.updated_at,
        )
        for r in rows
    ]
