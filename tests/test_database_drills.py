"""Database drills: the database goes away at the start, in the middle and at the end of a turn
(a private PostgreSQL server stopped and started again, a SQLite file locked by another
connection), and botkit restarts over replies left unfinished.

Each drill looks at what the user saw (every version of every message) and what the database
holds: one final reply or one visible error per question, no duplicates, no row left
``queued``/``streaming``, and an answer once shown never overwritten.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from db_faults import PrivatePostgres, exclusive_lock
from polling import until

from botkit.events import ConversationKey
from botkit.pipeline.recorder import FinalWrites
from botkit.store import ConversationStore, StoredMessage
from botkit.store.spool import WriteSpool
from botkit.testing import RecordingReply, Standin, TestBot
from botkit.testing.fake_discord import FakeDiscord
from botkit.testing.fake_slack import FakeSlack, SlackMessage

pytestmark = pytest.mark.timeout(90)

PLACEHOLDERS = ("_Thinking…_", "_Thinking… ")
LEFTOVER_NOTE = "⚠️ _Interrupted: botkit restarted before this answer was finished. Please ask again._"


def words(count: int, stem: str = "word") -> str:
    return " ".join(f"{stem}{i}" for i in range(count))


def versions(reply: RecordingReply) -> list[str]:
    """Every text the reply's messages showed, in order."""
    return [c.text for c in reply.calls if c.method in ("post_placeholder", "edit", "post_continuation")]


def assert_shown_once_and_kept(reply: RecordingReply, answer: str) -> None:
    """The reply grew towards ``answer``, showed it, and nothing came after it: no error, no note."""
    shown = versions(reply)
    assert reply.text == answer
    assert reply.error is None
    assert shown[-1] == answer
    for text in shown[:-1]:
        assert text.startswith(PLACEHOLDERS) or answer.startswith(text), text
    assert not any("went wrong" in t or "Interrupted" in t for t in shown)


def assert_settled(rows: list[StoredMessage]) -> None:
    """Exactly one assistant row per question, none left unfinished."""
    questions = [r for r in rows if r.role == "user"]
    answers = [r for r in rows if r.role == "assistant"]
    assert sorted(a.reply_to_id for a in answers) == sorted(q.id for q in questions)
    assert not [a.status for a in answers if a.status in ("queued", "streaming")]


async def thread_rows(bot: TestBot, thread: str = "thread-1") -> list[StoredMessage]:
    conversation = await bot.store.conversation_id("test", "workspace-1", "channel-1", thread)
    return await bot.store.messages(conversation)


async def get_json(bot: TestBot, path: str) -> Any:
    assert bot.app is not None and bot.app.status_server is not None
    url = f"http://127.0.0.1:{bot.app.status_server.port}{path}"
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return await response.json() if path == "/healthz" else await response.text()


async def pending_writes(bot: TestBot) -> int:
    report = await get_json(bot, "/healthz")
    return int(report["database"]["pending_writes"])


def settings(tmp_path: Path, **database: Any) -> dict[str, Any]:
    return {
        "database": {"pending_writes_dir": str(tmp_path / "pending"), **database},
        "server": {"enabled": True, "port": 0},
    }


def postgres_bot(tmp_path: Path, server: PrivatePostgres, **database: Any) -> TestBot:
    """A bot on the private server whose stand-in streams 20 tokens a second."""
    return TestBot(
        tmp_path,
        database_url=server.url,
        settings=settings(tmp_path, auto_migrate=True, **database),
        standin=Standin(tokens_per_second=20),
    )


def spooled(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "pending").glob("*.json"))


# -- PostgreSQL --------------------------------------------------------------------------------


