"""The bad-input corpus through discord.py and the fake Discord: every question ends in exactly
one reply or one private notice, and nothing botkit sends may ping (allowed_mentions is empty on
every message body Discord receives)."""

from __future__ import annotations

import asyncio
from typing import Any

from bad_input_corpus import INJECTED_ANSWER, QUESTIONS
from discord_harness import DiscordRig


def _bodies(rig: DiscordRig) -> list[dict[str, Any]]:
    calls = rig.fake.calls_to("POST", "") + rig.fake.calls_to("PATCH", "")
    return [c.body for c in calls if isinstance(c.body, dict) and c.body.get("content")]


def _pings_nobody(body: dict[str, Any]) -> bool:
    allowed = body.get("allowed_mentions")
    return (
        allowed is not None
        and not allowed.get("parse")
        and not allowed.get("roles")
        and not allowed.get("users")
    )


async def test_every_corpus_question_by_slash_command_gets_one_answer(rig: DiscordRig) -> None:
    fake = rig.fake
    user = fake.add_user("alice")
    interactions = {
        name: await fake.slash_command(user, "ask", {"question": text}) for name, text in QUESTIONS.items()
    }

    def answered(interaction: Any) -> bool:
        shown = fake.interaction_messages(interaction.id)
        return bool(fake.ephemeral_messages(interaction.id)) or any(
            "stand-in" in text or "Final answer" in text or "boxed" in text for text in shown
        )

    await fake.wait_for(lambda: all(answered(i) for i in interactions.values()), 30)
    async with asyncio.timeout(30):
        while await rig.bot.store.unfinished_turns():  # noqa: ASYNC110 - polling the database
            await asyncio.sleep(0.05)
    for name, interaction in interactions.items():
        shown = fake.interaction_messages(interaction.id)
        assert all("Something went wrong" not in text for text in shown), (name, shown)
    assert fake.ephemeral_messages(interactions["whitespace"].id) == [
        "Hi! Ask me a question and I will answer here."
    ]
    assert "the limit is 8,000" in fake.ephemeral_messages(interactions["huge"].id)[0]
    assert all(_pings_nobody(body) for body in _bodies(rig)), [
        b for b in _bodies(rig) if not _pings_nobody(b)
    ]


async def test_a_model_answer_full_of_pings_pings_nobody(rig: DiscordRig) -> None:
    fake = rig.fake
    rig.bot.standin.script_reply(INJECTED_ANSWER)
    user = fake.add_user("alice")
    asked = await fake.user_message(user, fake.channel_id, f"{fake.mention} say something")
    thread = int(asked["id"])
    await fake.wait_for(lambda: any("stand-in" in m["content"] for m in fake.messages_in(thread)), 15)
    bodies = _bodies(rig)
    assert any("@everyone" in b["content"] for b in bodies)  # shown as text...
    assert all(_pings_nobody(b) for b in bodies), bodies  # ...with pings switched off on every body
