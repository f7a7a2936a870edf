"""What every fault drill checks in the database: each accepted message ended in one final row."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from botkit.store.database import open_engine
from botkit.store.models import Message
from botkit.store.records import StoredMessage
from botkit.testing.testbot import TestBot

STATUS = ("_", "⏳")  # "_Thinking…_", "⏳ _Many questions right now…_": not the answer yet


def assert_only_grew(versions: Sequence[str], final: str) -> None:
    """A message's versions, oldest first: status notices, then the answer, which only ever grew
    (no rewind, no second answer) and ends in ``final`` (nothing overwrote the complete answer)."""
    answer = [v for v in versions if not v.startswith(STATUS)]
    assert list(versions[: len(versions) - len(answer)]) == [v for v in versions if v.startswith(STATUS)], (
        versions
    )
    for before, after in itertools.pairwise(answer):
        assert after.startswith(before.removesuffix("…").rstrip()), (before, after)
    assert answer and answer[-1] == final, versions


async def wait_idle(bot: TestBot, timeout: float = 20.0) -> None:
    """Wait until no row is ``queued`` or ``streaming`` (every turn stored)."""
    async with asyncio.timeout(timeout):
        while await bot.store.unfinished_turns():  # noqa: ASYNC110 - polling the database
            await asyncio.sleep(0.02)


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
