"""The fake Discord answers replies and interaction responses as Discord does, driven through
discord.py's REST client: the restart pass (``DiscordAdapter.reply_messages``) relies on both.

- A reply may reference only a message in its own channel (Discord's form error
  ``REPLIES_CANNOT_REFERENCE_OTHER_CHANNEL``): a placeholder in a mention's thread cannot
  reference the mention, which lives in the parent channel.
- ``fail_if_not_exists=False`` with an unknown message sends a normal message, no reference.
- A message sent in response to an interaction carries ``interaction_metadata`` on reads.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import aiohttp
import discord
import pytest
from botkit_discord.endpoints import point_discord_py_at

from botkit.testing.fake_discord import FakeDiscord


@contextlib.asynccontextmanager
async def rest_client(fake: FakeDiscord) -> AsyncIterator[discord.Client]:
    point_discord_py_at(fake.api_url, fake.gateway_url)
    client = discord.Client(intents=discord.Intents.none())
    try:
        await client.login(fake.token)
        yield client
    finally:
        await client.close()


async def test_a_reply_in_a_thread_cannot_reference_the_message_that_started_it() -> None:
    async with FakeDiscord() as fake, rest_client(fake) as client:
        mention = await fake.user_message(fake.add_user("ada"), fake.channel_id, "a question", dispatch=False)
        thread = await fake.start_thread(int(mention["id"]), "a question")
        reference = discord.MessageReference(
            message_id=int(mention["id"]), channel_id=fake.channel_id, fail_if_not_exists=False
        )
        with pytest.raises(discord.HTTPException) as refused:
            await client.get_partial_messageable(thread).send("hi", reference=reference)
        assert (refused.value.status, refused.value.code) == (400, 50035)
        # discord.py flattens Discord's form errors (code REPLIES_CANNOT_REFERENCE_OTHER_CHANNEL) to their messages
        assert "In message_reference: Cannot reply to a message in a different channel" in refused.value.text
        # In the mention's own channel it is a reply.
        reply = await client.get_partial_messageable(fake.channel_id).send("hi", reference=reference)
        assert reply.reference is not None and reply.reference.message_id == int(mention["id"])
        assert fake.messages_in(thread) == []


async def test_an_unknown_reference_not_required_posts_a_normal_message() -> None:
    async with FakeDiscord() as fake, rest_client(fake) as client:
        channel = client.get_partial_messageable(fake.channel_id)
        missing = discord.MessageReference(message_id=fake.snowflake(), channel_id=fake.channel_id)
        with pytest.raises(discord.HTTPException) as refused:
            await channel.send("hi", reference=missing)  # fail_if_not_exists defaults to true
        assert (refused.value.status, refused.value.code) == (400, 50035)
        optional = discord.MessageReference(
            message_id=fake.snowflake(), channel_id=fake.channel_id, fail_if_not_exists=False
        )
        sent = await channel.send("hi", reference=optional)
        assert sent.reference is None and sent.type == discord.MessageType.default
        assert "message_reference" not in fake.messages[sent.id]


async def test_a_listed_interaction_response_names_its_interaction() -> None:
    async with FakeDiscord() as fake, rest_client(fake) as client:
        asker = fake.add_user("ada")
        interaction = fake._new_interaction(2, asker, fake.channel_id, {"id": "1", "name": "ask", "type": 1})
        async with aiohttp.ClientSession() as session:  # the deferral, as discord.py sends it
            url = f"{fake.api_url}/interactions/{interaction.id}/{interaction.token}/callback"
            async with session.post(url, json={"type": 5, "data": {}}) as deferred:
                assert deferred.status == 204
        (listed,) = [m async for m in client.get_partial_messageable(fake.channel_id).history(limit=10)]
        assert listed.id == interaction.original_id
        assert listed.interaction_metadata is not None
        assert listed.interaction_metadata.id == interaction.id
        assert listed.interaction_metadata.user.id == asker
