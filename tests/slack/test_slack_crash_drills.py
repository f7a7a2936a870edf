"""Fault drills with a real ``botkit run`` process on Slack: SIGKILL it while one reply streams
and the next question in the same thread waits behind it, restart it, and look at every message
the fake Slack holds and every row of the database."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest
from slack_harness import STANDIN_DONE

from botkit.testing import Standin
from botkit.testing.fake_slack import FakeSlack

pytestmark = pytest.mark.timeout(120)


def _env(slack: FakeSlack, standin: Standin, database: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTKIT_")}
    env.update(
        {
            "BOTKIT_BOT__ADAPTERS": '["slack"]',
            "BOTKIT_LLM__BACKEND": "external",
            "BOTKIT_LLM__BASE_URL": standin.base_url,
            "BOTKIT_DATABASE__URL": f"sqlite+aiosqlite:///{database}",
            "BOTKIT_SERVER__ENABLED": "false",
            "BOTKIT_STREAM__EDIT_INTERVAL": "0.2",
            "BOTKIT_PERSONAS__WATCH": "false",
        }
    )
    for key, value in slack.settings(edits_per_minute=6000, edit_burst=50).items():
        env[f"BOTKIT_SLACK__{key.upper()}"] = str(value)
    return env


async def _botkit_run(cwd: Path, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "botkit.cli", "run", cwd=cwd, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


def _rows(database: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(database) as db:
        return list(db.execute("SELECT role, status, content FROM messages ORDER BY id"))


async def test_sigkill_with_a_streaming_and_a_queued_reply_then_restart(tmp_path: Path) -> None:
    database = tmp_path / "botkit.db"
    async with FakeSlack() as slack, Standin(tokens_per_second=15) as standin:
        standin.script_reply(" ".join(f"word{i}" for i in range(400)))
        env = _env(slack, standin, database)
        first = await _botkit_run(tmp_path, env)
        try:
            await slack.wait_for_connections(1, timeout=60)
            root = slack.mention_event("tell me a long story")
            await slack.push_event(root)
            channel, thread = root["channel"], root["ts"]

            def replies() -> list[Any]:
                return slack.thread_replies(channel, thread)

            await slack.wait_for(lambda: len(replies()) == 1 and "word3" in replies()[0].text, 30)
            follow_up = slack.mention_event("and then?", thread_ts=thread)
            await slack.push_event(follow_up)
            await slack.wait_for(lambda: len(replies()) == 2, 30)  # its placeholder, queued
            assert replies()[1].text == "_Thinking…_"
            async with asyncio.timeout(30):  # the row follows its placeholder by one write, and
                while [(r[1], bool(r[2])) for r in _rows(database) if r[0] == "assistant"] != [  # noqa: ASYNC110
                    ("streaming", True),  # the streaming answer is checkpointed every 2 s
                    ("queued", False),
                ]:
                    await asyncio.sleep(0.05)
        finally:
            first.kill()  # SIGKILL: no shutdown code runs
            await first.wait()
        assert first.returncode == -signal.SIGKILL
        streamed_before_crash = replies()[0].text
        checkpointed = _rows(database)[1][2]
        # The checkpoint and the last edit are each a prefix of the answer (either may be ahead).
        assert checkpointed.startswith("word0")
        assert checkpointed.startswith(streamed_before_crash) or streamed_before_crash.startswith(
            checkpointed
        )

        second = await _botkit_run(tmp_path, env)
        try:
            await slack.wait_for(lambda: all("Interrupted" in r.text for r in replies()), 60)
        finally:
            second.terminate()
            await second.wait()
    first_reply, queued_reply = replies()
    note = "⚠️ _Interrupted: botkit restarted before this answer was finished. Please ask again._"
    assert first_reply.text == f"{checkpointed}\n\n{note}"  # its partial text kept, and said so
    assert queued_reply.text == note  # the queued one no longer says "Thinking…" forever
    assert not STANDIN_DONE(first_reply.text)
    assert len(replies()) == 2  # no duplicate reply was posted
    statuses = [(role, status) for role, status, _ in _rows(database)]
    assert statuses == [("user", "complete"), ("assistant", "interrupted")] * 2
