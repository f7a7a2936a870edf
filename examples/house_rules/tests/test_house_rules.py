"""The example plugin, tested the way plugin authors should: with botkit.testing.TestBot."""

from __future__ import annotations

from pathlib import Path

from botkit_house_rules import plugin

from botkit.testing import TestBot


async def test_footer_is_added_after_the_answer(tmp_path: Path) -> None:
    async with TestBot(tmp_path, plugins=[plugin]) as bot:
        bot.standin.script_reply("Paris is the capital of France.")
        reply = await bot.ask("What is the capital of France?")
    assert reply.text == "Paris is the capital of France.\n\n_(answered by botkit; check important facts)_"


async def test_blocked_word_is_refused_before_the_model_is_asked(tmp_path: Path) -> None:
    settings = {"plugins": {"settings": {"house_rules": {"blocked_words": ["secret"]}}}}
    async with TestBot(tmp_path, plugins=[plugin], settings=settings) as bot:
        reply = await bot.ask("my SECRET is hunter2, is it good?")
        assert bot.standin.requests == []
        turns = await bot.store.unfinished_turns()
    assert "House rules" in reply.text and "'secret'" in reply.text
    assert turns == []


async def test_rules_command_answers_without_the_model(tmp_path: Path) -> None:
    async with TestBot(tmp_path, plugins=[plugin]) as bot:
        reply = await bot.ask("", command="rules")
        assert bot.standin.requests == []
    assert reply.text.startswith("**House rules**")
    assert "`password`" in reply.text
