"""👍/👎 on Discord, through discord.py and the fake Discord: the final reply's buttons, a click
as a component interaction (INTERACTION_CREATE type 3), and the vote in the database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from discord_harness import DiscordRig, discord_rig
from drills import wait_idle

from botkit.plugins import CommandContext, Plugin
from botkit.testing.fake_discord import FakeDiscord, FakeInteraction


def _ids(turn_id: int) -> tuple[str, str]:
    return f"botkit:feedback:up:{turn_id}", f"botkit:feedback:down:{turn_id}"


async def _math(rig: DiscordRig, user: int, question: str) -> tuple[FakeInteraction, int, int, str]:
    """``/math question``, answered and stored: the interaction, the reply message's id, the turn
    id and its persona version."""
    fake = rig.fake
    interaction = await fake.slash_command(user, "math", {"question": question})
    await fake.wait_for(lambda: interaction.original_id is not None, 15)
    await wait_idle(rig.bot)
    conversation = await rig.bot.store.conversation_id(
        "discord", str(fake.guild_id), str(fake.channel_id), str(interaction.id)
    )
    _, turn = await rig.bot.store.messages(conversation)
    assert turn.status == "complete" and turn.persona_name == "math" and turn.persona_hash
    assert interaction.original_id is not None
    return interaction, interaction.original_id, turn.id, turn.persona_hash


async def _vote(fake: FakeDiscord, user: int, message_id: int, custom_id: str) -> FakeInteraction:
    click = await fake.click_button(user, message_id, custom_id)
    await fake.wait_for(lambda: click.original_id is not None)
    return click


async def test_the_final_answer_carries_the_buttons_and_its_partial_edits_do_not(tmp_path: Path) -> None:
    async with discord_rig(tmp_path, core={"stream": {"edit_interval": 0.02}}) as rig:
        rig.bot.standin.tokens_per_second = 300
        user = rig.fake.add_user("alice", roles=("student",))
        interaction, message_id, turn_id, _ = await _math(rig, user, "What is 6*7?")
        token = interaction.token
        patches = [
            c.body
            for c in rig.fake.calls_to("PATCH", f"/webhooks/.*/{token}/messages/@original")
            if c.status == 200
        ]
    assert "\\boxed{42}" in rig.fake.messages[message_id]["content"]
    buttons = rig.fake.buttons(message_id)
    assert [(b["custom_id"], b["emoji"]["name"]) for b in buttons] == list(
        zip(_ids(turn_id), ("👍", "👎"), strict=True)
    )
    assert len(patches) >= 3  # placeholder, partial edits, final
    assert [bool(p.get("components")) for p in patches] == [False] * (len(patches) - 1) + [True]


async def test_a_click_stores_one_vote_a_second_changes_it_and_the_voter_alone_is_thanked(
    tmp_path: Path,
) -> None:
    async with discord_rig(tmp_path) as rig:
        fake = rig.fake
        alice, bob = fake.add_user("alice", roles=("student",)), fake.add_user("bob")
        _, message_id, turn_id, version = await _math(rig, alice, "What is 2+3?")
        up, down = _ids(turn_id)
        first = await _vote(fake, alice, message_id, up)
        after_first = await rig.bot.store.votes_on(turn_id)
        second = await _vote(fake, alice, message_id, down)
        third = await _vote(fake, bob, message_id, up)
        votes = await rig.bot.store.votes_on(turn_id)
    assert [(v.voter, v.vote, v.persona_name, v.persona_hash) for v in after_first] == [
        (str(alice), "up", "math", version)
    ]
    assert [(v.voter, v.vote) for v in votes] == [(str(alice), "down"), (str(bob), "up")]
    answers = [(c.callbacks[0]["type"], c.callbacks[0]["data"]["flags"]) for c in (first, second, third)]
    assert answers == [(4, 64)] * 3  # ephemeral: only the voter sees it
    assert [fake.ephemeral_messages(c.id) for c in (first, second, third)] == [
        ["Thanks for the feedback: your 👍 is recorded."],
        ["Thanks: your vote is changed to 👎."],
        ["Thanks for the feedback: your 👍 is recorded."],
    ]
    assert [b["custom_id"] for b in fake.buttons(message_id)] == [up, down]  # unchanged for everyone


async def test_a_click_after_a_restart_is_still_stored(tmp_path: Path) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    async with FakeDiscord() as fake:
        async with discord_rig(tmp_path / "one", fake=fake, database_url=database) as rig:
            alice = fake.add_user("alice", roles=("student",))
            _, message_id, turn_id, version = await _math(rig, alice, "What is 3+4?")
        async with discord_rig(tmp_path / "two", fake=fake, database_url=database) as rig:
            click = await _vote(fake, alice, message_id, _ids(turn_id)[0])
            (vote,) = await rig.bot.store.votes_on(turn_id)
    assert (vote.voter, vote.vote, vote.persona_hash) == (str(alice), "up", version)
    assert fake.ephemeral_messages(click.id) == ["Thanks for the feedback: your 👍 is recorded."]


async def test_no_buttons_on_an_error_or_a_command_reply(tmp_path: Path) -> None:
    pong: Plugin[Any] = Plugin("pong")

    @pong.command("ping", "Answer pong")
    async def ping(ctx: CommandContext[Any]) -> None:
        await ctx.respond("pong")

    async with discord_rig(tmp_path, plugins=[pong]) as rig:
        fake = rig.fake
        user = fake.add_user("alice", roles=("student",))
        rig.bot.standin.inject_failure("http500")
        failed = await fake.slash_command(user, "math", {"question": "What is 1+1?"})
        await fake.wait_for(lambda: "500" in "".join(fake.interaction_messages(failed.id)), 15)
        command = await fake.slash_command(user, "ping")
        await fake.wait_for(lambda: fake.interaction_messages(command.id) == ["pong"], 15)
        await wait_idle(rig.bot)
    assert all(not m.get("components") for m in fake.messages.values())
    sent = [c for c in fake.calls if isinstance(c.body, dict) and c.body.get("components")]
    assert sent == []


async def test_a_mention_reply_gets_the_buttons_and_a_click_counts(tmp_path: Path) -> None:
    async with discord_rig(tmp_path) as rig:
        fake = rig.fake
        alice = fake.add_user("alice")
        asked = await fake.user_message(alice, fake.channel_id, f"{fake.mention} What is 2+3?")
        thread_id = int(asked["id"])  # the answer goes into a thread started from the message
        await fake.wait_for(lambda: any(fake.buttons(int(m["id"])) for m in fake.messages_in(thread_id)), 15)
        await wait_idle(rig.bot)
        (reply,) = [m for m in fake.messages_in(thread_id) if m["author"]["id"] == fake.bot_user["id"]]
        custom_ids = [b["custom_id"] for b in fake.buttons(int(reply["id"]))]
        turn_id = int(custom_ids[0].rsplit(":", 1)[1])
        click = await _vote(fake, alice, int(reply["id"]), custom_ids[1])
        (vote,) = await rig.bot.store.votes_on(turn_id)
    assert custom_ids == list(_ids(turn_id))
    assert "\\boxed{5}" in reply["content"]
    assert (vote.voter, vote.vote, vote.persona_name) == (str(alice), "down", "general")
    assert fake.ephemeral_messages(click.id) == ["Thanks for the feedback: your 👎 is recorded."]
