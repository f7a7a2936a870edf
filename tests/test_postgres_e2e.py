"""The whole bot on PostgreSQL (asyncpg), as deployments run it: history, exactly-once, migrations."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from botkit.store import StoreError
from botkit.testing import RecordingReply, Standin, TestBot


async def test_thread_history_and_turns_live_in_postgres(tmp_path: Path, postgres_url: str) -> None:
    settings = {"database": {"auto_migrate": True}}
    async with TestBot(tmp_path, database_url=postgres_url, settings=settings) as bot:
        bot.standin.script_reply("Answer one.", reasoning="private thoughts")
        await bot.ask("Question one?")
        await bot.ask("Question two?")
        second = bot.standin.requests[-1]["messages"]
        conversation = await bot.store.conversation_id("test", "workspace-1", "channel-1", "thread-1")
        rows = await bot.store.messages(conversation)
    assert [m["content"] for m in second[:2]] == ["Question one?", "Answer one."]
    assistant = [r for r in rows if r.role == "assistant"]
    assert [r.status for r in assistant] == ["complete", "complete"]
    assert assistant[0].reasoning == "private thoughts"
    assert assistant[0].persona_name == "general" and assistant[0].persona_hash
    assert assistant[0].ttft_ms is not None and assistant[0].total_ms is not None
    # Its spool (the intents written before each final view) lies under the test's directory,
    # not in ./botkit-pending of wherever pytest runs (tests/conftest.py: _pending_in_tmp).
    assert bot.app is not None and bot.app.spool is not None
    assert bot.app.spool.directory == tmp_path / "botkit-pending"
    assert bot.app.spool.directory.is_dir()


async def test_two_bot_processes_on_one_database_answer_a_delivery_once(
    tmp_path: Path, postgres_url: str
) -> None:
    settings = {"database": {"auto_migrate": True}}
    async with Standin() as standin:
        async with (
            TestBot(tmp_path / "a", standin=standin, database_url=postgres_url, settings=settings) as first,
            TestBot(tmp_path / "b", standin=standin, database_url=postgres_url, settings=settings) as second,
        ):
            replies = [RecordingReply() for _ in range(10)]
            submissions = await asyncio.gather(
                *(
                    bot.bot.submit(
                        bot.message(f"event {i // 2}", delivery_id=f"Ev{i // 2}", thread=f"t{i // 2}"), reply
                    )
                    for i, (bot, reply) in enumerate(zip([first, second] * 5, replies, strict=True))
                )
            )
            await asyncio.gather(*(s.wait() for s in submissions))
        assert sum(s.accepted for s in submissions) == 5
        assert len(standin.requests) == 5
    assert sum(1 for r in replies if r.messages) == 5


async def test_unmigrated_postgres_is_a_clear_error_and_db_upgrade_fixes_it(
    tmp_path: Path, postgres_url: str
) -> None:
    with pytest.raises(StoreError, match="botkit db upgrade"):
        async with TestBot(tmp_path, database_url=postgres_url):
            pass
    upgraded = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "botkit.cli", "db", "upgrade", "--url", postgres_url],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert upgraded.returncode == 0, upgraded.stderr
    async with TestBot(tmp_path, database_url=postgres_url) as bot:
        reply = await bot.ask("works now?")
    assert reply.error is None
