"""The conversation store against real databases: a SQLite file and a PostgreSQL server.

The schema always comes from the Alembic migration (never ``create_all``), so these tests also
check that the migration matches the models. PostgreSQL tests use a fresh, randomly named
database per module and are skipped only when the server cannot be reached at all.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
from collections.abc import Coroutine, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from services import unreachable
from sqlalchemy import inspect, text
from sqlalchemy.engine import URL, Connection, make_url

from botkit.store import (
    ConversationStore,
    HistoryTurn,
    StoreError,
    current_revision,
    downgrade,
    head_revision,
    migrations_dir,
    upgrade,
)
from botkit.store.database import create_engine
from botkit.store.models import Base

REPO = Path(__file__).resolve().parents[1]
PG_DSN = os.environ.get("BOTKIT_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
PASSWORD = "pw-s3cret-Do-Not-Print"


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine from a sync fixture on a private loop (leaves pytest-asyncio's loop alone)."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


async def _admin_connect() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(PG_DSN, timeout=5)
    except asyncpg.InvalidCatalogNameError:  # no `test` database: fall back to `postgres`
        return await asyncpg.connect(str(make_url(PG_DSN).set(database="postgres")), timeout=5)


@pytest.fixture(scope="module")
def pg_database() -> Iterator[URL]:
    """A fresh PostgreSQL database for this module, dropped afterwards."""
    name = f"botkit_test_{secrets.token_hex(6)}"

    async def create() -> None:
        admin = await _admin_connect()
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()

    try:
        _run(create())
    except (OSError, TimeoutError, asyncpg.CannotConnectNowError) as err:
        unreachable("PostgreSQL", make_url(PG_DSN).render_as_string(), err)
    base = make_url(PG_DSN)
    yield URL.create(
        "postgresql+asyncpg", username=base.username, host=base.host, port=base.port, database=name
    )

    async def drop() -> None:
        conn = await _admin_connect()
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    _run(drop())


async def _reset_pg(url: URL) -> None:
    conn = await asyncpg.connect(
        host=url.host, port=url.port, user=url.username, database=url.database, timeout=5
    )
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database URL: a SQLite file in a not-yet-existing directory, or the module's
    PostgreSQL database with its schema wiped after each test (a bot on it spools under
    ``tmp_path``: tests/conftest.py's ``_pending_in_tmp``; other modules import this fixture)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'data' / 'botkit.db'}"
        return
    request.getfixturevalue("_pending_in_tmp")
    url: URL = request.getfixturevalue("pg_database")
    _run(_reset_pg(url))
    yield url.render_as_string(hide_password=False)
    _run(_reset_pg(url))


@pytest.fixture
async def store(db_url: str) -> Any:
    s = await ConversationStore.open(db_url, migrate=True)
    try:
        yield s
    finally:
        await s.close()


async def _sql(url: str, sql: str) -> Any:
    engine = create_engine(url, null_pool=True)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(text(sql))).scalar()
    finally:
        await engine.dispose()


async def _schema(url: str) -> dict[str, Any]:
    def describe(conn: Connection) -> dict[str, Any]:
        insp = inspect(conn)
        tables = sorted(insp.get_table_names())
        out: dict[str, Any] = {"tables": tables}
        for t in tables:
            out[t] = {
                "unique": sorted(
                    (u["name"], tuple(u["column_names"])) for u in insp.get_unique_constraints(t)
                ),
                "indexes": sorted((i["name"], tuple(i["column_names"])) for i in insp.get_indexes(t)),
                "fks": sorted(
                    (tuple(f["constrained_columns"]), f["referred_table"], f["options"].get("ondelete"))
                    for f in insp.get_foreign_keys(t)
                ),
                "checks": sorted(c["name"] for c in insp.get_check_constraints(t)),
            }
        out["diff"] = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        return out

    engine = create_engine(url, null_pool=True)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(describe)
    finally:
        await engine.dispose()


async def test_migrations_dir_is_the_source_checkout() -> None:
    assert migrations_dir() == REPO / "migrations"
    assert (migrations_dir() / "env.py").is_file()
    assert not (REPO / "alembic.ini").exists()


async def test_migration_creates_the_models_schema(db_url: str) -> None:
    assert await current_revision(db_url) is None
    await upgrade(db_url)
    assert await current_revision(db_url) == head_revision() == "0006"
    schema = await _schema(db_url)
    assert schema["tables"] == [
        "alembic_version",
        "audit",
        "conversations",
        "deliveries",
        "feedback",
        "messages",
        "persona_versions",
        "workers",
    ]
    assert schema["audit"]["indexes"] == [("ix_audit_actor_at", ("actor", "at")), ("ix_audit_at", ("at",))]
    assert schema["persona_versions"]["unique"] == [("uq_persona_versions_name_hash", ("name", "hash"))]
    assert schema["conversations"]["unique"] == [
        ("uq_conversations_platform_workspace_channel_thread", ("platform", "workspace", "channel", "thread"))
    ]
    assert schema["deliveries"]["unique"] == [
        ("uq_deliveries_platform_delivery_id", ("platform", "delivery_id"))
    ]
    assert schema["deliveries"]["fks"] == [(("conversation_id",), "conversations", "SET NULL")]
    assert schema["messages"]["indexes"] == [
        ("ix_messages_conversation_id_id", ("conversation_id", "id")),
        ("ix_messages_reply_to_id", ("reply_to_id",)),
        ("ix_messages_unfinished", ("id",)),
    ]
    assert schema["messages"]["fks"] == [
        (("conversation_id",), "conversations", "CASCADE"),
        (("reply_to_id",), "messages", "SET NULL"),
    ]
    assert schema["messages"]["checks"] == ["ck_messages_role", "ck_messages_status"]
    assert schema["feedback"]["unique"] == [
        ("uq_feedback_message_id_platform_voter", ("message_id", "platform", "voter"))
    ]
    assert schema["feedback"]["fks"] == [(("message_id",), "messages", "CASCADE")]
    assert ("ix_feedback_persona_name_persona_hash", ("persona_name", "persona_hash")) in schema["feedback"][
        "indexes"
    ]  # PostgreSQL also lists the unique key's index
    assert schema["feedback"]["checks"] == ["ck_feedback_vote"]
    # The hand-written migration and the models agree column by column (types, nullability).
    assert schema["diff"] == []
    await upgrade(db_url)  # idempotent at head


async def test_downgrade_removes_the_schema_and_upgrade_restores_it(db_url: str) -> None:
    await upgrade(db_url)
    await downgrade(db_url, "base")
    assert await current_revision(db_url) is None
    assert (await _schema(db_url))["tables"] == ["alembic_version"]
    await upgrade(db_url)
    assert await current_revision(db_url) == head_revision()


async def test_sqlite_auto_migrates_and_creates_the_directory(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'a' / 'b' / 'bot.db'}"
    store = await ConversationStore.open(url)
    try:
        assert await current_revision(url) == head_revision()
        assert await _sql(url, "PRAGMA journal_mode") == "wal"
    finally:
        await store.close()


async def test_open_unmigrated_without_migrate_raises_clear_error(db_url: str) -> None:
    url = make_url(db_url)
    if url.get_backend_name() == "postgresql":
        url = url.set(password=PASSWORD)  # trust auth ignores it; it must still never be shown
    with pytest.raises(StoreError) as info:
        await ConversationStore.open(url.render_as_string(hide_password=False), migrate=False)
    message = str(info.value)
    assert "is at revision none" in message
    assert f"botkit needs {head_revision()}: run `botkit db upgrade`" in message
    assert PASSWORD not in message
    if url.get_backend_name() == "postgresql":
        assert "***" in message
        # The default for PostgreSQL is to check, not to migrate.
        with pytest.raises(StoreError):
            await ConversationStore.open(db_url)


async def test_unreachable_database_error_hides_password() -> None:
    url = f"postgresql+asyncpg://bot:{PASSWORD}@127.0.0.1:1/botkit"
    with pytest.raises(StoreError) as info:
        await ConversationStore.open(url)
    assert PASSWORD not in str(info.value)
    assert "bot:***@127.0.0.1:1" in str(info.value)
    assert info.value.__cause__ is None


async def test_claim_delivery_exactly_once_under_concurrency(store: ConversationStore) -> None:
    results = await asyncio.gather(*(store.claim_delivery("slack", "Ev1") for _ in range(20)))
    assert sorted(results) == [False] * 19 + [True]
    # The key is per platform.
    assert await store.claim_delivery("discord", "Ev1") is True
    assert await store.claim_delivery("discord", "Ev1") is False


async def test_accept_is_one_transaction_exactly_once_and_knows_a_new_thread(
    store: ConversationStore,
) -> None:
    """The intake on each backend: 20 racing copies of one delivery leave one claim and one pair
    of rows; a duplicate leaves nothing (its conversation upsert is guarded by the claim); only the
    thread's first accepted message says the conversation is new."""
    key = ("W1", "C1", "T1")
    accepted = await asyncio.gather(
        *(store.accept("slack", "Ev1", key, user_text="hi", user_id="U1") for _ in range(20))
    )
    winners = [ids for ids in accepted if ids is not None]
    assert len(winners) == 1 and winners[0].new_conversation
    again = await store.accept("slack", "Ev2", key, user_text="more", user_id="U1")
    assert again is not None and not again.new_conversation
    assert again.conversation_id == winners[0].conversation_id
    assert await store.accept("slack", "Ev2", ("W1", "C1", "T2"), user_text="dup", user_id="U1") is None
    conversation = winners[0].conversation_id
    assert conversation is not None
    rows = [(m.role, m.status, m.content, m.reply_to_id) for m in await store.messages(conversation)]
    first, second = winners[0], again
    assert rows == [
        ("user", "complete", "hi", None),
        ("assistant", "queued", "", first.user_message_id),
        ("user", "complete", "more", None),
        ("assistant", "queued", "", second.user_message_id),
    ]
    # The duplicate's thread T2 was not created: a claimed delivery's upsert writes nothing.
    fresh = await store.accept("slack", "Ev3", ("W1", "C1", "T2"), user_text="new", user_id="U1")
    assert fresh is not None and fresh.new_conversation


