"""``ConversationStore.recorded_elsewhere`` on SQLite and PostgreSQL: what the restart pass
reads so that a message found by its text is never taken for a turn when another turn's row
holds it (tests/discord/test_discord_repair_gaps.py drills it end to end)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import asyncpg
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.engine import URL
from test_store import db_url, pg_database  # noqa: F401  (the SQLite / PostgreSQL fixtures)

from botkit.store import ConversationStore
from botkit.store.models import utcnow
from botkit.store.store import recorded_elsewhere_query


async def _answered(
    bot_store: ConversationStore, delivery: str, key: tuple[str, str, str], ids: list[str]
) -> int:
    """An accepted turn in ``key`` settled with ``ids`` as its messages; its assistant row."""
    turn = await bot_store.accept("discord", delivery, key, user_text="q", user_id="1")
    assert turn is not None
    assert await bot_store.settle_unfinished(
        turn.assistant_message_id,
        status="complete",
        answer="a",
        reasoning="",
        error=None,
        platform_message_ids=ids,
    )
    return turn.assistant_message_id


async def test_the_messages_other_turns_recorded_in_a_channel_and_its_threads(db_url: str) -> None:  # noqa: F811
    store = await ConversationStore.open(db_url, migrate=True)
    try:
        mine = await _answered(store, "1", ("g", "c", "1"), ["m1"])
        await _answered(store, "2", ("g", "c", "2"), ["m2", "m3"])  # another mention in the channel
        await _answered(store, "3", ("g", "c", "t"), ["m4"])  # a thread of that channel
        await _answered(store, "4", ("g", "other", "4"), ["m5"])  # another channel
        await _answered(store, "5", ("h", "c", "5"), ["m6"])  # another server
        since = utcnow() - timedelta(minutes=5)
        key = ("discord", "g", "c", "1")
        assert await store.recorded_elsewhere(key, mine, since) == {"m2", "m3", "m4"}
        assert await store.recorded_elsewhere(key, mine, utcnow() + timedelta(minutes=5)) == set()
    finally:
        await store.close()


async def test_the_query_reads_the_channels_recent_conversations_not_the_whole_table(
    pg_database: URL,  # noqa: F811
) -> None:
    """On PostgreSQL with 100,000 older rows (a year of threads in the channel and beside it),
    the restart pass's read is planned through the conversations' indexes: no sequential scan
    of ``messages``, whose size it must not scale with (before: ``created_at`` alone bounded
    it, which nothing indexes: a scan of the whole table, 255-296 ms at 2,000,000 rows, per
    turn repaired). The answer is still the recent turns' messages."""
    url = pg_database.render_as_string(hide_password=False)
    store = await ConversationStore.open(url, migrate=True)
    try:
        mine = await _answered(store, "1", ("g", "c", "1"), ["m1"])
        await _answered(store, "2", ("g", "c", "2"), ["m2"])
        dsn = pg_database.set(drivername="postgresql").render_as_string(hide_password=False)
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(_OLDER_ROWS)
            await conn.execute("ANALYZE")
            since = utcnow() - timedelta(hours=1)
            key = ("discord", "g", "c", "1")
            compiled = recorded_elsewhere_query(key, mine, since).compile(dialect=asyncpg_dialect())
            params = [compiled.params[name] for name in compiled.positiontup or []]
            plan = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {compiled}", *params)
        finally:
            await conn.close()
        scans = {
            n["Node Type"]
            for n in _nodes(json.loads(plan)[0]["Plan"])
            if n.get("Relation Name") == "messages"
        }
        assert scans and "Seq Scan" not in scans, plan
        assert await store.recorded_elsewhere(key, mine, since) == {"m2"}
    finally:
        await store.close()


#: 10,000 older threads (5,000 in the channel) of 10 rows each, a row an hour apart.
_OLDER_ROWS = """
INSERT INTO conversations (platform, workspace, channel, thread, created_at, updated_at)
SELECT 'discord', 'g', CASE WHEN g % 2 = 0 THEN 'c' ELSE 'd' END, 'old' || g,
       now() - (g + 2) * interval '1 hour', now() - (g + 2) * interval '1 hour'
FROM generate_series(1, 10000) g;
INSERT INTO messages (conversation_id, role, content, status, platform_message_ids, created_at, updated_at)
SELECT c.id, CASE WHEN k % 2 = 0 THEN 'user' ELSE 'assistant' END, 'text', 'complete',
       json_build_array(c.id || '.' || k), c.created_at, c.created_at
FROM conversations c, generate_series(1, 10) k WHERE c.thread LIKE 'old%';
"""


def _nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    """A plan node of EXPLAIN (FORMAT JSON) and every node under it."""
    return [node, *(n for child in node.get("Plans", []) for n in _nodes(child))]