async def test_postgres_down_before_the_claim_is_a_visible_error_and_nothing_half_done(
    tmp_path: Path, private_postgres: PrivatePostgres
) -> None:
    async with TestBot(
        tmp_path, database_url=private_postgres.url, settings=settings(tmp_path, auto_migrate=True)
    ) as bot:
        await private_postgres.stop()
        refused = await bot.ask("is anyone there?")
        await private_postgres.start()
        bot.standin.script_reply("Yes, back again.")
        answered = await bot.ask("is anyone there now?")
        rows = await thread_rows(bot)
    assert versions(refused) == [refused.text]  # one message, never edited
    assert "could not take your question" in refused.text
    assert len(bot.standin.requests) == 1  # only the second question reached the model
    assert_shown_once_and_kept(answered, "Yes, back again.")
    assert [(r.role, r.status, r.content) for r in rows] == [
        ("user", "complete", "is anyone there now?"),
        ("assistant", "complete", "Yes, back again."),
    ]


async def test_postgres_down_in_the_middle_checkpoints_fail_and_the_answer_completes(
    tmp_path: Path, private_postgres: PrivatePostgres, caplog: pytest.LogCaptureFixture
) -> None:
    answer = words(110)
    async with postgres_bot(tmp_path, private_postgres) as bot:
        bot.standin.script_reply(answer)
        reply = RecordingReply()
        submission = await bot.bot.submit(bot.message("tell me a long story"), reply)
        checkpointed = ""

        async def first_checkpoint() -> bool:
            nonlocal checkpointed
            rows = await thread_rows(bot)
            checkpointed = rows[-1].content if len(rows) == 2 else ""
            return bool(checkpointed)

        async with asyncio.timeout(20):
            while not await first_checkpoint():  # noqa: ASYNC110 - polling the database
                await asyncio.sleep(0.05)
        with caplog.at_level(logging.WARNING, logger="botkit.pipeline.turns"):
            await private_postgres.stop()
            await until(lambda: "could not checkpoint a streaming answer" in caplog.text, 20)
            assert not reply.finished.is_set()  # still streaming while the database is away
            await private_postgres.start()
        await submission.wait()
        rows = await thread_rows(bot)
    assert answer.startswith(checkpointed) and checkpointed != answer
    assert_shown_once_and_kept(reply, answer)
    assert_settled(rows)
    assert (rows[-1].status, rows[-1].content) == ("complete", answer)


async def test_postgres_down_at_the_end_the_final_write_waits_and_history_keeps_the_answer(
    tmp_path: Path, private_postgres: PrivatePostgres
) -> None:
    answer = words(40)
    async with postgres_bot(tmp_path, private_postgres) as bot:
        bot.standin.script_reply(answer)
        bot.standin.script_reply("And a second answer.")
        first = RecordingReply()
        asked = await bot.bot.submit(bot.message("first question"), first)
        await until(lambda: any(t.startswith("word") for t in versions(first)), 20)
        await private_postgres.stop()  # the answer finishes streaming while the database is away
        async with asyncio.timeout(20):
            await first.finished.wait()
            while await pending_writes(bot) != 1:  # noqa: ASYNC110 - polling /healthz
                await asyncio.sleep(0.05)
        report = await get_json(bot, "/healthz")
        metrics = await get_json(bot, "/metrics")
        assert spooled(tmp_path)  # a kill now would not lose it (see the crash drills)
        await private_postgres.start()
        follow_up = RecordingReply()
        second = await bot.bot.submit(bot.message("and then?"), follow_up)  # same thread
        await asyncio.gather(asked.wait(), second.wait())
        after = await get_json(bot, "/healthz")
        rows = await thread_rows(bot)
    assert report["ready"] is True and report["degraded"] is True  # still answering, but degraded
    assert report["database"]["writes_given_up"] == 0
    assert "botkit_database_pending_writes 1.0" in metrics
    assert_shown_once_and_kept(first, answer)
    assert_shown_once_and_kept(follow_up, "And a second answer.")
    asked_with = bot.standin.requests[-1]["messages"]
    assert [m["content"] for m in asked_with[:2]] == ["first question", answer]  # in its history
    assert_settled(rows)
    assert [(r.status, r.content) for r in rows if r.role == "assistant"] == [
        ("complete", answer),
        ("complete", "And a second answer."),
    ]
    assert (after["degraded"], after["database"]["pending_writes"]) == (False, 0)
    assert after["database"]["writes_landed_late"] == 1
    assert spooled(tmp_path) == []


