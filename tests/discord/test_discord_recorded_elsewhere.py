"""``ConversationStore.recorded_elsewhere`` on SQLite and PostgreSQL: what the restart pass
reads so that a message found by its text is never taken for a turn when another turn's row
holds it (tests/discord/test_discord_repair_gaps.py drills it end to end)."""

from __future__ import annotations

from datetime import timedelta

from test_store import db_url, pg_database  # noqa: F401  (the SQLite / PostgreSQL fixtures)

from botkit.store import ConversationStore
from botkit.store.models import utcnow


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
