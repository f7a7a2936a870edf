"""Fault drills with a real ``botkit run`` process on Slack: SIGKILL it while one reply streams
and the next question in the same thread waits behind it, or while a shown answer's final write
waits for a locked database; restart it, and look at every message the fake Slack holds and
every row of the database."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from db_faults import exclusive_lock
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


async def _sigkill(process: asyncio.subprocess.Process) -> None:
    """SIGKILL (no shutdown code runs), unless it has ended already; then reap it."""
    if process.returncode is None:
        process.kill()
    await process.wait()


def _rows(database: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(database) as db:
        return list(db.execute("SELECT role, status, content FROM messages ORDER BY id"))


def _placeholders(database: Path) -> list[str]:
    """Each assistant row's recorded platform message ids (JSON), in order."""
    with sqlite3.connect(database) as db:
        return [
            r[0] for r in db.execute("SELECT platform_message_ids FROM messages WHERE role = 'assistant'")
        ]


async def _mention_and_wait_for_words(slack: FakeSlack, text: str) -> tuple[str, Callable[[], list[Any]]]:
    """Once ``botkit run`` is connected, @mention it; returns the thread and its replies, as soon
    as the first reply streams the answer's words."""
    await slack.wait_for_connections(1, timeout=60)
    root = slack.mention_event(text)
    await slack.push_event(root)
    channel, thread = str(root["channel"]), str(root["ts"])

    def replies() -> list[Any]:
        return slack.thread_replies(channel, thread)

    await slack.wait_for(lambda: len(replies()) == 1 and "word3" in replies()[0].text, 30)
    return thread, replies


async def test_sigkill_with_a_streaming_and_a_queued_reply_then_restart(tmp_path: Path) -> None:
    database = tmp_path / "botkit.db"
    async with FakeSlack() as slack, Standin(tokens_per_second=15) as standin:
        standin.script_reply(" ".join(f"word{i}" for i in range(400)))
        env = _env(slack, standin, database)
        first = await _botkit_run(tmp_path, env)
        try:
            thread, replies = await _mention_and_wait_for_words(slack, "tell me a long story")
            follow_up = slack.mention_event("and then?", thread_ts=thread)
            await slack.push_event(follow_up)
            await slack.wait_for(lambda: len(replies()) == 2, 30)  # its placeholder, queued
            assert replies()[1].text == "_Thinking…_"
            async with asyncio.timeout(30):  # the row (written at acceptance) gets its placeholder's
                while [(r[1], bool(r[2])) for r in _rows(database) if r[0] == "assistant"] != [  # noqa: ASYNC110
                    ("streaming", True),  # id one write after it is posted, and the streaming
                    ("queued", False),  # answer is checkpointed every 2 s
                ] or "[]" in _placeholders(database):
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
            # Each row is settled once its message says so (botkit.repair), not before.
            async with asyncio.timeout(30):
                while any(r[1] in ("queued", "streaming") for r in _rows(database)):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _pending_writes(port: int) -> int:
    try:
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/healthz") as response:
            report = await response.json()
    except aiohttp.ClientError:
        return -1  # not serving yet
    return int(report["database"]["pending_writes"])


async def test_sigkill_while_a_shown_answers_final_write_waits_then_restart(tmp_path: Path) -> None:
    """The answer is shown in full while the database file is locked, botkit is killed with its
    final write pending: the next start stores the answer as complete and leaves the message,
    which shows it, alone."""
    database = tmp_path / "botkit.db"
    answer = " ".join(f"word{i}" for i in range(60))
    async with FakeSlack() as slack, Standin(tokens_per_second=30) as standin:
        standin.script_reply(answer)
        port = _free_port()
        env = _env(slack, standin, database) | {
            "BOTKIT_SERVER__ENABLED": "true",
            "BOTKIT_SERVER__PORT": str(port),
        }
        first = await _botkit_run(tmp_path, env)
        try:
            _, replies = await _mention_and_wait_for_words(slack, "tell me a story")
            with exclusive_lock(database):
                await slack.wait_for(lambda: replies()[0].text == answer, 30)  # shown in full
                async with asyncio.timeout(30):
                    while await _pending_writes(port) != 1:  # noqa: ASYNC110 - polling /healthz
                        await asyncio.sleep(0.05)
                await _sigkill(first)  # with the final write waiting for the lock
        finally:
            await _sigkill(first)
        assert first.returncode == -signal.SIGKILL
        assert [r[:2] for r in _rows(database)] == [("user", "complete"), ("assistant", "streaming")]
        shown_at_kill = list(replies()[0].history)

        opened = slack.connections_opened
        second = await _botkit_run(tmp_path, env)
        try:  # the restart pass runs before the adapter connects again
            await slack.wait_for(lambda: slack.connections_opened > opened, 60)
        finally:
            second.terminate()
            _, stderr = await second.communicate()
        assert b"storing it now (complete" in stderr, stderr.decode()[-3000:]
    (message,) = replies()
    assert message.history[-1] == answer  # still the complete answer, not an interruption note
    # Never edited after the kill. (Before it, the last partial edit may already have shown every
    # word, when the final tokens came just before an edit tick: the final edit repeats the text.)
    assert message.history == shown_at_kill
    assert all(text == "_Thinking…_" or answer.startswith(text) for text in message.history)
    assistant = [(status, content) for role, status, content in _rows(database) if role == "assistant"]
    assert assistant == [("complete", answer)]  # stored from the spool, as it was shown
    assert list((tmp_path / "botkit.db.pending").glob("*.json")) == []


