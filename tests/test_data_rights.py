"""Data rights, on SQLite and PostgreSQL: ``botkit export``, ``botkit db forget``, ``botkit db
prune`` and the ``[retention]`` task. Real turns go through the stand-in and the real pipeline
into the real store; the assertions read what the database holds afterwards."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from test_store import db_url, pg_database  # noqa: F401  (the SQLite / PostgreSQL fixtures)

from botkit.cli import main
from botkit.config import ConfigError, load_settings
from botkit.events import ConversationKey
from botkit.export import BadThread, ThreadRef, parse_thread
from botkit.retention import RetentionPolicy
from botkit.store import AuditRecord, ConversationStore
from botkit.store.database import create_engine
from botkit.store.models import AuditEntry, Message, utcnow
from botkit.store.rights import TurnRow
from botkit.testing import TestBot

MIGRATE = {"database": {"auto_migrate": True}}
LEGAL = {"command": "ask", "roles": ["legal"]}


@pytest.fixture
def cli(db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:  # noqa: F811
    """``main()`` pointed at the test's database (the fixture's value is its URL)."""
    monkeypatch.setenv("BOTKIT_DATABASE__URL", db_url)
    monkeypatch.setenv("BOTKIT_DATABASE__AUTO_MIGRATE", "true")
    monkeypatch.chdir(tmp_path)
    return db_url


async def _rows(url: str) -> list[tuple[str, str, str | None, str | None, str]]:
    """Every message: (role, content, reasoning, user id, status), in order."""
    engine = create_engine(url, null_pool=True)
    try:
        async with engine.connect() as conn:
            stmt = select(Message.role, Message.content, Message.reasoning, Message.user_id, Message.status)
            return [tuple(r) for r in (await conn.execute(stmt.order_by(Message.id))).all()]  # type: ignore[misc]
    finally:
        await engine.dispose()


async def _audit(url: str, action: str) -> list[AuditRecord]:
    store = await ConversationStore.open(url, migrate=True)
    try:
        return [r for r in await store.audit_entries() if r.action == action]
    finally:
        await store.close()


async def _audit_text(url: str) -> str:
    engine = create_engine(url, null_pool=True)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(AuditEntry.actor, AuditEntry.detail))).all()
    finally:
        await engine.dispose()
    return json.dumps([list(r) for r in rows], ensure_ascii=False)


async def _age(url: str, texts: list[str], days: float) -> None:
    """Make the turns whose question is one of ``texts`` ``days`` old (their question rows)."""
    engine = create_engine(url, null_pool=True)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                update(Message)
                .where(Message.role == "user", Message.content.in_(texts))
                .values(created_at=utcnow() - timedelta(days=days))
            )
    finally:
        await engine.dispose()


# -- export -----------------------------------------------------------------------------------------
def test_export_json_and_markdown_hold_what_was_stored(
    cli: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def scenario() -> list[Any]:
        async with TestBot(tmp_path / "bot", database_url=cli, settings=MIGRATE) as bot:
            bot.standin.script_reply("Answer one.", reasoning="private thoughts")
            await bot.ask("Question one?", user="U0ALICE")
            bot.standin.script_reply("Ask a lawyer.", reasoning="legal thoughts")
            await bot.ask(
                "Can I sublet?", user="U0BOB", args={"question": "Can I sublet?", "persona": "legal"}, **LEGAL
            )
            await bot.ask("Elsewhere?", user="U0ALICE", thread="thread-2")
            await bot.ask(
                "In a Discord thread",
                user="U0DAN",
                platform="discord",
                workspace="111",
                channel="C2",
                thread="T3",
            )
            conversation = await bot.store.conversation_id("test", "workspace-1", "channel-1", "thread-1")
            return await bot.store.messages(conversation)

    stored = asyncio.run(scenario())
    capsys.readouterr()
    assert main(["export", "--thread", "test:workspace-1/channel-1/thread-1", "--actor", "dpo"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["botkit_export"] == 1 and doc["user"] is None
    (thread,) = doc["threads"]
    assert thread["thread"] == "test:workspace-1/channel-1/thread-1"
    questions = [m for m in stored if m.role == "user"]
    answers = [m for m in stored if m.role == "assistant"]
    assert [t["question"] for t in thread["turns"]] == [m.content for m in questions]
    assert [t["answer"] for t in thread["turns"]] == [m.content for m in answers]
    assert [t["user"] for t in thread["turns"]] == ["U0ALICE", "U0BOB"]
    assert [(t["persona"], t["persona_hash"]) for t in thread["turns"]] == [
        (m.persona_name, m.persona_hash) for m in answers
    ]
    assert [t["status"] for t in thread["turns"]] == ["complete", "complete"]
    assert [t["reasoning"] for t in thread["turns"]] == ["private thoughts", None]  # legal stores none
    assert "not legal advice" in thread["turns"][1]["answer"]  # the notice, as stored
    assert thread["turns"][0]["asked_at"] == questions[0].created_at.isoformat()

    out = tmp_path / "thread.md"
    assert (
        main(["export", "--thread", "test:channel-1/thread-1", "--format", "markdown", "--output", str(out)])
        == 0
    )
    assert "exported 2 turn(s) in 1 thread(s)" in capsys.readouterr().out
    markdown = out.read_text()
    assert "> Question one?" in markdown and "Answer one." in markdown and "> private thoughts" in markdown
    assert f"legal @ {answers[1].persona_hash[:12]}" in markdown and "legal thoughts" not in markdown
    assert out.stat().st_mode & 0o077 == 0

    assert main(["export", "--user", "U0ALICE", "--actor", "dpo"]) == 0
    mine = json.loads(capsys.readouterr().out)
    assert [t["thread"] for t in mine["threads"]] == [
        "test:workspace-1/channel-1/thread-1",
        "test:workspace-1/channel-1/thread-2",
    ]
    assert [[turn["question"] for turn in t["turns"]] for t in mine["threads"]] == [
        ["Question one?"],
        ["Elsewhere?"],
    ]

    assert main(["export", "--thread", "https://discord.com/channels/111/T3/999", "--actor", "dpo"]) == 0
    (discord,) = json.loads(capsys.readouterr().out)["threads"]
    assert (
        discord["thread"] == "discord:111/C2/T3" and discord["turns"][0]["question"] == "In a Discord thread"
    )
    assert main(["export", "--thread", "discord:111/C2/T3", "--platform", "discord"]) == 2
    assert "--platform goes with --user" in capsys.readouterr().err
    assert main(["export", "--thread", "test:workspace-1/channel-1/nope"]) == 1
    assert "no stored thread 'test:workspace-1/channel-1/nope'" in capsys.readouterr().err
    assert main(["export", "--thread", "nonsense"]) == 1
    assert "platform:workspace/channel/thread" in capsys.readouterr().err

    rows = asyncio.run(_audit(cli, "export"))
    assert [
        (r.actor, r.platform, r.detail.get("thread"), r.detail.get("user"), r.detail["turns"]) for r in rows
    ] == [
        ("dpo", "botkit", "test:workspace-1/channel-1/thread-1", None, 2),
        (rows[1].actor, "botkit", "test:workspace-1/channel-1/thread-1", None, 2),
        ("dpo", "botkit", None, "U0ALICE", 2),
        ("dpo", "botkit", "discord:111/C2/T3", None, 1),
    ]
    assert rows[1].actor  # $USER or the login name when --actor is not given


def test_thread_names_people_can_give() -> None:
    assert parse_thread("slack:T0TEAM/C0LEGAL/1712345678.000100") == [
        ThreadRef("slack", "T0TEAM", "C0LEGAL", "1712345678.000100"),
        ThreadRef("slack", None, "T0TEAM", "C0LEGAL/1712345678.000100"),
    ]
    assert ThreadRef("slack", None, "C0LEGAL", "1712345678.000100") in parse_thread(
        "slack:C0LEGAL/1712345678.000100"
    )
    assert ThreadRef("console", "", "local", "default") in parse_thread("console:/local/default")
    link = "https://acme.slack.com/archives/C0LEGAL/p1712345699000200?thread_ts=1712345678.000100&cid=C0LEGAL"
    assert parse_thread(link) == [ThreadRef("slack", None, "C0LEGAL", "1712345678.000100")]
    root = "https://acme.slack.com/archives/C0LEGAL/p1712345678000100"
    assert parse_thread(root) == [ThreadRef("slack", None, "C0LEGAL", "1712345678.000100")]
    in_thread = "https://discord.com/channels/111/222/333"
    assert parse_thread(in_thread) == [
        ThreadRef("discord", "111", None, "222"),  # 222 is a thread: its parent is not in the link
        ThreadRef("discord", "111", "222", "333"),  # 333 is the mention that started the conversation
    ]
    assert parse_thread("https://discord.com/channels/@me/444/555") == [
        ThreadRef("discord", "dm", "444", "444")
    ]
    for bad in ("C0LEGAL", "slack:", "https://example.com/archives/C0/p1712345678000100"):
        with pytest.raises(BadThread, match="platform:workspace/channel/thread"):
            parse_thread(bad)


# -- forget -----------------------------------------------------------------------------------------
class _Terminal(io.StringIO):
    """Standard input that is a terminal, typing ``answer``."""

    def isatty(self) -> bool:
        return True


def test_forget_removes_the_users_questions_and_answers_and_nothing_else(
    cli: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def ask_all() -> None:
        async with TestBot(tmp_path / "bot", database_url=cli, settings=MIGRATE) as bot:
            bot.standin.script_reply("Alice's answer about her rash.", reasoning="thinking about the rash")
            await bot.ask("I have a rash on my arm", user="U0ALICE")
            bot.standin.script_reply("Bob's answer.", reasoning="bob thoughts")
            await bot.ask("Bob asks in the same thread", user="U0BOB")
            bot.standin.script_reply("Alice again, elsewhere.")
            await bot.ask("Alice's second question", user="U0ALICE", thread="thread-2")
            bot.standin.script_reply("Discord Alice.")
            await bot.ask("Alice on another platform", user="U0ALICE", platform="other")

    asyncio.run(ask_all())
    before = asyncio.run(_rows(cli))
    capsys.readouterr()
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal: --yes is required
    assert main(["db", "forget", "--user", "U0ALICE"]) == 2
    assert "add --yes" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", _Terminal("n\n"))
    assert main(["db", "forget", "--user", "U0ALICE", "--platform", "test"]) == 1
    assert "2 question(s), 2 answer(s) (2 with reasoning) in 2 thread(s)" in capsys.readouterr().out
    assert asyncio.run(_rows(cli)) == before  # declined: nothing removed

    monkeypatch.setattr("sys.stdin", _Terminal("y\n"))
    assert main(["db", "forget", "--user", "U0ALICE", "--platform", "test", "--actor", "dpo"]) == 0
    out = capsys.readouterr().out
    assert "removed 2 question(s) and 2 answer(s) (2 with reasoning) of user U0ALICE" in out
    after = asyncio.run(_rows(cli))
    assert after == [row for row in before if not _alices_on_test(row, before)]
    text = json.dumps(after)
    assert "rash" not in text and "Alice's second" not in text
    assert "Bob asks in the same thread" in text and "bob thoughts" in text
    assert "Alice on another platform" in text  # --platform test left the other platform alone
    (row,) = asyncio.run(_audit(cli, "forget"))
    assert row.actor == "dpo" and row.platform == "botkit"
    assert row.detail == {
        "user": "U0ALICE",
        "platform": "test",
        "questions": 2,
        "answers": 2,
        "reasoning": 2,
        "in_progress_left": 0,
    }
    assert "rash" not in asyncio.run(_audit_text(cli))  # counts, not content

    async def ask_again() -> list[dict[str, str]]:
        async with TestBot(tmp_path / "bot", database_url=cli, settings=MIGRATE) as bot:
            await bot.ask("And now?", user="U0BOB", delivery_id="after-forget")
            return list(bot.standin.requests[-1]["messages"])

    prompt = json.dumps(asyncio.run(ask_again()))
    assert "Bob asks in the same thread" in prompt and "rash" not in prompt

    assert main(["db", "forget", "--user", "U0ALICE", "--yes"]) == 0
    assert "Alice on another platform" not in json.dumps(asyncio.run(_rows(cli)))


def _alices_on_test(row: tuple[Any, ...], rows: list[tuple[Any, ...]]) -> bool:
    """Alice's two questions on platform ``test`` and the answers that follow each of them."""
    index = rows.index(row)
    alice = {"I have a rash on my arm", "Alice's second question"}
    return row[1] in alice or (row[0] == "assistant" and rows[index - 1][1] in alice)


