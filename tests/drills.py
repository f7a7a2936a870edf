"""What every fault drill checks in the database: each accepted message ended in one final row."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from botkit.store.database import open_engine
from botkit.store.models import Message
from botkit.store.records import StoredMessage


async def stored_rows(database_url: str) -> list[StoredMessage]:
    """Every ``messages`` row, read over a connection of its own (as an operator would look)."""
    engine = await open_engine(database_url)
    try:
        async with AsyncSession(engine) as session:
            rows = (await session.scalars(select(Message).order_by(Message.id))).all()
            return [StoredMessage.from_row(row) for row in rows]
    finally:
        await engine.dispose()


async def assert_one_final_reply_each(database_url: str, questions: int) -> list[StoredMessage]:
    """``questions`` user rows, each with exactly one assistant row, ``complete``; none unfinished.

    Returns the assistant rows in the order they were asked.
    """
    rows = await stored_rows(database_url)
    users = [r for r in rows if r.role == "user"]
    answers = [r for r in rows if r.role == "assistant"]
    assert len(users) == questions, [r.content for r in users]
    assert sorted(a.reply_to_id or 0 for a in answers) == sorted(u.id for u in users)
    assert [a.status for a in answers] == ["complete"] * questions, [(a.status, a.error) for a in answers]
    return sorted(answers, key=lambda a: a.reply_to_id or 0)
