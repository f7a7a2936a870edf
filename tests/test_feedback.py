"""Feedback in the core: which replies get 👍/👎, and what a vote stores (through the public
test kit: a real stand-in, real migrations, the router as adapters see it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from botkit.events import FeedbackEvent
from botkit.plugins import NextStep, Plugin, PluginContext, Request, TurnResult
from botkit.testing.recording import RecordingReply
from botkit.testing.testbot import TestBot


def _click(turn_id: int, vote: str, user: str = "user-1", delivery: str | None = None) -> FeedbackEvent:
    return FeedbackEvent(
        platform="test",
        workspace="workspace-1",
        channel="channel-1",
        user=user,
        turn_id=turn_id,
        vote=vote,  # type: ignore[arg-type]
        delivery_id=delivery or f"{user}-{vote}-{turn_id}",
    )


async def test_a_complete_answer_gets_buttons_on_its_last_message_only(tmp_path: Path) -> None:
    async with TestBot(tmp_path) as bot:
        bot.standin.script_reply("word " * 300, reasoning="r")
        reply = await bot.ask("Write a lot.", reply=RecordingReply(max_chars=600, feedback_buttons=True))
        (turn,) = [m for m in await bot.store.messages(1) if m.role == "assistant"]
    assert len(reply.messages) > 1  # split over several messages
    last = str(len(reply.messages) - 1)
    assert reply.buttons == {last: turn.id}
    with_buttons = [c for c in reply.calls if c.method == "edit_with_feedback"]
    assert [(c.message_id, c.text) for c in with_buttons] == [(last, reply.messages[-1])]


async def test_no_buttons_on_a_failure_or_a_middleware_answer(tmp_path: Path) -> None:
    canned: Plugin[Any] = Plugin("canned")

    @canned.middleware
    async def answer_faq(request: Request, next_step: NextStep, ctx: PluginContext[Any]) -> TurnResult:
        if request.question == "faq":
            return TurnResult("complete", "See the FAQ.")
        return await next_step(request)

    async with TestBot(tmp_path, plugins=[canned]) as bot:
        bot.standin.inject_failure("http500")
        failed = await bot.ask("hello?", reply=RecordingReply(feedback_buttons=True))
        faq = await bot.ask("faq", reply=RecordingReply(feedback_buttons=True), thread="t2")
    assert "500" in failed.text and failed.buttons == {}
    assert faq.text == "See the FAQ." and faq.buttons == {}


async def test_votes_one_per_user_changed_not_added_and_redeliveries_ignored(tmp_path: Path) -> None:
    async with TestBot(tmp_path) as bot:
        reply = await bot.ask("What is 2+2?", reply=RecordingReply(feedback_buttons=True))
        (turn_id,) = reply.buttons.values()
        receipts = [
            await bot.bot.vote(_click(turn_id, "up", delivery="d1")),
            await bot.bot.vote(_click(turn_id, "up", delivery="d1")),  # the same click, redelivered
            await bot.bot.vote(_click(turn_id, "up", delivery="d2")),  # clicked again
            await bot.bot.vote(_click(turn_id, "down", delivery="d3")),
            await bot.bot.vote(_click(turn_id, "up", user="user-2")),
            await bot.bot.vote(_click(turn_id + 100, "up")),
        ]
        votes = await bot.store.votes_on(turn_id)
        (stored,) = [m for m in await bot.store.messages(1) if m.id == turn_id]
    assert [r.outcome for r in receipts] == [
        "recorded",
        "duplicate",
        "unchanged",
        "changed",
        "recorded",
        "unknown",
    ]
    assert receipts[1].text is None  # nothing shown twice for one click
    assert "no longer be rated" in str(receipts[-1].text)
    assert [(v.voter, v.vote, v.persona_name, v.persona_hash) for v in votes] == [
        ("user-1", "down", "general", stored.persona_hash),
        ("user-2", "up", "general", stored.persona_hash),
    ]


async def test_feedback_off_shows_no_buttons_and_stores_no_vote(tmp_path: Path) -> None:
    async with TestBot(tmp_path, settings={"feedback": {"enabled": False}}) as bot:
        reply = await bot.ask("What is 2+2?", reply=RecordingReply(feedback_buttons=True))
        (turn,) = [m for m in await bot.store.messages(1) if m.role == "assistant"]
        receipt = await bot.bot.vote(_click(turn.id, "up"))
        votes = await bot.store.votes_on(turn.id)
    assert reply.buttons == {} and receipt.outcome == "disabled" and votes == []
