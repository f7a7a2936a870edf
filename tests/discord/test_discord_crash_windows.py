"""The crash window Discord allows the restart pass to close, drilled with a real ``botkit run``
process: SIGKILL while the final edit's request is in flight (the fake Discord holds that
PATCH, applied first or not), then a restart; and SIGKILL while an inline mention's placeholder
POST is in flight. Discord returns no readable marker with a message (a ``nonce`` is not echoed
on reads): a recorded reply is read back by its id, and an unrecorded one only where it replies
to (references) the mention (docs/reliability.md lists where it cannot be found)."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from botkit.leftovers import LEFTOVER_NOTE
from botkit.testing import Standin
from botkit.testing.fake_discord import FakeDiscord

pytestmark = pytest.mark.timeout(150)

ANSWER = " ".join(f"word{i}" for i in range(60))
EDIT = r"^/channels/\d+/messages/\d+$"


def _env(fake: FakeDiscord, standin: Standin, database: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTKIT_")}
    return env | {
        "BOTKIT_BOT__ADAPTERS": '["discord"]',
        "BOTKIT_LLM__BACKEND": "external",
        "BOTKIT_LLM__BASE_URL": standin.base_url,
        "BOTKIT_DATABASE__URL": f"sqlite+aiosqlite:///{database}",
        "BOTKIT_SERVER__ENABLED": "false",
        "BOTKIT_PERSONAS__WATCH": "false",
        # No streaming edit before the final one: what the message shows is the placeholder
        # until the final edit, so "applied" and "not applied" look different.
        "BOTKIT_STREAM__EDIT_INTERVAL": "30",
        "BOTKIT_DISCORD__TOKEN": fake.token,
        "BOTKIT_DISCORD__API_URL": fake.api_url,
        "BOTKIT_DISCORD__GATEWAY_URL": fake.gateway_url,
        "BOTKIT_DISCORD__GUILD_IDS": f"[{fake.guild_id}]",
        "BOTKIT_DISCORD__GUILD_READY_TIMEOUT": "0.1",
        "BOTKIT_DISCORD__EDITS_PER_SECOND": "50",
    }


async def _botkit_run(cwd: Path, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "botkit.cli", "run", cwd=cwd, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


def _assistant(database: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(database) as db:
        return list(db.execute("SELECT status, content FROM messages WHERE role = 'assistant' ORDER BY id"))


def _bot_messages(fake: FakeDiscord) -> list[dict[str, Any]]:
    bot = fake.bot_user["id"]
    return [m for m in fake.messages.values() if m["author"]["id"] == bot]


async def _until(predicate: Callable[[], bool], timeout: float = 30) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 - polling the database file and the fake
            await asyncio.sleep(0.05)


async def _restart_until_settled(
    fake: FakeDiscord, tmp_path: Path, env: dict[str, str], database: Path
) -> bytes:
    """A second ``botkit run`` once the killed one's gateway is gone, kept until its restart
    pass settled the turn; its stderr (the log) for failure messages."""
    await fake.wait_for(lambda: not fake._connections, 30)
    second = await _botkit_run(tmp_path, env)
    try:
        await fake.wait_until_connected(60)  # the restart pass ran before it connected
        await _until(lambda: all(status != "streaming" for status, _ in _assistant(database)))
    finally:
        second.terminate()
        _, log = await second.communicate()
    return log


def _edits_of(fake: FakeDiscord, message_id: str) -> list[Any]:
    """Every text an accepted PATCH gave the message: with its POST, every version it had."""
    return [
        c.body.get("content")
        for c in fake.calls
        if c.method == "PATCH" and c.path.endswith(f"/messages/{message_id}") and c.status == 200
    ]


@pytest.mark.parametrize("applied", [True, False], ids=["applied", "not-applied"])
async def test_final_edit_in_flight_then_restart(tmp_path: Path, applied: bool) -> None:
    """Applied (Discord took the PATCH, its response is not back): the restart reads the
    recorded reply, finds the spooled intent shown, stores the turn complete, never edits it.
    Not applied: the reply shows its checkpointed partial answer and the interruption note."""
    database = tmp_path / "botkit.db"
    async with FakeDiscord() as fake, Standin(tokens_per_second=15) as standin:
        standin.script_reply(ANSWER)
        env = _env(fake, standin, database)
        final = fake.hold(
            "PATCH",
            EDIT,
            apply=applied,
            match=lambda body: isinstance(body, dict) and body.get("content") == ANSWER,
        )
        first = await _botkit_run(tmp_path, env)
        try:
            await fake.wait_until_connected(60)
            asker = fake.add_user("ada")
            await fake.user_message(asker, fake.channel_id, f"{fake.mention} tell me a story")
            await asyncio.wait_for(final.reached.wait(), 60)
        finally:
            if first.returncode is None:
                first.kill()
            await first.wait()
        assert first.returncode == -signal.SIGKILL
        (reply,) = _bot_messages(fake)
        assert reply["content"] == (ANSWER if applied else "_Thinking…_")
        ((status, checkpoint),) = _assistant(database)
        assert status == "streaming" and checkpoint.startswith("word0") and checkpoint != ANSWER

        log = await _restart_until_settled(fake, tmp_path, env, database)
    (reply,) = _bot_messages(fake)  # no second reply
    edits = _edits_of(fake, reply["id"])
    if applied:
        assert reply["content"] == ANSWER, log.decode()[-3000:]
        assert edits == [ANSWER]  # the final edit, and nothing after it
        assert _assistant(database) == [("complete", ANSWER)]
    else:
        assert reply["content"] == f"{checkpoint}\n\n{LEFTOVER_NOTE}"
        assert ANSWER not in edits
        assert _assistant(database) == [("interrupted", checkpoint)]


async def test_inline_placeholder_posted_but_not_recorded_then_restart_repairs_it_in_place(
    tmp_path: Path,
) -> None:
    """SIGKILL while the placeholder's POST is in flight (Discord created it, its id never came
    back) and the answer streams: the restart lists the channel after the mention, finds the
    bot's message that replies to it and edits that one in place; one message, no "Thinking…"."""
    database = tmp_path / "botkit.db"
    async with FakeDiscord() as fake, Standin(tokens_per_second=15) as standin:
        standin.script_reply(ANSWER)
        env = _env(fake, standin, database) | {"BOTKIT_DISCORD__MENTION_MODE": "inline"}
        posted = fake.hold(
            "POST",
            r"^/channels/\d+/messages$",
            apply=True,
            match=lambda body: isinstance(body, dict) and bool(body.get("message_reference")),
        )
        first = await _botkit_run(tmp_path, env)
        try:
            await fake.wait_until_connected(60)
            asker = fake.add_user("ada")
            question = await fake.user_message(asker, fake.channel_id, f"{fake.mention} tell me a story")
            await asyncio.wait_for(posted.reached.wait(), 60)
            await _until(lambda: any(content for _, content in _assistant(database)))  # a checkpoint
        finally:
            if first.returncode is None:
                first.kill()
            await first.wait()
        assert first.returncode == -signal.SIGKILL
        (placeholder,) = _bot_messages(fake)
        assert placeholder["content"] == "_Thinking…_"
        assert placeholder["message_reference"]["message_id"] == str(question["id"])
        ((status, checkpoint),) = _assistant(database)
        assert status == "streaming" and checkpoint.startswith("word0") and checkpoint != ANSWER
        with sqlite3.connect(database) as db:
            ((recorded,),) = db.execute("SELECT platform_message_ids FROM messages WHERE role = 'assistant'")
        assert recorded in (None, "[]")  # the id never came back: nothing to find it by in the DB

        log = await _restart_until_settled(fake, tmp_path, env, database)
    (reply,) = _bot_messages(fake)  # no second reply, no note beside it
    assert reply["id"] == placeholder["id"], log.decode()[-3000:]
    assert reply["content"] == f"{checkpoint}\n\n{LEFTOVER_NOTE}"
    edits = _edits_of(fake, reply["id"])
    assert edits == [f"{checkpoint}\n\n{LEFTOVER_NOTE}"]  # every version: the placeholder, then this
    assert fake.messages[int(question["id"])]["content"] == f"{fake.mention} tell me a story"
    assert _assistant(database) == [("interrupted", checkpoint)]


