"""Edge cases of a turn's life: quick follow-ups, shutdown while waiting, flaky final edits."""

from __future__ import annotations

import asyncio
from pathlib import Path

from botkit.events import TransientPlatformError
from botkit.testing import RecordingReply, Standin, TestBot


async def test_three_quick_messages_in_one_thread_each_see_the_previous_answers(tmp_path: Path) -> None:
    async with TestBot(tmp_path, standin=Standin(tokens_per_second=300)) as bot:
        for i in range(3):
            bot.standin.script_reply(f"answer {i}")
        submissions = [await bot.bot.submit(bot.message(f"question {i}"), RecordingReply()) for i in range(3)]
        await asyncio.gather(*(s.wait() for s in submissions))
        sizes = [len(r["messages"]) for r in bot.standin.requests]
        last = bot.standin.requests[-1]["messages"]
    assert sizes == [1, 3, 5]
    assert [m["content"] for m in last[:4]] == ["question 0", "answer 0", "question 1", "answer 1"]


async def test_shutdown_while_waiting_behind_another_turn_is_visible(tmp_path: Path) -> None:
    async with TestBot(
        tmp_path, standin=Standin(tokens_per_second=20), settings={"bot": {"shutdown_grace": 0.3}}
    ) as bot:
        bot.standin.script_reply("word " * 200)
        first, second = RecordingReply(), RecordingReply()
        await bot.bot.submit(bot.message("long one"), first)
        await bot.bot.submit(bot.message("waiting one"), second)
        await bot.standin.wait_for(lambda: bot.standin.running == 1, 10)
        await bot.bot.drain(grace=0.3)
    assert "Interrupted" in first.text
    assert "Interrupted" in second.text, second.messages
    assert second.calls[-1].method in ("fail", "finish")


class FlakyFinalEdit(RecordingReply):
    """Fails the first edit that carries the final answer, as a reset connection would (an adapter
    reports it as the core's TransientPlatformError)."""

    def __init__(self, final: str) -> None:
        super().__init__()
        self.final = final
        self.failed_once = False

    async def edit(self, message_id: str, text: str) -> None:
        if text == self.final and not self.failed_once:
            self.failed_once = True
            raise TransientPlatformError("connection reset by peer")
        await super().edit(message_id, text)


async def test_a_transient_error_on_the_final_edit_is_retried_and_the_turn_stored(tmp_path: Path) -> None:
    answer = "The final answer survives a reset connection."
    async with TestBot(tmp_path) as bot:
        bot.standin.script_reply(answer)
        reply = await bot.ask("go", reply=FlakyFinalEdit(answer))
        conversation = await bot.store.conversation_id("test", "workspace-1", "channel-1", "thread-1")
        rows = [
            (m.status, m.content) for m in await bot.store.messages(conversation) if m.role == "assistant"
        ]
    assert reply.failed_once
    assert reply.messages == [answer]
    assert rows == [("complete", answer)]


async def test_long_direct_responses_are_split_not_rejected(tmp_path: Path) -> None:
    async with TestBot(tmp_path) as bot:
        reply = await bot.ask("", command="persona show", args={"name": "medical"}, roles=["admin"],
                              reply=RecordingReply(max_chars=300))  # fmt: skip
    assert len(reply.messages) > 1
    assert all(len(m) <= 300 for m in reply.messages)
    assert "medical" in reply.messages[0]


async def test_reasoning_that_hits_max_tokens_is_not_retried_and_says_why(tmp_path: Path) -> None:
    async with TestBot(tmp_path) as bot:  # the general persona allows 2048 tokens
        bot.standin.script_reply("never reached", reasoning="think " * 3000)
        reply = await bot.ask("hard question")
        requests = len(bot.standin.requests)
    assert requests == 1
    assert "whole answer budget thinking" in reply.text


async def test_crash_leftovers_are_marked_interrupted_at_the_next_start(tmp_path: Path) -> None:
    async with TestBot(tmp_path) as bot:
        conversation = await bot.store.conversation_id("test", "w", "c", "t")
        ids = await bot.store.start_turn(
            conversation, user_text="q", user_id="u", delivery_id="d", persona_name="general",
            persona_hash="h", model="m",
        )  # fmt: skip
        await bot.store.record_message_ids(ids.assistant_message_id, ["msg-1"])
    async with TestBot(tmp_path) as bot:  # the same database, a new process's start-up
        # Claimed, not settled, until the restart pass has shown it on the platform.
        (claimed,) = [m for m in await bot.store.messages(conversation) if m.role == "assistant"]
        assert bot.app is not None
        await bot.app.restart_pass([])  # no adapter serves "test": what the database knows
        rows = [m for m in await bot.store.messages(conversation) if m.role == "assistant"]
    assert claimed.status == "streaming" and claimed.owner == bot.store.worker_id
    assert [(r.status, r.platform_message_ids) for r in rows] == [("interrupted", ["msg-1"])]
