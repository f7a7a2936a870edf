"""A persona's notices on Discord, through discord.py and the fake Discord: ``/ask
persona=medical`` by a member holding the ``medical`` role (the shipped persona), and a mention
in a channel bound to a persona; every body Discord received, and the stored answer."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from discord_harness import discord_rig
from notice_personas import AFTER, BEFORE, write_noticed

from botkit.testing.testbot import TestBot

MEDICAL_BEFORE = "_Not medical advice. In an emergency, call your local emergency number now._"
MEDICAL_AFTER_START = "_This is general information, not a diagnosis"


async def wait_stored(bot: TestBot) -> None:
    """Until no turn is unfinished: the final write follows the final edit."""
    async with asyncio.timeout(10):
        while await bot.store.unfinished_turns():  # noqa: ASYNC110 - polling the database
            await asyncio.sleep(0.02)


def _contents(bodies: list[Any]) -> list[str]:
    return [str(body.get("content")) for body in bodies if isinstance(body, dict) and body.get("content")]


async def test_ask_the_shipped_medical_persona_shows_its_notices_and_stores_them(tmp_path: Path) -> None:
    answer = "A tension headache is common. " + " ".join(f"word{i}" for i in range(80))
    async with discord_rig(tmp_path, core={"stream": {"edit_interval": 0.05}}) as rig:
        fake = rig.fake
        rig.bot.standin.tokens_per_second = 400
        rig.bot.standin.script_reply(answer, reasoning="Thinking it over. " * 10)
        nurse = fake.add_user("nurse", roles=["medical"])
        interaction = await fake.slash_command(
            nurse, "ask", {"question": "Why does my head hurt?", "persona": "medical"}
        )
        await fake.wait_for(
            lambda: any(MEDICAL_AFTER_START in t for t in fake.interaction_messages(interaction.id)), 15
        )
        bodies = [call.body for call in fake.calls_to("PATCH", "") + fake.calls_to("POST", "")]
        await wait_stored(rig.bot)
        rows = [m for c in range(1, 3) for m in await rig.bot.store.messages(c) if m.role == "assistant"]
    *partials, final = _contents(bodies)
    assert partials and all(text.startswith(f"{MEDICAL_BEFORE}\n\n") for text in partials), partials
    assert any("word" in text for text in partials), "the answer streamed"
    (shown,) = fake.interaction_messages(interaction.id)
    assert shown == final and shown.startswith(answer) and f"\n\n{MEDICAL_AFTER_START}" in shown
    (row,) = rows
    assert row.content == shown and row.reasoning is None  # store_reasoning: false


async def test_a_mention_in_a_bound_channel_ends_with_the_notice(tmp_path: Path) -> None:
    personas = write_noticed(tmp_path / "personas")
    async with discord_rig(tmp_path, core={"personas": {"dir": str(personas)}}) as rig:
        fake = rig.fake
        channel = fake.add_channel(fake.guild_id, "clinic")
        rig.bot.settings.personas.bindings[f"discord:{channel}"] = "noticed"
        rig.bot.standin.script_reply("Drink water.")
        user = fake.add_user("alice")
        await fake.user_message(user, channel, f"{fake.mention} Am I thirsty?")
        await fake.wait_for(lambda: any(AFTER in m["content"] for m in fake.messages_in(channel)), 15)
        messages = fake.messages_in(channel)
        await wait_stored(rig.bot)
        (row,) = [m for m in await rig.bot.store.messages(1) if m.role == "assistant"]
    assert row.content == f"Drink water.\n\n{AFTER}"
    assert [m["content"] for m in messages][-1] == f"Drink water.\n\n{AFTER}"
    bodies = _contents([call.body for call in fake.calls_to("POST", "") + fake.calls_to("PATCH", "")])
    assert f"{BEFORE}\n\n_Thinking…_" in bodies  # the placeholder
