"""Several botkit processes on one database: a process that starts (or an admin's ``botkit
chat`` beside ``botkit run``) never repairs the turns of one still serving; the turns of one
that is gone are repaired, once, by a process that is serving (see botkit.leftovers)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from polling import until

from botkit.events import ConversationKey
from botkit.leftovers import LEFTOVER_NOTE
from botkit.store import ConversationStore
from botkit.testing import RecordingReply, Standin, TestBot
from botkit.testing.fake_slack import FakeSlack, SlackMessage

REPO = Path(__file__).resolve().parents[1]


def _words(n: int) -> str:
    return " ".join(f"word{i}" for i in range(n))


def _versions(reply: RecordingReply) -> list[str]:
    return [c.text for c in reply.calls if c.method in ("post_placeholder", "edit", "post_continuation")]


async def _statuses(bot: TestBot) -> list[str]:
    conversation = await bot.store.conversation_id("test", "workspace-1", "channel-1", "thread-1")
    return [m.status for m in await bot.store.messages(conversation) if m.role == "assistant"]


async def test_botkit_chat_beside_a_serving_bot_leaves_its_turns_alone(tmp_path: Path) -> None:
    """An admin runs ``botkit chat`` (a whole start-up, with its restart pass) on the database a
    serving bot uses while that bot streams one answer and has a second question queued behind
    it in the same thread: both are answered by the serving bot, neither is marked interrupted."""
    database = tmp_path / "shared.db"
    url = f"sqlite+aiosqlite:///{database}"
    answer = _words(250)  # 25 s at 10 tokens/s: still streaming when `botkit chat` is done
    async with TestBot(tmp_path, database_url=url, standin=Standin(tokens_per_second=10)) as bot:
        bot.standin.script_reply(answer)
        bot.standin.script_reply("the second answer")
        first, second = RecordingReply(), RecordingReply()
        asked = await bot.bot.submit(bot.message("first question"), first)
        await until(lambda: any(v.startswith("word") for v in _versions(first)), 20)
        queued = await bot.bot.submit(bot.message("second question", delivery_id="d2"), second)
        await until(lambda: bool(_versions(second)), 20)  # its placeholder: it waits for the first
        assert await _statuses(bot) == ["streaming", "queued"]

        env = os.environ | {
            "BOTKIT_DATABASE__URL": url,
            "BOTKIT_LLM__BACKEND": "standin",
            "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "adapters")]),
        }
        chat = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "botkit.cli", "chat"],
            input="What is 2+2?\n",
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=120,
        )
        assert chat.returncode == 0, chat.stderr
        assert "4" in chat.stdout
        assert await _statuses(bot) == ["streaming", "queued"]  # untouched by its start-up

        await asyncio.gather(asked.wait(), queued.wait())
        assert await _statuses(bot) == ["complete", "complete"]
    assert first.text == answer
    assert second.text == "the second answer"
    assert all("Interrupted" not in v for v in _versions(first) + _versions(second))


@contextlib.asynccontextmanager
async def _other_process(url: str, host: str) -> AsyncIterator[ConversationStore]:
    """Another botkit process's view of the database: registered from ``host``."""
    store = await ConversationStore.open(url, migrate=True)
    try:
        await store.register_worker(f"w-{host}", host=host, pid=1)
        yield store
    finally:
        await store.close()


async def _slack_turn(store: ConversationStore, slack: FakeSlack, key: ConversationKey, n: int) -> str:
    """A reply on "Thinking…" on Slack, its turn ``streaming`` and owned by ``store``'s worker."""
    ts = slack.next_ts()
    slack.messages[(key.channel, ts)] = SlackMessage(
        channel=key.channel, ts=ts, text="_Thinking…_", user=slack.bot_user_id, bot_id=slack.bot_id,
        thread_ts=key.thread, history=["_Thinking…_"],
    )  # fmt: skip
    conversation = await store.conversation_id(key.platform, key.workspace, key.channel, key.thread)
    await store.start_turn(
        conversation, user_text=f"question {n}", user_id="U1", delivery_id=f"Ev{n}",
        persona_name="general", persona_hash="h", model="m", platform_message_ids=[ts],
    )  # fmt: skip
    return ts


