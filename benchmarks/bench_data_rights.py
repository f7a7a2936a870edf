"""One ``[retention]`` pass and one ``botkit db forget`` over N stored turns, timed.

N turns (a question and an answer with reasoning each) are written straight into the
database, half of them 60 days old; then one retention pass with ``general = "30d"`` removes the
old half, a second pass finds nothing, and one user's turns (1 in 100) are forgotten. This runs
twice side by side, with and without the index of migration 0006 (``messages.reply_to_id``),
which is what the removal needs to scale: each removed question makes the database look for its
answers (the foreign key's ``ON DELETE SET NULL``), a full scan per row without it. The index is
put back afterwards.

Run from the repository root (SQLite by default; any botkit database URL, e.g. an empty
PostgreSQL database ``postgresql+asyncpg://postgres@127.0.0.1:5432/bench``)::

    python benchmarks/bench_data_rights.py --turns 5000
    python benchmarks/bench_data_rights.py --turns 5000 --url postgresql+asyncpg://postgres@127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, text

from botkit.config import load_settings
from botkit.retention import RetentionPolicy, apply_retention
from botkit.store import ConversationStore
from botkit.store.models import Message, utcnow
from botkit.store.rights import DataRights


def _rows(conversation: int, first: int, last: int) -> list[dict[str, Any]]:
    old, new = utcnow() - timedelta(days=60), utcnow()
    rows: list[dict[str, Any]] = []
    for i in range(first, last):
        at = old if i % 2 else new
        common = {"conversation_id": conversation, "status": "complete", "persona_name": "general"}
        common |= {"created_at": at, "updated_at": new, "platform_message_ids": []}
        rows.append(
            {"id": 2 * i + 1, "role": "user", "content": f"question {i} " * 10, "user_id": f"U{i % 100}"}
        )
        rows.append(
            {"id": 2 * i + 2, "role": "assistant", "content": f"answer {i} " * 40, "reply_to_id": 2 * i + 1}
        )
        rows[-1]["reasoning"] = "thinking " * 50
        rows[-2].update(common)
        rows[-1].update(common)
    return rows


async def bench(url: str, turns: int, *, index: bool) -> float:
    """One run; returns the retention pass's seconds."""
    store = await ConversationStore.open(url, migrate=True)
    try:
        async with store.sessions.begin() as session:
            await session.execute(delete(Message))
            if not index:
                await session.execute(text("DROP INDEX ix_messages_reply_to_id"))
        conversation = await store.conversation_id("slack", "T0", "C0", "1.0")
        async with store.sessions.begin() as session:
            for first in range(0, turns, 5000):
                await session.execute(insert(Message), _rows(conversation, first, min(turns, first + 5000)))
        settings = load_settings(None, retention={"personas": {"general": "30d"}})
        policy = RetentionPolicy.from_settings(settings.retention)
        assert policy is not None
        label = "with the index" if index else "without it"
        seconds: list[float] = []
        for what in ("retention pass", "second pass"):
            start = time.perf_counter()
            removed = await apply_retention(store, policy)
            seconds.append(time.perf_counter() - start)
            print(f"{label}: {what}: {seconds[-1]:.3f} s, {removed.questions} turns removed")
        rights = DataRights(store)
        start = time.perf_counter()
        removed = await rights.remove(await rights.turns(user="U8"))
        print(f"{label}: forget U8: {time.perf_counter() - start:.3f} s, {removed.questions} turns removed")
        return seconds[0]
    finally:
        if not index:
            async with store.sessions.begin() as session:
                await session.execute(text("CREATE INDEX ix_messages_reply_to_id ON messages (reply_to_id)"))
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=5000)
    parser.add_argument(
        "--url", help="a scratch database, emptied (default: a SQLite file in a temporary folder)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.url or f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        print(f"{args.turns} turns on {url.split(':')[0]}")
        indexed = asyncio.run(bench(url, args.turns, index=True))
        unindexed = asyncio.run(bench(url, args.turns, index=False))
        print(f"retention pass without the index / with it: {unindexed / indexed:.0f}x")


if __name__ == "__main__":
    main()
