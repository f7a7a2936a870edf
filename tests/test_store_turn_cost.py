"""What one turn costs the database: statements, commits and round trips to SQLite's thread.

The per-turn SQL was a visible share of botkit's CPU per reply (issue 11); these bounds keep it
from creeping back: intake in one transaction, no history read for a new thread's first turn,
each later step one statement, each write group's statements one round trip to aiosqlite's
connection thread (its commit another) and no rollback of a committed connection. Counted at the driver
(:mod:`botkit.testing.sqlcount`: every call into aiosqlite's thread) on a real turn through the
pipeline and the stand-in model, so they hold for what the bot actually does, not a store call
in isolation.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from db_faults import exclusive_lock
from sqlalchemy.exc import IntegrityError, OperationalError

from botkit.events import IncomingMessage
from botkit.llm.standin import Standin
from botkit.personas.loader import load_persona
from botkit.pipeline.filters import TextFilters
from botkit.pipeline.recorder import TurnRecorder
from botkit.plugins.api import Request
from botkit.store import ConversationStore
from botkit.store.database import StoreError
from botkit.store.store import is_unavailable
from botkit.testing import TestBot
from botkit.testing.sqlcount import counting_sqlite

PERSONAS = Path(__file__).resolve().parents[1] / "personas"


async def test_a_turn_costs_few_statements_and_commits(tmp_path: Path) -> None:
    async with TestBot(tmp_path) as bot:
        with counting_sqlite() as first:
            reply = await bot.ask("hello there", thread="t-1")
        with counting_sqlite() as follow_up:
            again = await bot.ask("and once more", thread="t-1")
        assert reply.text and again.text
        conversation = await bot.store.conversation_id("test", "workspace-1", "channel-1", "t-1")
        rows = await bot.store.messages(conversation)
        assert [(m.role, m.status) for m in rows] == [("user", "complete"), ("assistant", "complete")] * 2
        assert again.text.startswith(rows[3].content)
        history = await bot.store.history(conversation)
        assert [h.user_text for h in history] == ["hello there", "and once more"]
    # A new thread's first turn: intake (conversation upsert, claim, question, reply row: one
    # commit), adopt (2), streaming with the placeholder's id that landed meanwhile (1), the
    # final write (1); no history read (the thread is new).
    assert first["SELECT"] == 0, first.counts
    assert first["statements"] <= 8 and first["commits"] <= 4, first.counts
    # A follow-up reads its history: one SELECT more.
    assert follow_up["SELECT"] == 1, follow_up.counts
    assert follow_up["statements"] <= 9 and follow_up["commits"] <= 4, follow_up.counts
    # One round trip to aiosqlite's thread per write group (its statements and its commit in
    # one hop), one for the history read, no rollback of a committed connection (SQLAlchemy's
    # adapter made 3-4 per statement and reset each connection with a rollback: 39 and 44 round
    # trips for these two turns; one hop a statement made 12 and 13; the commit in a hop of its
    # own, 8 and 9).
    assert first["rollbacks"] == 0 and follow_up["rollbacks"] == 0, (first.counts, follow_up.counts)
    assert first["round_trips"] <= 4, first.counts
    assert follow_up["round_trips"] <= 5, follow_up.counts


async def test_a_turn_first_in_its_thread_is_adopted_as_streaming_in_one_write(tmp_path: Path) -> None:
    """With its placeholder posted before its rows were adopted and no turn before it in the
    thread, a turn is ``streaming`` from the adopting write on: marking it costs nothing more.
    A turn that must wait for the thread stays ``queued`` until it is called."""
    store = await ConversationStore.open(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", migrate=True)
    persona = load_persona(PERSONAS / "general.md")
    try:
        statuses, marks = [], []
        for n, first_in_line in enumerate((True, False)):
            message = IncomingMessage("test", "w", "c", f"t{n}", "u", "q", f"d{n}")
            inbox = await store.accept("test", f"d{n}", ("w", "c", f"t{n}"), user_text="q", user_id="u")
            assert inbox is not None and inbox.new_conversation
            recorder = TurnRecorder(store, TextFilters(), "model")
            request = Request(message, "turn", "q", persona=persona)
            await recorder.enqueue(request, persona, ["m1"], inbox, streaming=first_in_line)
            statuses.append((await store.messages(inbox.conversation_id or 0))[1].status)
            with counting_sqlite() as marking:
                await recorder.streaming(["m1"])
            marks.append(marking["statements"])
            row = (await store.messages(inbox.conversation_id or 0))[1]
            assert (row.status, row.platform_message_ids, row.persona_name) == (
                "streaming",
                ["m1"],
                "general",
            )
    finally:
        await store.close()
    assert statuses == ["streaming", "queued"]
    assert marks == [0, 1]


async def test_the_checkpoints_of_all_streaming_turns_go_out_together(tmp_path: Path) -> None:
    """Five answers streaming at once: each checkpoint write carries several turns' rows (the old
    way was one UPDATE and commit per turn each interval), and what they stored is each turn's
    own partial answer, a prefix of its final one."""
    standin = Standin(tokens_per_second=40)
    async with TestBot(tmp_path, standin=standin) as bot:
        bot.bot.turns.checkpoints.interval = 0.2
        questions = [f"question {n} " + " ".join(f"w{n}{i}" for i in range(20)) for n in range(5)]
        with counting_sqlite() as calls:
            replies = await asyncio.gather(
                *(bot.ask(q, thread=f"t-{n}", user=f"user-{n}") for n, q in enumerate(questions))
            )
        writes: list[list[tuple[int, str]]] = []
        for statement, parameters, many in calls.sent:
            if statement.startswith("UPDATE messages SET content") and "messages.status = " in statement:
                rows = parameters if many else [parameters]
                # (content, reasoning, updated_at, id, ...): the SET columns, then the WHERE clause
                writes.append([(row[3], row[0]) for row in rows])
        finals = {}
        for n in range(5):
            conversation = await bot.store.conversation_id("test", "workspace-1", "channel-1", f"t-{n}")
            rows = await bot.store.messages(conversation)
            assert rows[1].status == "complete" and replies[n].text.startswith(rows[1].content)
            finals[rows[1].id] = rows[1].content
    rows_sent = [row for write in writes for row in write]
    assert len({turn for turn, _ in rows_sent}) == 5, writes  # every turn was checkpointed
    assert all(finals[turn].startswith(text) for turn, text in rows_sent)
    assert max(len(write) for write in writes) >= 3, writes  # several turns in one statement
    assert len(writes) < len(rows_sent), writes


async def test_a_locked_file_is_still_an_unavailable_database_on_the_one_round_trip_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The per-turn statements run on aiosqlite directly; its raw ``sqlite3.OperationalError``
    ("database is locked") must reach the final write's retries as SQLAlchemy's
    ``OperationalError`` (what :func:`is_unavailable` retries), not as an unknown error (raised
    as a bug: the answer would never be stored). A short busy timeout lets the lock win."""
    monkeypatch.setattr("botkit.store.database.SQLITE_BUSY_TIMEOUT_S", 0.2)
    database = tmp_path / "db.sqlite"
    store = await ConversationStore.open(f"sqlite+aiosqlite:///{database}", migrate=True)
    try:
        ids = await store.accept("test", "d1", ("w", "c", "t"), user_text="q", user_id="u")
        assert ids is not None
        with exclusive_lock(database):
            # Two writes in one group (botkit.store.group): both fail, both as unavailable.
            failed = await asyncio.gather(
                store.finish_turn(ids.assistant_message_id, status="complete", answer="a", reasoning=None),
                store.mark_streaming(ids.assistant_message_id),
                return_exceptions=True,
            )
            for error in failed:
                assert isinstance(error, OperationalError), failed
                assert is_unavailable(error) and "locked" in str(error)
            with pytest.raises(OperationalError):
                await store.accept("test", "d2", ("w", "c", "t"), user_text="q", user_id="u")
        await store.finish_turn(ids.assistant_message_id, status="complete", answer="a", reasoning=None)
        rows = await store.messages(ids.conversation_id or 0)
        assert [(m.role, m.status, m.content) for m in rows] == [
            ("user", "complete", "q"),
            ("assistant", "complete", "a"),
        ]
    finally:
        await store.close()