async def test_the_turns_of_a_process_gone_on_another_host_are_repaired_by_the_sweep(
    tmp_path: Path,
) -> None:
    """Two processes on other hosts: one keeps beating, one stopped (killed, its host gone). A
    serving bot repairs the stopped one's reply once its beat has stood still for
    ``worker_timeout``, and never touches the other's."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    async with (
        FakeSlack() as slack,
        _other_process(url, "host-alive") as alive,
        _other_process(url, "host-gone") as gone,
    ):
        root = slack.mention_event("a question")
        slack.record_user_message(root)
        key = ConversationKey("slack", slack.team_id, root["channel"], root["ts"])
        alive_ts = await _slack_turn(alive, slack, key, 1)
        gone_ts = await _slack_turn(gone, slack, key, 2)

        async def beat() -> None:
            while True:
                await alive.heartbeat()
                await asyncio.sleep(0.1)

        beating = asyncio.create_task(beat())
        settings: dict[str, Any] = {
            "slack": slack.settings(),
            "database": {"heartbeat_interval": 0.2, "worker_timeout": 1.0},
        }
        try:
            async with TestBot(tmp_path / "serving", database_url=url, settings=settings) as bot:
                assert bot.app is not None
                serving = asyncio.create_task(bot.app.serve(bot.app.build_adapters(["slack"])))
                try:
                    await slack.wait_for_connections(1, timeout=30)
                    # the start-up pass left both alone: neither is on this host
                    assert slack.messages[(key.channel, gone_ts)].history == ["_Thinking…_"]
                    await slack.wait_for(
                        lambda: slack.messages[(key.channel, gone_ts)].text == LEFTOVER_NOTE, 20
                    )
                    await asyncio.sleep(1.0)  # more sweeps: nothing more happens
                    conversation = await bot.store.conversation_id(
                        key.platform, key.workspace, key.channel, key.thread
                    )
                    rows = {
                        m.platform_message_ids[0]: m.status
                        for m in await bot.store.messages(conversation)
                        if m.role == "assistant"
                    }
                    workers = set(await bot.store.workers())
                finally:
                    serving.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await serving
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
    assert rows == {alive_ts: "streaming", gone_ts: "interrupted"}
    assert slack.messages[(key.channel, gone_ts)].history == ["_Thinking…_", LEFTOVER_NOTE]  # once
    assert slack.messages[(key.channel, alive_ts)].history == ["_Thinking…_"]
    assert "w-host-gone" not in workers and "w-host-alive" in workers


async def test_a_claimed_turn_is_its_claimers_to_settle_and_no_other_process_takes_it(tmp_path: Path) -> None:
    """A sweep claims a gone process's turn (still unfinished, now its own) and is stopped
    before it settles it (here: the repair never ran, as when the database went away): its next
    sweep takes the turn again though no process is gone any more, and another live process's
    sweep leaves it alone, so exactly one process repairs it."""
    from botkit.leftovers import settle_abandoned

    url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    stores = [await ConversationStore.open(url, migrate=True) for _ in range(3)]
    gone, me, other = stores
    try:
        for number, store in enumerate(stores):
            await store.register_worker(f"worker{number}", host="elsewhere", pid=1)
        conversation = await gone.conversation_id("slack", "T1", "C1", "1.0")
        ids = await gone.start_turn(
            conversation, user_text="q", user_id="u", delivery_id="d1", persona_name="general",
            persona_hash="h", model="m", status="streaming",
        )  # fmt: skip
        turn = ids.assistant_message_id

        taken, _ = await settle_abandoned(me, None, lambda workers: {"worker0"}, ownerless=False)
        assert [leftover.turn for leftover in taken] == [turn]
        (row,) = [m for m in await me.messages(conversation) if m.role == "assistant"]
        assert (row.status, row.owner) == ("streaming", "worker1")  # claimed, not settled

        assert (await settle_abandoned(other, None, lambda workers: set(), ownerless=True))[0] == []
        again, _ = await settle_abandoned(me, None, lambda workers: set(), ownerless=False)
        assert [leftover.turn for leftover in again] == [turn]
        assert again[0].interrupted is not None
        assert await me.settle_unfinished(turn, **again[0].interrupted)
        assert (await settle_abandoned(me, None, lambda workers: set(), ownerless=False))[0] == []
        (row,) = [m for m in await me.messages(conversation) if m.role == "assistant"]
        assert row.status == "interrupted"
    finally:
        for store in stores:
            await store.close()