async def test_claim_delivery_exactly_once_across_two_engines(db_url: str) -> None:
    a = await ConversationStore.open(db_url, migrate=True)
    b = await ConversationStore.open(db_url, migrate=True)
    try:
        ids = [f"Ev{i}" for i in range(5)]
        claims = [(s, d) for d in ids for s in (a, b) for _ in range(5)]
        results = await asyncio.gather(*(s.claim_delivery("slack", d) for s, d in claims))
        for d in ids:
            assert sum(r for (_, cd), r in zip(claims, results, strict=True) if cd == d) == 1
    finally:
        await a.close()
        await b.close()


CLAIMER = """
import asyncio, json, sys
from botkit.store import ConversationStore

async def main(url, n):
    store = await ConversationStore.open(url, migrate=False)
    try:
        won = await asyncio.gather(*(store.claim_delivery("slack", f"E{i}") for i in range(n)))
    finally:
        await store.close()
    print(json.dumps([i for i, w in enumerate(won) if w]))

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


async def test_claim_delivery_exactly_once_across_two_processes(db_url: str) -> None:
    await upgrade(db_url)
    n = 40
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", CLAIMER, db_url, str(n), env=env, stdout=asyncio.subprocess.PIPE
        )
        for _ in range(2)
    ]
    outputs = [await p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    won = [set(json.loads(out)) for out, _ in outputs]
    assert won[0].isdisjoint(won[1])
    assert won[0] | won[1] == set(range(n))


async def test_conversation_id_get_or_create_is_race_safe(db_url: str, store: ConversationStore) -> None:
    other = await ConversationStore.open(db_url, migrate=False)
    try:
        key = ("slack", "T1", "C1", "1712345678.000100")
        ids = await asyncio.gather(*(s.conversation_id(*key) for s in (store, other) for _ in range(10)))
        assert len(set(ids)) == 1
        assert await _sql(db_url, "SELECT count(*) FROM conversations") == 1
        assert await store.conversation_id(*key) == ids[0]
        assert await store.conversation_id("slack", "T1", "C1", "other") != ids[0]
        assert await store.conversation_id("discord", "T1", "C1", key[3]) != ids[0]
    finally:
        await other.close()


async def _turn(store: ConversationStore, cid: int, text_: str, status: str, answer: str, **kw: Any) -> int:
    ids = await store.start_turn(
        cid,
        user_text=text_,
        user_id="U1",
        delivery_id=None,
        persona_name="general",
        persona_hash="h",
        model="m",
    )
    if status != "streaming":
        await store.finish_turn(ids.assistant_message_id, status=status, answer=answer, reasoning="r", **kw)
    return ids.assistant_message_id


async def test_history_is_completed_turns_oldest_first_with_limit(store: ConversationStore) -> None:
    cid = await store.conversation_id("console", "", "local", "default")
    other = await store.conversation_id("console", "", "local", "other")
    await _turn(store, cid, "q1", "complete", "a1")
    await _turn(store, cid, "q2", "failed", "partial", error="boom")
    await _turn(store, cid, "q3", "interrupted", "half")
    await _turn(store, cid, "q4", "complete", "")  # empty answer: not an exchange worth replaying
    await _turn(store, other, "elsewhere", "complete", "not here")
    await _turn(store, cid, "q5", "complete", "a5")
    await _turn(store, cid, "q6", "complete", "a6")
    await _turn(store, cid, "q7", "streaming", "")  # in flight

    assert await store.history(cid) == [
        HistoryTurn("q1", "a1"),
        HistoryTurn("q5", "a5"),
        HistoryTurn("q6", "a6"),
    ]
    assert await store.history(cid, limit=2) == [HistoryTurn("q5", "a5"), HistoryTurn("q6", "a6")]
    assert await store.history(cid, limit=0) == []
    assert await store.history(other) == [HistoryTurn("elsewhere", "not here")]


async def test_start_and_finish_turn_persist_every_field(store: ConversationStore) -> None:
    cid = await store.conversation_id("slack", "T1", "C1", "1.0")
    ids = await store.start_turn(
        cid,
        user_text="What is 2+2?",
        user_id="U42",
        delivery_id="Ev42",
        persona_name="math",
        persona_hash="sha256:abc",
        model="deepseek-r1",
    )
    user, assistant = await store.messages(cid)
    assert (user.id, assistant.id) == (ids.user_message_id, ids.assistant_message_id)
    assert (user.role, user.status, user.content, user.user_id) == ("user", "complete", "What is 2+2?", "U42")
    assert (assistant.role, assistant.status, assistant.reply_to_id) == ("assistant", "streaming", user.id)
    assert await store.unfinished_turns() == [assistant]

    await store.record_message_ids(ids.assistant_message_id, ["111.1"])
    assert (await store.messages(cid))[1].platform_message_ids == ["111.1"]

    await store.finish_turn(
        ids.assistant_message_id,
        status="complete",
        answer="\\boxed{4}",
        reasoning="2+2 is 4 — ünïcode ✓",
        prompt_tokens=17,
        completion_tokens=230,
        ttft_ms=812.6,
        total_ms=4021,
        error=None,
        platform_message_ids=["111.1", "111.2"],
    )
    done = (await store.messages(cid))[1]
    assert done.status == "complete"
    assert done.content == "\\boxed{4}"
    assert done.reasoning == "2+2 is 4 — ünïcode ✓"
    assert (done.prompt_tokens, done.completion_tokens, done.ttft_ms, done.total_ms) == (17, 230, 813, 4021)
    assert done.platform_message_ids == ["111.1", "111.2"]
    assert done.error is None
    assert (done.persona_name, done.persona_hash, done.model) == ("math", "sha256:abc", "deepseek-r1")
    assert (done.delivery_id, done.reply_to_id, done.conversation_id) == ("Ev42", user.id, cid)
    assert done.created_at.tzinfo is not None
    assert done.created_at.utcoffset() == timedelta(0)
    assert done.updated_at >= done.created_at
    assert await store.unfinished_turns() == []

    await store.finish_turn(
        ids.assistant_message_id, status="failed", answer="", reasoning=None, error="timeout"
    )
    failed = (await store.messages(cid))[1]
    assert (failed.status, failed.error, failed.reasoning) == ("failed", "timeout", None)
    assert failed.platform_message_ids == ["111.1", "111.2"]  # None keeps the recorded ids


async def test_finish_turn_rejects_bad_status_and_unknown_rows(store: ConversationStore) -> None:
    cid = await store.conversation_id("console", "", "local", "default")
    ids = await store.start_turn(
        cid, user_text="hi", user_id=None, delivery_id=None, persona_name=None, persona_hash=None, model=None
    )
    with pytest.raises(ValueError, match="status"):
        await store.finish_turn(ids.assistant_message_id, status="streaming", answer="", reasoning=None)
    with pytest.raises(StoreError, match="no assistant message"):
        await store.finish_turn(ids.user_message_id, status="complete", answer="x", reasoning=None)
    with pytest.raises(StoreError, match="no assistant message"):
        await store.record_message_ids(10**9, ["x"])


async def test_unfinished_turns_survive_a_restart(db_url: str) -> None:
    first = await ConversationStore.open(db_url, migrate=True)
    try:
        cid = await first.conversation_id("discord", "G", "C", "T")
        ids = await first.start_turn(
            cid, user_text="hi", user_id="u", delivery_id="d", persona_name="p", persona_hash="h", model="m"
        )
    finally:
        await first.close()
    second = await ConversationStore.open(db_url, migrate=True)
    try:
        [left] = await second.unfinished_turns()
        assert left.id == ids.assistant_message_id
        await second.finish_turn(left.id, status="interrupted", answer="", reasoning=None, error="restart")
        assert await second.unfinished_turns() == []
    finally:
        await second.close()


async def test_concurrent_upgrades_are_serialized(db_url: str) -> None:
    """Two bot processes starting at once on an empty database: one migrates, the other waits."""
    await asyncio.gather(*(upgrade(db_url) for _ in range(3)))
    assert await current_revision(db_url) == head_revision()


async def test_old_delivery_claims_are_pruned(db_url: str) -> None:
    from datetime import timedelta

    store = await ConversationStore.open(db_url, migrate=True)
    try:
        assert await store.claim_delivery("slack", "Ev-old")
        assert await store.prune_deliveries(timedelta(hours=1)) == 0  # still fresh: kept
        assert not await store.claim_delivery("slack", "Ev-old")
        assert await store.prune_deliveries(timedelta(0)) == 1
        assert await store.claim_delivery("slack", "Ev-old")  # long gone: a new event may use it
    finally:
        await store.close()


async def test_upgrade_from_0001_keeps_rows_and_downgrade_folds_new_statuses(db_url: str) -> None:
    """0002 adds ``queued``/``cancelled``: rows written under 0001 survive the upgrade, and a
    downgrade turns the new statuses into ``interrupted`` (which 0001 accepts)."""
    await upgrade(db_url, "0001")
    engine = create_engine(db_url, null_pool=True)
    try:
        async with engine.begin() as conn:  # a process of the previous release, mid-reply
            await conn.execute(
                text(
                    "INSERT INTO conversations (platform, workspace, channel, thread, created_at, updated_at) "
                    "VALUES ('test', 'w', 'c', 't', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            )
            conversation = (await conn.execute(text("SELECT id FROM conversations"))).scalar_one()
            await conn.execute(
                text(
                    "INSERT INTO messages (conversation_id, role, content, status, platform_message_ids, "
                    "created_at, updated_at) VALUES (:c, 'assistant', 'part', 'streaming', '[]', "
                    "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"c": conversation},
            )
            old = (await conn.execute(text("SELECT id FROM messages"))).scalar_one()
    finally:
        await engine.dispose()
    await upgrade(db_url)
    store = await ConversationStore.open(db_url, migrate=False)
    try:
        queued = await store.start_turn(
            conversation, user_text="q2", user_id="u", delivery_id="d2", persona_name="general",
            persona_hash="h", model="m", status="queued", platform_message_ids=["p1"],
        )  # fmt: skip
        unfinished = {m.id: (m.status, m.platform_message_ids) for m in await store.unfinished_turns()}
    finally:
        await store.close()
    assert unfinished == {old: ("streaming", []), queued.assistant_message_id: ("queued", ["p1"])}
    await downgrade(db_url, "0001")
    assert await _sql(db_url, f"SELECT status FROM messages WHERE id = {queued.assistant_message_id}") == (
        "interrupted"
    )


async def test_audit_rows_filter_by_time_and_actor_and_are_pruned(store: ConversationStore) -> None:
    await store.audit(
        "refusal", platform="slack", workspace="T1", channel="C1", actor="U1", detail={"rule": "channels"}
    )
    await store.audit("admin_command", platform="discord", actor="U2", detail={"command": "persona list"})
    await store.audit("persona_reload", platform="botkit", detail={"persona": "math", "hash": "ab"})
    rows = await store.audit_entries(since=timedelta(days=1))
    assert [(r.action, r.actor) for r in rows] == [
        ("refusal", "U1"),
        ("admin_command", "U2"),
        ("persona_reload", None),
    ]
    assert rows[0].detail == {"rule": "channels"}
    assert (rows[0].platform, rows[0].workspace, rows[0].channel) == ("slack", "T1", "C1")
    assert [r.action for r in await store.audit_entries(actor="U2")] == ["admin_command"]
    assert await store.prune_audit(timedelta(days=1)) == 0  # fresh rows stay
    assert await store.prune_audit(timedelta(0)) == 3
    assert await store.audit_entries() == []


async def test_persona_versions_are_stored_once_per_hash(store: ConversationStore) -> None:
    assert await store.remember_persona_version("math", "aaaa1111", "v1 text")
    assert not await store.remember_persona_version("math", "aaaa1111", "v1 text")  # the same version
    assert await store.remember_persona_version("math", "bbbb2222", "v2 text")
    assert await store.remember_persona_version("legal", "aaaa1111", "other persona, same hash")
    versions = await store.persona_versions("math")
    assert [(v.hash, v.text) for v in versions] == [("aaaa1111", "v1 text"), ("bbbb2222", "v2 text")]
    assert versions[0].first_seen <= versions[1].first_seen
    assert await store.persona_versions("nobody") == []


async def test_a_bot_on_either_database_spools_under_the_tests_directory(db_url: str, tmp_path: Path) -> None:
    """The fixture's databases keep a bot's pending writes under ``tmp_path`` (beside the SQLite
    file; for PostgreSQL the directory tests/conftest.py's ``_pending_in_tmp`` names), never in
    ``./botkit-pending`` of the directory pytest runs in: this fixture is imported by other
    test modules (eval reports, persona history, data rights) that run whole bots on it."""
    from botkit.testing import TestBot

    async with TestBot(
        tmp_path / "bot", database_url=db_url, settings={"database": {"auto_migrate": True}}
    ) as bot:
        await bot.ask("Question one?")
        assert bot.app is not None and bot.app.spool is not None
        directory = bot.app.spool.directory
    assert directory.is_relative_to(tmp_path) and directory.is_dir()