async def test_postgres_away_past_the_retry_timeout_gives_up_loudly_and_the_next_start_stores_it(
    tmp_path: Path, private_postgres: PrivatePostgres, caplog: pytest.LogCaptureFixture
) -> None:
    answer = words(30, stem="secret")
    async with postgres_bot(tmp_path, private_postgres, write_retry_timeout=1) as bot:
        bot.standin.script_reply(answer)
        reply = RecordingReply()
        asked = await bot.bot.submit(bot.message("first question"), reply)
        await until(lambda: any(t.startswith("secret") for t in versions(reply)), 20)
        await private_postgres.stop()
        with caplog.at_level(logging.ERROR, logger="botkit.pipeline.recorder"):
            await asked.wait()  # gave up: the thread is free again
        report = await get_json(bot, "/healthz")
        await private_postgres.start()
    (gave_up,) = [
        r for r in caplog.records if r.levelno == logging.ERROR and r.name == "botkit.pipeline.recorder"
    ]
    assert "test:workspace-1/channel-1/thread-1" in gave_up.getMessage()
    assert f"({len(answer)} characters" in gave_up.getMessage()
    assert "secret" not in gave_up.getMessage()  # never the text
    assert report["database"]["writes_given_up"] == 1 and report["database"]["pending_writes"] == 0
    assert_shown_once_and_kept(reply, answer)
    assert spooled(tmp_path)
    async with TestBot(
        tmp_path / "next", database_url=private_postgres.url, settings=settings(tmp_path)
    ) as restarted:
        rows = await thread_rows(restarted)
    assert_settled(rows)
    assert [(r.status, r.content) for r in rows if r.role == "assistant"] == [("complete", answer)]
    assert spooled(tmp_path) == []


# -- SQLite ------------------------------------------------------------------------------------


async def test_sqlite_locked_at_the_end_the_final_write_waits_for_the_lock(tmp_path: Path) -> None:
    answer = words(40)
    async with TestBot(tmp_path, settings=settings(tmp_path), standin=Standin(tokens_per_second=20)) as bot:
        bot.standin.script_reply(answer)
        bot.standin.script_reply("And a second answer.")
        first = RecordingReply()
        asked = await bot.bot.submit(bot.message("first question"), first)
        await until(lambda: any(t.startswith("word") for t in versions(first)), 20)
        with exclusive_lock(tmp_path / "botkit.db") as release:
            async with asyncio.timeout(20):
                await first.finished.wait()  # shown in full while the file is locked
                while await pending_writes(bot) != 1:  # noqa: ASYNC110 - polling /healthz
                    await asyncio.sleep(0.05)
            follow_up = RecordingReply()
            claiming = asyncio.create_task(bot.bot.submit(bot.message("and then?"), follow_up))
            await asyncio.sleep(0.5)
            assert not claiming.done()  # its claim waits for the lock (SQLite's busy timeout)
            release.set()
        second = await claiming
        await asyncio.gather(asked.wait(), second.wait())
        after = await get_json(bot, "/healthz")
        rows = await thread_rows(bot)
    assert_shown_once_and_kept(first, answer)
    assert_shown_once_and_kept(follow_up, "And a second answer.")
    asked_with = bot.standin.requests[-1]["messages"]
    assert [m["content"] for m in asked_with[:2]] == ["first question", answer]
    assert_settled(rows)
    assert [(r.status, r.content) for r in rows if r.role == "assistant"] == [
        ("complete", answer),
        ("complete", "And a second answer."),
    ]
    assert after["database"]["pending_writes"] == 0


@contextlib.asynccontextmanager
async def _one_turn(tmp_path: Path) -> AsyncIterator[tuple[Path, str, ConversationStore, int, Any]]:
    """A SQLite store with one console turn started: (file, URL, store, conversation, its ids)."""
    database = tmp_path / "botkit.db"
    url = f"sqlite+aiosqlite:///{database}"
    store = await ConversationStore.open(url, migrate=True)
    try:
        conversation = await store.conversation_id("console", "local", "tty", "t")
        ids = await store.start_turn(
            conversation, user_text="q", user_id="u", delivery_id="d1",
            persona_name="general", persona_hash="h", model="m",
        )  # fmt: skip
        yield database, url, store, conversation, ids
    finally:
        await store.close()