async def test_a_group_sent_in_one_hop_is_still_one_transaction(tmp_path: Path) -> None:
    """A group's statements and its commit go to aiosqlite's thread together (botkit.store.
    prepared.commit_together); a statement that fails there fails every write of the group, as SQLAlchemy's
    error, and what the writes before it did is rolled back: nothing of the group is stored.
    The connection then takes the next group."""
    store = await ConversationStore.open(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", migrate=True)
    try:
        a = await store.accept("test", "d1", ("w", "c", "t1"), user_text="q1", user_id="u")
        b = await store.accept("test", "d2", ("w", "c", "t2"), user_text="q2", user_id="u")
        assert a is not None and b is not None
        adopt = store.adopt_inbox(
            a, user_text="q1", persona_name="general", persona_hash="h", model="m",
            platform_message_ids=["ts1"], streaming=True,
        )  # fmt: skip
        # NOT NULL on the reply's content: SQLite refuses it, after the adopt's two statements ran.
        bad = store.finish_turn(b.assistant_message_id, status="complete", answer=None, reasoning=None)  # type: ignore[arg-type]
        with counting_sqlite() as calls:
            failed = await asyncio.gather(adopt, bad, return_exceptions=True)
        assert [type(error) for error in failed] == [IntegrityError, IntegrityError], failed
        assert calls["commits"] == 0 and calls["rollbacks"] == 1, calls.counts
        # The group's hop, its rollback inside it (main, the commit in a hop of its own: 2).
        assert calls["round_trips"] == 1, calls.counts
        rows = await store.messages(a.conversation_id or 0)
        assert [(m.status, m.persona_name, m.platform_message_ids) for m in rows] == [
            ("complete", None, []),
            ("queued", None, []),
        ]
        assert await store.adopt_inbox(
            a, user_text="q1", persona_name="general", persona_hash="h", model="m",
            platform_message_ids=["ts1"], streaming=True,
        )  # fmt: skip
        rows = await store.messages(a.conversation_id or 0)
        assert (rows[1].status, rows[1].persona_name) == ("streaming", "general")
    finally:
        await store.close()


async def test_the_writes_of_turns_at_the_same_step_share_one_transaction(tmp_path: Path) -> None:
    """Twenty turns adopted at once, then finished at once: each step is ONE commit for all of
    them (botkit.store.group), and every turn's rows are its own. A final write for a row that
    does not exist fails alone, with the store's error, and the others in its group land."""
    store = await ConversationStore.open(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", migrate=True)
    try:
        turns = []
        for n in range(20):
            ids = await store.accept("test", f"d{n}", ("w", "c", f"t{n}"), user_text=f"q{n}", user_id="u")
            assert ids is not None
            turns.append(ids)
        with counting_sqlite() as adopting:
            adopted = await asyncio.gather(
                *(
                    store.adopt_inbox(
                        t,
                        user_text=f"settled q{n}",
                        persona_name="general",
                        persona_hash="h",
                        model="m",
                        platform_message_ids=[f"ts{n}"],
                        streaming=True,
                    )
                    for n, t in enumerate(turns)
                )
            )
        assert adopted == [True] * 20
        assert adopting["commits"] == 1 and adopting["statements"] == 40, adopting.counts
        # ... in ONE hop to aiosqlite's thread, the 40 statements and the commit (one hop a
        # statement: 41; the commit in a hop of its own: 2).
        assert adopting["round_trips"] == 1, adopting.counts

        async def finish(n: int, turn_id: int) -> None:
            await store.finish_turn(turn_id, status="complete", answer=f"a{n}", reasoning=None)

        with counting_sqlite() as finishing:
            outcomes = await asyncio.gather(
                *(finish(n, t.assistant_message_id) for n, t in enumerate(turns)),
                finish(99, 10**9),  # no such row
                return_exceptions=True,
            )
        assert outcomes[:20] == [None] * 20
        assert isinstance(outcomes[20], StoreError) and "no assistant message" in str(outcomes[20])
        assert finishing["commits"] == 1 and finishing["statements"] == 21, finishing.counts
        assert finishing["round_trips"] == 1, finishing.counts  # one a statement: 22; main: 2
        for n, t in enumerate(turns):
            rows = await store.messages(t.conversation_id or 0)
            assert [(m.role, m.status, m.content, m.platform_message_ids) for m in rows] == [
                ("user", "complete", f"settled q{n}", []),
                ("assistant", "complete", f"a{n}", [f"ts{n}"]),
            ]
    finally:
        await store.close()


async def test_turns_answered_at_once_share_their_commits(tmp_path: Path) -> None:
    """Twenty questions at once through the pipeline and the stand-in: their adopts, streaming
    marks and final writes share transactions (one group in flight, the writes that arrive
    meanwhile in the next), so a turn costs fewer than the 4 commits a turn alone makes, and
    every answer is stored complete. (Main made exactly 4.0 a turn here.)"""
    async with TestBot(tmp_path) as bot:
        await bot.ask("warm up", thread="t-0")
        with counting_sqlite() as calls:
            replies = await asyncio.gather(
                *(bot.ask(f"question {n}", thread=f"t-{n + 1}", user=f"user-{n}") for n in range(20))
            )
        for n, reply in enumerate(replies):
            conversation = await bot.store.conversation_id("test", "workspace-1", "channel-1", f"t-{n + 1}")
            rows = await bot.store.messages(conversation)
            assert [(m.role, m.status) for m in rows] == [("user", "complete"), ("assistant", "complete")]
            assert reply.text.startswith(rows[1].content) and rows[1].content
    assert calls["commits"] <= 3.5 * 20, calls.counts


async def test_with_sql_logging_on_every_statement_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``database.echo``: the per-turn statements take SQLAlchemy's path, which logs them (the
    one-round-trip path does not), and the turn is stored as usual."""
    store = await ConversationStore.open(
        f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", migrate=True, echo=True
    )
    # A handler of the test's own on SQLAlchemy's logger: the root's handlers (caplog's among
    # them) may carry a filter from a `botkit` command run in-process earlier in the session
    # (botkit.cli.setup_logging quiets other libraries' INFO records on every root handler).
    kept: list[logging.LogRecord] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = kept.append  # type: ignore[method-assign]
    engine_log = logging.getLogger("sqlalchemy.engine")
    engine_log.addHandler(handler)
    try:
        with caplog.at_level(logging.INFO, logger="sqlalchemy.engine"):
            ids = await store.accept("test", "d1", ("w", "c", "t"), user_text="q", user_id="u")
            assert ids is not None
            await store.finish_turn(ids.assistant_message_id, status="complete", answer="a", reasoning=None)
        logged = [r.getMessage() for r in kept]
        assert any(m.startswith("INSERT INTO deliveries") for m in logged), logged
        assert any(m.startswith("UPDATE messages SET") for m in logged), logged
        rows = await store.messages(ids.conversation_id or 0)
        assert [(m.status, m.content) for m in rows] == [("complete", "q"), ("complete", "a")]
    finally:
        engine_log.removeHandler(handler)
        await store.close()


async def test_a_group_whose_commit_fails_in_its_hop_is_rolled_back_whole(tmp_path: Path) -> None:
    """The commit runs inside the group's one hop (botkit.store.prepared.commit_together): when
    SQLite refuses it (here a deferred foreign key, checked only at COMMIT), every write of the
    group fails with SQLAlchemy's error, as a failed SQLAlchemy commit did, nothing of the group
    is stored, and the connection takes the next group."""
    store = await ConversationStore.open(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", migrate=True)
    try:
        ids = await store.accept("test", "d1", ("w", "c", "t1"), user_text="q1", user_id="u")
        assert ids is not None

        async def dangling(connection: object) -> None:
            sqlite = connection.sqlite  # type: ignore[attr-defined]  # the group's InThread
            sqlite.execute("PRAGMA defer_foreign_keys=ON")
            sqlite.execute(
                "UPDATE messages SET reply_to_id = 999999 WHERE id = ?", (ids.assistant_message_id,)
            )

        final = store.finish_turn(ids.assistant_message_id, status="complete", answer="a", reasoning=None)
        with counting_sqlite() as calls:
            failed = await asyncio.gather(final, store._group.write(dangling), return_exceptions=True)
        assert [type(error) for error in failed] == [IntegrityError, IntegrityError], failed
        assert "FOREIGN KEY" in str(failed[0])
        assert calls["commits"] == 1 and calls["rollbacks"] == 1, calls.counts  # tried, then undone
        assert calls["round_trips"] == 1, calls.counts  # main: the group's hop, the commit's, the rollback's
        rows = await store.messages(ids.conversation_id or 0)
        assert [(m.role, m.status, m.content) for m in rows] == [
            ("user", "complete", "q1"),
            ("assistant", "queued", ""),
        ]
        await store.finish_turn(ids.assistant_message_id, status="complete", answer="a", reasoning=None)
        rows = await store.messages(ids.conversation_id or 0)
        assert (rows[1].status, rows[1].content) == ("complete", "a")
    finally:
        await store.close()
