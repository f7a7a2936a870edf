"""The pipeline on Discord: an allow-list middleware on slash commands and mentions, and a
redaction filter checked against every message body the fake Discord received."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from discord_harness import discord_rig
from pipeline_plugins import ALLOW_LIST_REFUSAL, allow_list, redactor


def _contents(bodies: list[Any]) -> list[str]:
    return [str(body.get("content")) for body in bodies if isinstance(body, dict) and body.get("content")]


async def test_allow_list_answers_its_member_and_refuses_another_privately(tmp_path: Path) -> None:
    allowed: set[str] = set()  # filled once the fake has given alice her id
    async with discord_rig(tmp_path, plugins=[allow_list(allowed)]) as rig:
        fake = rig.fake
        alice, mallory = fake.add_user("alice"), fake.add_user("mallory")
        allowed.add(str(alice))
        answered = await fake.slash_command(alice, "math", {"question": "What is 6*7?"})
        await fake.wait_for(lambda: any("42" in t for t in fake.interaction_messages(answered.id)), 15)
        refused = await fake.slash_command(mallory, "math", {"question": "What is 6*7?"})
        await fake.wait_for(lambda: bool(fake.ephemeral_messages(refused.id)), 15)
        assert fake.ephemeral_messages(refused.id) == [ALLOW_LIST_REFUSAL]
        assert fake.interaction_messages(refused.id) == [ALLOW_LIST_REFUSAL]  # nothing public
        # A mention's refusal cannot be ephemeral: it goes to mallory by DM, not to the channel.
        dm = fake.dm_channel(mallory)
        await fake.user_message(mallory, fake.channel_id, f"{fake.mention} What is 1+1?")
        await fake.wait_for(lambda: any(ALLOW_LIST_REFUSAL in m["content"] for m in fake.messages_in(dm)), 15)
        assert not any(ALLOW_LIST_REFUSAL in m["content"] for m in fake.public_messages_in(fake.channel_id))
        assert len(rig.bot.standin.requests) == 1  # only alice's question reached the model


async def test_redaction_filter_applies_to_every_body_discord_received(tmp_path: Path) -> None:
    answer = "Write to carol@example.org for the form. " + " ".join(f"word{i}" for i in range(80))
    async with discord_rig(tmp_path, plugins=[redactor()]) as rig:
        fake = rig.fake
        rig.bot.standin.tokens_per_second = 400
        rig.bot.standin.script_reply(answer, reasoning="Tell dave@example.com about carol@example.org.")
        user = fake.add_user("dave")
        interaction = await fake.slash_command(user, "ask", {"question": "I am dave@example.com; forms?"})
        await fake.wait_for(lambda: any("word79" in t for t in fake.interaction_messages(interaction.id)), 15)
        bodies = [call.body for call in fake.calls_to("PATCH", "") + fake.calls_to("POST", "/messages")]
        sent = _contents(bodies)
        assert len(sent) >= 2  # the answer streamed: more than the final edit
        assert all("@example" not in text for text in sent), sent
        assert any("[email] for the form" in text for text in fake.interaction_messages(interaction.id))
        store = rig.bot.store
        rows = [m for c in range(1, 5) for m in await store.messages(c)]
    assert rows and all("@example" not in (m.content + (m.reasoning or "")) for m in rows)
