"""@mentions, threads and DMs against a fake Discord, with the real discord.py and botkit core."""

from __future__ import annotations

from pathlib import Path

from discord_harness import DiscordRig, discord_rig


def bot_messages(rig: DiscordRig, channel_id: int) -> list[str]:
    me = rig.fake.bot_user["id"]
    return [m["content"] for m in rig.fake.messages_in(channel_id) if m["author"]["id"] == me]


async def test_mention_starts_a_thread_and_the_thread_keeps_the_history(rig: DiscordRig) -> None:
    fake = rig.fake
    user = fake.add_user("alice")
    asked = await fake.user_message(user, fake.channel_id, f"{fake.mention} What is 2+3?")
    thread_id = int(asked["id"])  # a thread started from a message has the message's id
    await fake.wait_for(lambda: any("The final answer is 5." in t for t in bot_messages(rig, thread_id)), 15)

    assert fake.calls_to("POST", rf"/channels/{fake.channel_id}/messages/{thread_id}/threads$")
    assert fake.channels[thread_id]["name"] == "What is 2+3?"
    assert bot_messages(rig, fake.channel_id) == []  # the answer is in the thread, not the channel
    first = rig.bot.standin.requests[-1]["messages"]
    assert "<@" not in first[-1]["content"]  # the bot's mention is stripped from the question

    await fake.user_message(user, thread_id, "And what is 5*4?")  # no mention needed in its thread
    await fake.wait_for(lambda: any("The final answer is 20." in t for t in bot_messages(rig, thread_id)), 15)
    history = rig.bot.standin.requests[-1]["messages"]
    assert len(rig.bot.standin.requests) == 2  # its own messages were ignored
    assert any(m["role"] == "assistant" and "\\boxed{5}" in m["content"] for m in history)
    assert "What is 2+3?" in str(history)


async def test_messages_not_for_the_bot_are_ignored(rig: DiscordRig) -> None:
    fake = rig.fake
    user = fake.add_user("alice")
    other_bot = fake.add_user("otherbot")
    fake.users[other_bot]["bot"] = True
    await fake.user_message(user, fake.channel_id, "just chatting, no mention")
    await fake.user_message(other_bot, fake.channel_id, f"{fake.mention} What is 1+1?")
    await fake.user_message(user, fake.channel_id, f"{fake.mention} What is 9-4?")
    await fake.wait_for(lambda: len(rig.bot.standin.requests) >= 1, 15)
    await fake.wait_for(
        lambda: any("The final answer is 5." in t for c in fake.channels for t in bot_messages(rig, c)), 15
    )
    assert len(rig.bot.standin.requests) == 1
    assert "9-4" in str(rig.bot.standin.requests[0]["messages"])


async def test_direct_messages_are_answered(rig: DiscordRig) -> None:
    fake = rig.fake
    user = fake.add_user("alice")
    dm = fake.dm_channel(user)
    await fake.user_message(user, dm, "What is 12/4?")
    await fake.wait_for(lambda: any("The final answer is 3." in t for t in bot_messages(rig, dm)), 15)


async def test_inline_mode_replies_in_the_channel(tmp_path: Path) -> None:
    async with discord_rig(tmp_path, mention_mode="inline") as rig:
        fake = rig.fake
        user = fake.add_user("alice")
        asked = await fake.user_message(user, fake.channel_id, f"{fake.mention} What is 3*3?")
        await fake.wait_for(
            lambda: any("The final answer is 9." in t for t in bot_messages(rig, fake.channel_id)), 15
        )
        assert not fake.calls_to("POST", "/threads$")
        reply = next(m for m in fake.messages_in(fake.channel_id) if m["author"]["id"] == fake.bot_user["id"])
        assert str(reply["message_reference"]["message_id"]) == asked["id"]


async def test_a_redelivered_mention_starts_no_second_thread(rig: DiscordRig) -> None:
    fake = rig.fake
    user = fake.add_user("alice")
    asked = await fake.user_message(user, fake.channel_id, f"{fake.mention} What is 2+3?")
    await fake.redeliver(asked)  # a gateway replay, or a second botkit process
    thread_id = int(asked["id"])
    await fake.wait_for(lambda: any("The final answer is 5." in t for t in bot_messages(rig, thread_id)), 15)
    await fake.redeliver(asked)  # even after the answer
    await fake.user_message(user, thread_id, "And what is 5*4?")  # handled after the replay
    await fake.wait_for(lambda: any("The final answer is 20." in t for t in bot_messages(rig, thread_id)), 15)
    assert len(fake.calls_to("POST", "/threads$")) == 1
    assert len(bot_messages(rig, thread_id)) == 2
    assert len(rig.bot.standin.requests) == 2


async def test_a_thread_that_already_exists_is_answered_in(rig: DiscordRig) -> None:
    """Discord refuses a second thread on a message (code 160004): the answer goes to the first."""
    fake = rig.fake
    user = fake.add_user("alice")
    asked = await fake.user_message(user, fake.channel_id, f"{fake.mention} What is 3+3?", dispatch=False)
    thread_id = await fake.start_thread(int(asked["id"]), "started by hand")
    await fake.redeliver(asked)
    await fake.wait_for(lambda: any("The final answer is 6." in t for t in bot_messages(rig, thread_id)), 15)
    attempts = fake.calls_to("POST", "/threads$")
    assert [(c.status, c.path) for c in attempts] == [
        (400, f"/channels/{fake.channel_id}/messages/{thread_id}/threads")
    ]
    assert bot_messages(rig, fake.channel_id) == []
    assert fake.channels[thread_id]["name"] == "started by hand"


async def test_when_no_more_threads_can_be_started_the_mention_is_answered_in_the_channel(
    rig: DiscordRig,
) -> None:
    fake = rig.fake
    fake.too_many_threads.add(fake.channel_id)
    user = fake.add_user("alice")
    asked = await fake.user_message(user, fake.channel_id, f"{fake.mention} What is 9+1?")
    await fake.wait_for(
        lambda: any("The final answer is 10." in t for t in bot_messages(rig, fake.channel_id)), 15
    )
    assert [c.status for c in fake.calls_to("POST", "/threads$")] == [400]
    reply = next(m for m in fake.messages_in(fake.channel_id) if m["author"]["id"] == fake.bot_user["id"])
    assert str(reply["message_reference"]["message_id"]) == asked["id"]


async def test_a_reply_with_ping_to_the_bot_counts_as_a_mention(rig: DiscordRig) -> None:
    fake = rig.fake
    earlier = fake.bot_message(fake.channel_id, "An earlier answer of the bot.")
    user = fake.add_user("bob")
    await fake.user_message(user, fake.channel_id, "What is 5+5?", reply_to=earlier)
    await fake.wait_for(lambda: bool(rig.bot.standin.requests), 15)
    assert "What is 5+5?" in rig.bot.standin.requests[-1]["messages"][-1]["content"]


async def test_without_thread_permission_the_mention_is_answered_in_the_channel(rig: DiscordRig) -> None:
    fake = rig.fake
    fake.no_thread_permission.add(fake.channel_id)
    user = fake.add_user("alice")
    asked = await fake.user_message(user, fake.channel_id, f"{fake.mention} What is 7+1?")
    await fake.wait_for(
        lambda: any("The final answer is 8." in t for t in bot_messages(rig, fake.channel_id)), 15
    )
    assert [c.status for c in fake.calls_to("POST", "/threads$")] == [403]
    reply = next(m for m in fake.messages_in(fake.channel_id) if m["author"]["id"] == fake.bot_user["id"])
    assert str(reply["message_reference"]["message_id"]) == asked["id"]