async def test_a_final_write_is_on_disk_before_its_first_attempt_lands(tmp_path: Path) -> None:
    """The answer is shown before it is stored: a process killed while the first attempt of its
    final write waits (here for a locked SQLite file, and it is not yet counted as pending) must
    still leave the next start the complete answer, so the spool has it from the start."""
    async with _one_turn(tmp_path) as (database, url, store, conversation, ids):
        spool = WriteSpool.for_database(url, None)
        assert spool is not None
        writes = FinalWrites(store, retry_timeout=60, spool=spool, pending_after=3600)
        values: dict[str, Any] = {"status": "complete", "answer": "the whole answer", "reasoning": None}
        key = ConversationKey("console", "local", "tty", "t")
        with exclusive_lock(database) as release:
            landing = asyncio.create_task(writes.land(key, ids.assistant_message_id, values))
            await until(lambda: [e.turn for e in spool.entries()] == [ids.assistant_message_id], 10)
            assert not landing.done() and writes.status().pending == 0  # in its first attempt
            (entry,) = spool.entries()
            assert entry.values["answer"] == "the whole answer"
            release.set()
        assert await landing
        await until(lambda: spool.entries() == [], 10)  # landed: the spooled copy goes
        (row,) = [m for m in await store.messages(conversation) if m.role == "assistant"]
        assert (row.status, row.content) == ("complete", "the whole answer")


async def test_a_final_write_that_is_only_slow_is_pending_without_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Many turns ending at once queue behind one SQLite writer: a first attempt that has not
    answered within ``pending_after`` is pending (counted, awaited, not repeated) but it has not
    failed, so operators get no "database" warning for a busy moment; it lands once the lock
    goes. A write whose attempt fails is warned about (the drills above)."""
    async with _one_turn(tmp_path) as (database, url, store, conversation, ids):
        writes = FinalWrites(
            store, retry_timeout=60, spool=WriteSpool.for_database(url, None), pending_after=0.05
        )
        values: dict[str, Any] = {"status": "complete", "answer": "the whole answer", "reasoning": None}
        key = ConversationKey("console", "local", "tty", "t")
        caplog.set_level(logging.INFO, logger="botkit.pipeline.recorder")
        with exclusive_lock(database) as release:
            landing = asyncio.create_task(writes.land(key, ids.assistant_message_id, values))
            await until(lambda: writes.status().pending == 1, 10)
            release.set()
        assert await landing
        assert writes.status().pending == 0 and writes.landed_late == 1
        recorder_logs = [
            (r.levelno, r.getMessage()) for r in caplog.records if r.name == "botkit.pipeline.recorder"
        ]
        assert [level for level, _ in recorder_logs] == [logging.INFO, logging.INFO], recorder_logs
        assert "no answer within 0.05s" in recorder_logs[0][1]
        (row,) = [m for m in await store.messages(conversation) if m.role == "assistant"]
        assert (row.status, row.content) == ("complete", "the whole answer")


# -- the restart pass reads what the platform shows ------------------------------------------


@contextlib.asynccontextmanager
async def restarted(
    bot_dir: Path, database: str, adapter: str, adapter_settings: dict[str, Any], connected: Any
) -> AsyncIterator[TestBot]:
    """``botkit run``'s start over ``database`` with one adapter: checked, its leftovers repaired,
    then connected (``connected`` waits for that: the repair pass is over by then)."""
    await asyncio.to_thread(bot_dir.mkdir)
    async with TestBot(bot_dir, database_url=database, settings={adapter: adapter_settings}) as bot:
        assert bot.app is not None
        serving = asyncio.create_task(bot.app.serve(bot.app.build_adapters([adapter])))
        try:
            await connected()
            yield bot
        finally:
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await serving


async def crashed_turns(
    tmp_path: Path, database: str, key: ConversationKey, turns: list[tuple[str, str, str]]
) -> int:
    """What a killed process leaves: unfinished rows (status, last checkpoint) with their
    messages' ids, for ``turns`` of (message id, checkpointed answer, status)."""
    async with TestBot(tmp_path / "crashed", database_url=database) as crashed:
        store = crashed.store
        conversation = await store.conversation_id(key.platform, key.workspace, key.channel, key.thread)
        for number, (message_id, stored, status) in enumerate(turns):
            ids = await store.start_turn(
                conversation, user_text=f"question {number}", user_id="U1", delivery_id=f"Ev{number}",
                persona_name="general", persona_hash="h", model="m", status=status,
                platform_message_ids=[message_id],
            )  # fmt: skip
            if stored:
                await store.checkpoint(ids.assistant_message_id, answer=stored, reasoning=None)
        return conversation