def test_forget_leaves_a_turn_in_progress_and_says_so(cli: str, capsys: pytest.CaptureFixture[str]) -> None:
    async def scenario() -> None:
        store = await ConversationStore.open(cli, migrate=True)
        try:
            conversation = await store.conversation_id("test", "w", "c", "t")
            done = await store.start_turn(
                conversation, user_text="finished one", user_id="U0ALICE", delivery_id="d1",
                persona_name="general", persona_hash="h", model="m",
            )  # fmt: skip
            await store.finish_turn(
                done.assistant_message_id, status="complete", answer="done", reasoning=None
            )
            await store.start_turn(
                conversation, user_text="still streaming", user_id="U0ALICE", delivery_id="d2",
                persona_name="general", persona_hash="h", model="m",
            )  # fmt: skip
        finally:
            await store.close()

    asyncio.run(scenario())
    capsys.readouterr()
    assert main(["db", "forget", "--user", "U0ALICE", "--yes"]) == 1
    captured = capsys.readouterr()
    assert "removed 1 question(s) and 1 answer(s)" in captured.out
    assert "1 turn(s) still in progress" in captured.err
    assert [(r[1], r[4]) for r in asyncio.run(_rows(cli))] == [
        ("still streaming", "complete"),
        ("", "streaming"),
    ]