UNANSWERED = "⚠️ _Interrupted: botkit restarted before it could answer this. Please ask again._"


async def test_sigkill_between_receipt_and_persist_gets_no_ack_and_the_redelivery_is_answered_once(
    tmp_path: Path,
) -> None:
    """Accepted means persisted: with the database file locked, the event reaches ``botkit run``,
    which blocks in its first write (SQLite's busy timeout is 30 s); SIGKILL it there. Slack got
    no ack, so it redelivers; the restarted process answers that redelivery, once."""
    database = tmp_path / "botkit.db"
    async with FakeSlack() as slack, Standin() as standin:
        standin.script_reply("the answer is 4")
        env = _env(slack, standin, database)
        first = await _botkit_run(tmp_path, env)
        try:
            await slack.wait_for_connections(1, timeout=60)
            root = slack.mention_event("what is 2+2?")
            with exclusive_lock(database):
                envelope = await slack.push_event(root, event_id="EvLOST1")
                # Give the listener ample time to reach its write, which waits for the lock; no
                # ack can be sent meanwhile, however long this is.
                await asyncio.sleep(1.5)
                await _sigkill(first)
        finally:
            await _sigkill(first)
        assert first.returncode == -signal.SIGKILL
        assert [a for a in slack.acks if a.get("envelope_id") == envelope["envelope_id"]] == []
        assert _rows(database) == []  # nothing was stored, and nothing was claimed
        channel, thread = str(root["channel"]), str(root["ts"])
        assert slack.thread_replies(channel, thread) == []

        second = await _botkit_run(tmp_path, env)
        try:
            await slack.wait_for_connections(1, timeout=60)
            again = await slack.push_event(root, event_id="EvLOST1", retry_attempt=1, retry_reason="timeout")
            await slack.wait_for_ack(again["envelope_id"], timeout=30)
            await slack.wait_for(
                lambda: [r.text for r in slack.thread_replies(channel, thread)] == ["the answer is 4"], 30
            )
            third = await slack.push_event(root, event_id="EvLOST1", retry_attempt=2, retry_reason="timeout")
            await slack.wait_for_ack(third["envelope_id"], timeout=30)  # a duplicate: acked, dropped
        finally:
            second.terminate()
            await second.wait()
    assert [r.text for r in slack.thread_replies(channel, thread)] == ["the answer is 4"]
    assert _rows(database) == [
        ("user", "complete", "what is 2+2?"),
        ("assistant", "complete", "the answer is 4"),
    ]


async def test_sigkill_after_persist_before_the_placeholder_then_restart_tells_the_asker_once(
    tmp_path: Path,
) -> None:
    """The event is acked (so it is on disk) while the placeholder's post hangs; SIGKILL. The
    restart finds the inbox row with no placeholder and says, in one new reply, to ask again."""
    database = tmp_path / "botkit.db"
    async with FakeSlack() as slack, Standin() as standin:
        env = _env(slack, standin, database)
        for method in ("chat.postMessage", "chat.startStream"):
            slack.delay(method, 300)
        first = await _botkit_run(tmp_path, env)
        try:
            await slack.wait_for_connections(1, timeout=60)
            root = slack.mention_event("what is 2+2?")
            envelope = await slack.push_event(root, event_id="EvQUEUED1")
            await slack.wait_for_ack(envelope["envelope_id"], timeout=30)
            # Acked means stored: the question and its queued reply row, without a placeholder.
            assert [r[:2] for r in _rows(database)] == [("user", "complete"), ("assistant", "queued")]
            assert _placeholders(database) == ["[]"]
        finally:
            first.kill()
            await first.wait()
        for method in ("chat.postMessage", "chat.startStream"):
            slack.delay(method, 0)
        channel, thread = str(root["channel"]), str(root["ts"])

        second = await _botkit_run(tmp_path, env)
        try:
            await slack.wait_for(lambda: len(slack.thread_replies(channel, thread)) == 1, 60)
            await slack.wait_for_connections(1, timeout=60)
            again = await slack.push_event(
                root, event_id="EvQUEUED1", retry_attempt=1, retry_reason="timeout"
            )
            await slack.wait_for_ack(again["envelope_id"], timeout=30)  # a duplicate: not answered again
        finally:
            second.terminate()
            await second.wait()
    (note,) = slack.thread_replies(channel, thread)
    assert note.text == UNANSWERED
    assert [(role, status) for role, status, _ in _rows(database)] == [
        ("user", "complete"),
        ("assistant", "interrupted"),
    ]
