"""A reply left on "Thinking…" by a crashed botkit is fixed when botkit starts again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from botkit_discord import DiscordAdapter
from discord_harness import discord_settings

from botkit.events import ConversationKey
from botkit.testing.fake_discord import FLAG_EPHEMERAL, FakeDiscord
from botkit.testing.testbot import TestBot

NOTE = "⚠️ _Interrupted: botkit restarted before this answer was finished. Please ask again._"


@contextlib.asynccontextmanager
async def restarted(bot_dir: Path, database: str, fake: FakeDiscord) -> AsyncIterator[TestBot]:
    """The next start over ``database``: its restart pass runs, then it serves until the block ends."""
    await asyncio.to_thread(bot_dir.mkdir)
    async with TestBot(bot_dir, database_url=database, settings={"discord": discord_settings(fake)}) as bot:
        assert bot.app is not None
        serving = asyncio.create_task(bot.app.serve(bot.app.build_adapters(["discord"])))
        try:
            yield bot
        finally:
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await serving


async def test_half_written_reply_in_a_mention_thread_is_edited_to_say_it_was_interrupted(
    tmp_path: Path,
) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    async with FakeDiscord() as fake:
        asker = fake.add_user("ada")
        mention = await fake.user_message(
            asker, fake.channel_id, f"{fake.mention} a question", dispatch=False
        )
        thread = await fake.start_thread(int(mention["id"]), "a question")
        left = fake.bot_message(thread, "The answer so far")

        # The first process: a turn started and its placeholder recorded, then it died.
        async with TestBot(tmp_path / "first", database_url=database) as crashed:
            conversation = await crashed.store.conversation_id(
                "discord", str(fake.guild_id), str(fake.channel_id), str(thread)
            )
            ids = await crashed.store.start_turn(
                conversation, user_text="a question", user_id=str(asker), delivery_id=mention["id"],
                persona_name="general", persona_hash="h", model="m",
            )  # fmt: skip
            await crashed.store.record_message_ids(ids.assistant_message_id, [left["id"]])

        # The next start: the leftover is found, stored as interrupted and edited on Discord.
        async with restarted(tmp_path / "second", database, fake) as bot:
            await fake.wait_for(lambda: fake.messages[int(left["id"])]["content"].endswith(NOTE))
            async with asyncio.timeout(30):  # settled once the message says so (botkit.repair)
                while True:
                    rows = [m for m in await bot.store.messages(conversation) if m.role == "assistant"]
                    if rows[0].status != "streaming":
                        break
                    await asyncio.sleep(0.05)
        assert [r.status for r in rows] == ["interrupted"]
        edits = fake.calls_to("PATCH", r"^/channels/\d+/messages/\d+$")
        assert [(c.path, c.status) for c in edits] == [(f"/channels/{thread}/messages/{left['id']}", 200)]
        assert edits[0].body["allowed_mentions"]["parse"] == []


@contextlib.asynccontextmanager
async def checked_adapter(tmp_path: Path, fake: FakeDiscord) -> AsyncIterator[DiscordAdapter]:
    async with TestBot(tmp_path, settings={"discord": discord_settings(fake)}) as bot:
        assert bot.app is not None
        adapter = bot.app.build_adapters(["discord"])[0]
        assert isinstance(adapter, DiscordAdapter)
        await adapter.check()
        yield adapter


async def test_a_reply_in_the_channel_is_found_when_the_thread_is_not_a_channel(tmp_path: Path) -> None:
    """A one-off slash command (thread = the interaction id) continued in the channel, an inline
    mention reply, a mention where no thread could be started: the message is in the channel."""
    async with FakeDiscord() as fake, checked_adapter(tmp_path, fake) as adapter:
        left = fake.bot_message(fake.channel_id, "x" * 2000)
        key = ConversationKey("discord", str(fake.guild_id), str(fake.channel_id), str(fake.snowflake()))
        assert await adapter.repair(key, left["id"], "y" * 1990 + "\n\n" + NOTE)
        content = fake.messages[int(left["id"])]["content"]
        assert len(content) <= 2000 and content.startswith("…y") and content.endswith(NOTE)


async def test_a_direct_message_reply_is_edited_in_the_dm(tmp_path: Path) -> None:
    async with FakeDiscord() as fake, checked_adapter(tmp_path, fake) as adapter:
        dm = fake.dm_channel(fake.add_user("ada"))
        left = fake.bot_message(dm, "_Thinking…_")
        assert await adapter.repair(ConversationKey("discord", "dm", str(dm), str(dm)), left["id"], NOTE)
        assert fake.messages[int(left["id"])]["content"] == NOTE


async def test_a_message_that_is_gone_or_not_editable_is_not_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with FakeDiscord() as fake, checked_adapter(tmp_path, fake) as adapter:
        key = ConversationKey("discord", str(fake.guild_id), str(fake.channel_id), str(fake.snowflake()))
        # deleted meanwhile
        assert not await adapter.repair(key, str(fake.snowflake()), NOTE)
        # an ephemeral interaction response: only its (lost) token could edit it
        ephemeral = fake.bot_message(
            fake.channel_id, "_Thinking…_", flags=FLAG_EPHEMERAL, webhook_id=str(fake.application_id)
        )
        with caplog.at_level(logging.INFO, logger="botkit_discord"):
            assert not await adapter.repair(key, ephemeral["id"], NOTE)
        assert "cannot be edited any more" in caplog.text
        assert fake.messages[int(ephemeral["id"])]["content"] == "_Thinking…_"
        # Discord refuses (403): not the bot's message
        other = await fake.user_message(fake.add_user("bob"), fake.channel_id, "mine", dispatch=False)
        assert not await adapter.repair(key, other["id"], NOTE)
        assert not await adapter.repair(key, "not-a-snowflake", NOTE)
        assert fake.messages[int(other["id"])]["content"] == "mine"


UNANSWERED = "⚠️ _Interrupted: botkit restarted before it could answer this. Please ask again._"


async def _accepted_then_restarted(
    tmp_path: Path,
    fake: FakeDiscord,
    thread: str,
    asker: int,
    delivery: str,
    key: tuple[str, str, str] | None = None,
) -> list[str]:
    """A first process accepted a message (its inbox row: question + queued reply, no
    placeholder) and died; the next start runs the restart pass, then serves. Returns the
    statuses of the stored replies. ``key``: the conversation (default: ``thread`` in the
    fake's channel)."""
    database = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    key = key or (str(fake.guild_id), str(fake.channel_id), thread)
    async with TestBot(tmp_path / "first", database_url=database) as crashed:
        assert await crashed.store.accept("discord", delivery, key, user_text="lost?", user_id=str(asker))
        conversation = await crashed.store.conversation_id("discord", *key)
    async with restarted(tmp_path / "second", database, fake) as bot:
        await fake.wait_for(lambda: any(m["content"] == UNANSWERED for m in fake.messages.values()))
        await fake.wait_until_connected()
        return [m.status for m in await bot.store.messages(conversation) if m.role == "assistant"]


async def test_an_accepted_mention_never_started_is_told_in_its_thread_at_restart(tmp_path: Path) -> None:
    async with FakeDiscord() as fake:
        asker = fake.add_user("ada")
        mention = await fake.user_message(asker, fake.channel_id, f"{fake.mention} lost?", dispatch=False)
        thread = await fake.start_thread(int(mention["id"]), "lost?")
        statuses = await _accepted_then_restarted(tmp_path, fake, str(thread), asker, mention["id"])
        notes = [m for m in fake.messages.values() if m["content"] == UNANSWERED]
        assert [int(m["channel_id"]) for m in notes] == [thread]  # once, in the mention's thread
        posts = fake.calls_to("POST", r"^/channels/\d+/messages$")
        assert [c.body["allowed_mentions"]["parse"] for c in posts] == [[]]  # pings no one
    assert statuses == ["interrupted"]


async def test_an_accepted_command_never_started_is_told_in_the_channel_at_restart(tmp_path: Path) -> None:
    """A slash command's thread is its interaction id, which names no channel or message: the
    note goes to the channel, and the reference Discord cannot find does not fail the post."""
    async with FakeDiscord() as fake:
        asker = fake.add_user("ada")
        interaction_id = str(fake.snowflake())
        statuses = await _accepted_then_restarted(tmp_path, fake, interaction_id, asker, interaction_id)
        notes = [m for m in fake.messages.values() if m["content"] == UNANSWERED]
        assert [int(m["channel_id"]) for m in notes] == [fake.channel_id]
        (post,) = fake.calls_to("POST", r"^/channels/\d+/messages$")
        assert post.body["message_reference"]["fail_if_not_exists"] is False
    assert statuses == ["interrupted"]


async def test_an_accepted_follow_up_never_started_is_told_in_its_thread_replying_to_it(
    tmp_path: Path,
) -> None:
    """A follow-up in a mention's thread, accepted but never begun: the note goes to the
    thread as a reply to that follow-up (the asker sees which question was lost)."""
    async with FakeDiscord() as fake:
        asker = fake.add_user("ada")
        mention = await fake.user_message(asker, fake.channel_id, f"{fake.mention} hi", dispatch=False)
        thread = await fake.start_thread(int(mention["id"]), "hi")
        follow_up = await fake.user_message(asker, thread, "and then?", dispatch=False)
        statuses = await _accepted_then_restarted(tmp_path, fake, str(thread), asker, follow_up["id"])
        (note,) = [m for m in fake.messages.values() if m["content"] == UNANSWERED]
        assert int(note["channel_id"]) == thread
        assert note["message_reference"]["message_id"] == follow_up["id"]
    assert statuses == ["interrupted"]


async def test_an_accepted_direct_message_never_started_is_told_in_the_dm_replying_to_it(
    tmp_path: Path,
) -> None:
    async with FakeDiscord() as fake:
        asker = fake.add_user("ada")
        dm = fake.dm_channel(asker)
        asked = await fake.user_message(asker, dm, "lost?", dispatch=False)
        statuses = await _accepted_then_restarted(
            tmp_path, fake, str(dm), asker, asked["id"], key=("dm", str(dm), str(dm))
        )
        (note,) = [m for m in fake.messages.values() if m["content"] == UNANSWERED]
        assert int(note["channel_id"]) == dm
        assert note["message_reference"]["message_id"] == asked["id"]
    assert statuses == ["interrupted"]


@pytest.mark.parametrize("refusal", ["503", "429"])
async def test_the_restart_note_is_retried_through_a_503_or_a_429(tmp_path: Path, refusal: str) -> None:
    """The restart's note is posted by the repair pass itself (as the turn's first message, with
    its nonce), not through the core's reply path; its POST answered once with a 503 (which
    discord.py does not retry) or a 429 without ``Via`` (which discord.py raises) is retried
    as every reply's first message is: the asker is told once, and the row is interrupted.
    Without the retry the note is never posted and the row is settled all the same."""
    async with FakeDiscord() as fake:
        asker = fake.add_user("ada")
        mention = await fake.user_message(asker, fake.channel_id, f"{fake.mention} lost?", dispatch=False)
        thread = await fake.start_thread(int(mention["id"]), "lost?")
        if refusal == "503":
            fake.fail("POST", r"^/channels/\d+/messages$", status=503, count=1)
        else:
            fake.rate_limit("POST", r"^/channels/\d+/messages$", retry_after=0.2, via=False, count=1)
        statuses = await _accepted_then_restarted(tmp_path, fake, str(thread), asker, mention["id"])
        notes = [m for m in fake.messages.values() if m["content"] == UNANSWERED]
        assert [int(m["channel_id"]) for m in notes] == [thread]  # told once
        posts = fake.calls_to("POST", r"^/channels/\d+/messages$")
        assert [c.status for c in posts] == [int(refusal), 200]
    assert statuses == ["interrupted"]