# -- prune --------------------------------------------------------------------------------------------
def test_prune_is_a_dry_run_until_applied(
    cli: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def ask_all() -> None:
        async with TestBot(tmp_path / "bot", database_url=cli, settings=MIGRATE) as bot:
            await bot.ask("old general question")
            await bot.ask("old question elsewhere", channel="channel-2", thread="t2")
            await bot.ask("What is 2+2?", command="math", thread="t3")
            await bot.ask("new general question", thread="t4")

    asyncio.run(ask_all())
    asyncio.run(_age(cli, ["old general question", "old question elsewhere", "What is 2+2?"], days=100))
    before = asyncio.run(_rows(cli))
    capsys.readouterr()
    assert main(["db", "prune", "--older-than", "90d"]) == 0
    out = capsys.readouterr().out
    assert "3 question(s), 3 answer(s)" in out and "dry run: nothing removed" in out
    assert "persona general      channel test:workspace-1/channel-1" in out
    assert asyncio.run(_rows(cli)) == before
    assert asyncio.run(_audit(cli, "prune")) == []

    assert (
        main(["db", "prune", "--older-than", "90d", "--persona", "general", "--channel", "test:channel-1"])
        == 0
    )
    assert "1 question(s), 1 answer(s)" in capsys.readouterr().out
    assert (
        main(["db", "prune", "--older-than", "90d", "--persona", "general", "--apply", "--actor", "dpo"]) == 0
    )
    assert "removed 2 question(s) and 2 answer(s)" in capsys.readouterr().out
    left = [r[1] for r in asyncio.run(_rows(cli)) if r[0] == "user"]
    assert left == ["What is 2+2?", "new general question"]
    (row,) = asyncio.run(_audit(cli, "prune"))
    assert row.actor == "dpo" and row.detail["questions"] == 2 and row.detail["persona"] == "general"
    assert sorted((b["channel"], b["turns"]) for b in row.detail["by"]) == [
        ("test:workspace-1/channel-1", 1),
        ("test:workspace-1/channel-2", 1),
    ]
    assert main(["db", "prune", "--older-than", "soon"]) == 2
    assert "--older-than" in capsys.readouterr().err


# -- retention ----------------------------------------------------------------------------------------
def test_retention_removes_old_turns_per_persona_and_channel_but_never_a_turn_in_progress(
    cli: str, tmp_path: Path
) -> None:
    async def ask_all() -> None:
        async with TestBot(tmp_path / "bot", database_url=cli, settings=MIGRATE) as bot:
            await bot.ask("general, 40 days old")
            await bot.ask("general, 10 days old", thread="t2")
            await bot.ask("What is 1+1?", command="math", thread="t3")  # math: no rule, no default
            await bot.ask("math in the short channel: 1+2?", command="math", channel="C0SHORT", thread="t4")

    asyncio.run(ask_all())
    asyncio.run(
        _age(cli, ["general, 40 days old", "What is 1+1?", "math in the short channel: 1+2?"], days=40)
    )
    asyncio.run(_age(cli, ["general, 10 days old"], days=10))
    retention = {"personas": {"general": "30d"}, "channels": {"test:C0SHORT": "7d"}, "interval": "0.2s"}

    async def run_bot() -> list[str]:
        settings = {**MIGRATE, "retention": retention}
        async with TestBot(tmp_path / "bot", database_url=cli, settings=settings) as bot:
            await _until(lambda: _audit(cli, "retention"), 1)  # the pass at start-up
            conversation = await bot.store.conversation_id("test", "workspace-1", "channel-1", "t9")
            running = await bot.store.start_turn(
                conversation, user_text="old, but still streaming", user_id="u", delivery_id="d9",
                persona_name="general", persona_hash="h", model="m",
            )  # fmt: skip
            finished = await bot.store.start_turn(
                conversation, user_text="old and finished", user_id="u", delivery_id="d10",
                persona_name="general", persona_hash="h", model="m",
            )  # fmt: skip
            await bot.store.finish_turn(
                finished.assistant_message_id, status="complete", answer="a", reasoning=None
            )
            await _age(cli, ["old, but still streaming", "old and finished"], days=40)
            await _until(lambda: _audit(cli, "retention"), 2)  # a later pass
            rows = await _rows(cli)
            assert ("assistant", "", None, None, "streaming") in rows and running
            return [r[1] for r in rows if r[0] == "user"]

    assert asyncio.run(run_bot()) == ["general, 10 days old", "What is 1+1?", "old, but still streaming"]
    first, second = asyncio.run(_audit(cli, "retention"))
    assert first.actor == "botkit" and first.detail["questions"] == 2 and first.detail["answers"] == 2
    assert sorted((b["persona"], b["channel"]) for b in first.detail["by"]) == [
        ("general", "test:workspace-1/channel-1"),
        ("math", "test:workspace-1/C0SHORT"),
    ]
    assert second.detail["questions"] == 1 and second.detail["in_progress_left"] == 1


async def _until(read: Any, count: int) -> None:
    """Poll ``read()`` until it returns ``count`` rows (bounded by a number of tries, not a clock)."""
    for _ in range(400):
        if len(await read()) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never saw {count} row(s)")


def test_retention_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"retention\.personas\.legal.*'a month' is not a duration"):
        load_settings(None, retention={"personas": {"legal": "a month"}})
    with pytest.raises(ConfigError, match=r"retention\.interval.*no time at all"):
        load_settings(None, retention={"interval": "0s"})
    assert load_settings(None, retention={"default": "365d"}).retention.default == "365d"


def test_a_turn_is_kept_as_long_as_the_shorter_of_its_persona_and_channel_rule_else_the_default() -> None:
    settings = load_settings(
        None,
        retention={
            "default": "365d",
            "personas": {"legal": "30d"},
            "channels": {"slack:C0SHORT": "7d", "slack:T0/C0LONG": "400d", "C0BARE": "1d"},
        },
    ).retention
    policy = RetentionPolicy.from_settings(settings)
    assert policy is not None

    def turn(persona: str | None, channel: str) -> TurnRow:
        return TurnRow(
            1, 2, ConversationKey("slack", "T0", channel, "1.0"), "U", persona, utcnow(), "complete", False
        )

    assert policy.keep_for(turn("legal", "C0SHORT")) == timedelta(days=7)
    assert policy.keep_for(turn("legal", "C0LONG")) == timedelta(days=30)
    assert policy.keep_for(turn("general", "C0LONG")) == timedelta(days=400)  # longer than the default
    assert policy.keep_for(turn("general", "C0BARE")) == timedelta(days=1)
    assert policy.keep_for(turn(None, "C0ELSE")) == timedelta(days=365)
    assert RetentionPolicy.from_settings(load_settings(None).retention) is None  # keep forever: no task