async def test_restart_on_slack_leaves_a_reply_that_already_says_it_was_interrupted(
    tmp_path: Path,
) -> None:
    """A second crash before the repair was stored: the note is not added twice."""
    database = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    async with FakeSlack() as slack:
        root = slack.mention_event("a question")
        slack.record_user_message(root)
        channel, thread = root["channel"], root["ts"]
        done_ts, partial_ts = slack.next_ts(), slack.next_ts()
        repaired = f"The answer so far\n\n{LEFTOVER_NOTE}"
        for ts, text in ((done_ts, repaired), (partial_ts, "_Thinking…_")):
            slack.messages[(channel, ts)] = SlackMessage(
                channel=channel, ts=ts, text=text, user=slack.bot_user_id, bot_id=slack.bot_id,
                thread_ts=thread, history=[text],
            )  # fmt: skip
        key = ConversationKey("slack", slack.team_id, channel, thread)
        conversation = await crashed_turns(
            tmp_path,
            database,
            key,
            [(done_ts, "The answer so far", "streaming"), (partial_ts, "", "queued")],
        )
        async with restarted(
            tmp_path / "next", database, "slack", slack.settings(), slack.wait_for_connections
        ) as bot:
            rows = await bot.store.messages(conversation)
        reads = slack.calls_of("conversations.replies")
        updates = slack.calls_of("chat.update")
    assert slack.messages[(channel, done_ts)].history == [repaired]  # read, and left alone
    assert slack.messages[(channel, partial_ts)].history == ["_Thinking…_", LEFTOVER_NOTE]
    assert [c.args["ts"] for c in updates] == [partial_ts]
    assert {c.args["ts"] for c in reads} == {done_ts, partial_ts}
    assert_settled(rows)
    assert [r.status for r in rows if r.role == "assistant"] == ["interrupted", "interrupted"]


async def test_restart_on_discord_reads_the_reply_before_editing_it(tmp_path: Path) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    async with FakeDiscord() as fake:
        thread = fake.channel_id
        noted = fake.bot_message(thread, f"Half an answer\n\n{LEFTOVER_NOTE}")
        partial = fake.bot_message(thread, "Half an answer")
        key = ConversationKey("discord", str(fake.guild_id), str(thread), str(thread))
        discord = {"token": fake.token, "api_url": fake.api_url, "gateway_url": fake.gateway_url,
                   "guild_ids": [fake.guild_id], "guild_ready_timeout": 0.1}  # fmt: skip
        first = await crashed_turns(
            tmp_path,
            database,
            key,
            [(noted["id"], "Half an answer", "streaming"), (partial["id"], "Half an answer", "streaming")],
        )
        async with restarted(
            tmp_path / "next", database, "discord", discord, fake.wait_until_connected
        ) as bot:
            rows = await bot.store.messages(first)
        reads = fake.calls_to("GET", r"^/channels/\d+/messages/\d+$")
        edits = fake.calls_to("PATCH", r"^/channels/\d+/messages/\d+$")
    assert fake.messages[int(noted["id"])]["content"] == f"Half an answer\n\n{LEFTOVER_NOTE}"
    assert fake.messages[int(partial["id"])]["content"] == f"Half an answer\n\n{LEFTOVER_NOTE}"
    assert len(reads) == 2
    assert [c.path for c in edits] == [f"/channels/{thread}/messages/{partial['id']}"]
    assert_settled(rows)