async def test_the_restart_leaves_another_mentions_reply_in_the_channel_alone(tmp_path: Path) -> None:
    """Two inline mentions answered at once in one channel, the second's placeholder POST in
    flight at the SIGKILL while the first's answer completes: the restart repairs the second's
    placeholder only; the first's reply (posted after the second mention, in the listed range)
    references the first mention, is never edited again and stays complete."""
    database = tmp_path / "botkit.db"
    async with FakeDiscord() as fake, Standin(tokens_per_second=15) as standin:
        standin.script_reply(ANSWER)
        standin.script_reply(ANSWER)
        env = _env(fake, standin, database) | {"BOTKIT_DISCORD__MENTION_MODE": "inline"}
        second_id: dict[str, str] = {}
        posted = fake.hold(
            "POST",
            r"^/channels/\d+/messages$",
            apply=True,
            match=lambda body: (
                isinstance(body, dict)
                and str((body.get("message_reference") or {}).get("message_id")) == second_id.get("id")
            ),
        )
        first = await _botkit_run(tmp_path, env)
        try:
            await fake.wait_until_connected(60)
            asker = fake.add_user("ada")
            one = await fake.user_message(
                asker, fake.channel_id, f"{fake.mention} first question", dispatch=False
            )
            two = await fake.user_message(
                asker, fake.channel_id, f"{fake.mention} second question", dispatch=False
            )
            second_id["id"] = str(two["id"])
            await fake.redeliver(one)
            await fake.wait_for(lambda: bool(_bot_messages(fake)), 30)  # the first's placeholder
            await fake.redeliver(two)
            await asyncio.wait_for(posted.reached.wait(), 60)
            await _until(lambda: [s for s, _ in _assistant(database)].count("complete") == 1)
            await _until(lambda: all(c for _, c in _assistant(database)))
        finally:
            if first.returncode is None:
                first.kill()
            await first.wait()
        reply_one, placeholder = sorted(_bot_messages(fake), key=lambda m: int(m["id"]))
        assert reply_one["message_reference"]["message_id"] == str(one["id"])
        assert placeholder["message_reference"]["message_id"] == str(two["id"])
        before = _edits_of(fake, reply_one["id"])
        (checkpoint,) = [c for s, c in _assistant(database) if s == "streaming"]
        log = await _restart_until_settled(fake, tmp_path, env, database)
    assert fake.messages[int(reply_one["id"])]["content"] == ANSWER, log.decode()[-3000:]
    assert _edits_of(fake, reply_one["id"]) == before  # the other turn's reply: never edited again
    assert fake.messages[int(placeholder["id"])]["content"] == f"{checkpoint}\n\n{LEFTOVER_NOTE}"
    assert len(_bot_messages(fake)) == 2
    assert sorted(_assistant(database)) == [("complete", ANSWER), ("interrupted", checkpoint)]
