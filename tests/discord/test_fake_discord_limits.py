"""The fake Discord's real limits (``FakeDiscord(limits=DiscordLimits())``), driven by discord.py's
own HTTP client so that the headers and 429s are read as discord.py reads them."""

from __future__ import annotations

import aiohttp

from botkit.testing.discord_limits import DiscordLimits
from botkit.testing.fake_discord import FakeDiscord


async def _post(
    session: aiohttp.ClientSession, fake: FakeDiscord, path: str, body: object
) -> aiohttp.ClientResponse:
    headers = {"Authorization": f"Bot {fake.token}"}
    async with session.post(fake.api_url + path, json=body, headers=headers) as response:
        await response.read()
        return response


async def test_a_channel_route_takes_five_per_window_then_answers_discords_429() -> None:
    async with (
        FakeDiscord(limits=DiscordLimits(per_route=5, window=30.0)) as fake,
        aiohttp.ClientSession() as session,
    ):
        path = f"/channels/{fake.channel_id}/messages"
        answers = [await _post(session, fake, path, {"content": f"m{i}"}) for i in range(6)]
        assert [a.status for a in answers] == [200] * 5 + [429]
        assert [a.headers["X-RateLimit-Remaining"] for a in answers[:5]] == ["4", "3", "2", "1", "0"]
        assert {a.headers["X-RateLimit-Bucket"] for a in answers} == {
            answers[0].headers["X-RateLimit-Bucket"]
        }
        limited = answers[5]
        assert limited.headers["X-RateLimit-Scope"] == "user" and "Via" in limited.headers
        assert 0 < float(limited.headers["X-RateLimit-Reset-After"]) <= 30.0
        # another channel's bucket is its own; the typing route is not limited unless asked
        other = fake.add_channel(fake.guild_id, "other")
        assert (await _post(session, fake, f"/channels/{other}/messages", {"content": "x"})).status == 200
        assert (await _post(session, fake, f"/channels/{fake.channel_id}/typing", None)).status == 204
        assert [c for c, _ in fake.typing] == [fake.channel_id]
        assert [m["content"] for m in fake.messages_in(fake.channel_id)] == [f"m{i}" for i in range(5)]


async def test_typing_has_a_bucket_of_its_own_when_asked() -> None:
    async with FakeDiscord(limits=DiscordLimits(typing=True)) as fake, aiohttp.ClientSession() as session:
        path = f"/channels/{fake.channel_id}/typing"
        answers = [(await _post(session, fake, path, None)).status for _ in range(6)]
        assert answers == [204] * 5 + [429]
        assert (
            await _post(session, fake, f"/channels/{fake.channel_id}/messages", {"content": "x"})
        ).status == 200


async def test_the_global_limit_answers_a_global_429_with_its_body() -> None:
    limits = DiscordLimits(per_route=1000, global_per_second=3)
    async with FakeDiscord(limits=limits) as fake, aiohttp.ClientSession() as session:
        path = f"/channels/{fake.channel_id}/messages"
        answers = [await _post(session, fake, path, {"content": "x"}) for _ in range(4)]
        assert [a.status for a in answers] == [200, 200, 200, 429]
        assert answers[3].headers["X-RateLimit-Global"] == "true"
        assert answers[3].headers["X-RateLimit-Scope"] == "global"
        async with session.post(
            fake.api_url + path, json={"content": "x"}, headers={"Authorization": f"Bot {fake.token}"}
        ) as response:
            body = await response.json()
        assert body["global"] is True and 0 < body["retry_after"] <= 1.0


async def test_every_version_of_a_message_is_kept_and_limits_are_off_by_default() -> None:
    async with FakeDiscord() as fake, aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bot {fake.token}"}
        path = f"/channels/{fake.channel_id}/messages"
        for _ in range(8):  # no limits: all accepted, no headers
            assert (await _post(session, fake, path, {"content": "x"})).status == 200
        async with session.post(fake.api_url + path, json={"content": "v1"}, headers=headers) as response:
            message = await response.json()
            assert "X-RateLimit-Remaining" not in response.headers
        url = f"{fake.api_url}{path}/{message['id']}"
        for text in ("v2", "v3"):
            async with session.patch(url, json={"content": text}, headers=headers) as response:
                assert response.status == 200
        async with session.patch(
            url, json={"embeds": [{"description": "v4"}], "content": ""}, headers=headers
        ):
            pass
        assert fake.versions_of(int(message["id"])) == ["v1", "v2", "v3", "v4"]
        async with session.delete(url, headers=headers) as response:
            assert response.status == 204
        assert int(message["id"]) in fake.deleted_messages


async def _send(
    session: aiohttp.ClientSession, fake: FakeDiscord, method: str, path: str, body: object
) -> aiohttp.ClientResponse:
    async with session.request(method, fake.api_url + path, json=body) as response:
        await response.read()
        return response


async def test_interaction_webhook_routes_have_a_bucket_per_token_outside_the_global_limit() -> None:
    """As on Discord: an interaction's webhook routes are limited by their major parameter
    (application id + interaction token), each method on its own, and not counted toward the
    global limit (here 3 a second, which twelve webhook calls would otherwise exceed)."""
    limits = DiscordLimits(webhook_per_route=5, webhook_window=30.0, global_per_second=3)
    async with FakeDiscord(limits=limits) as fake, aiohttp.ClientSession() as session:
        synced = f"/applications/{fake.application_id}/guilds/{fake.guild_id}/commands"
        headers = {"Authorization": f"Bot {fake.token}"}
        command = [{"name": "ask", "description": "ask", "type": 1}]
        async with session.put(fake.api_url + synced, json=command, headers=headers) as response:
            assert response.status == 200
        user = fake.add_user("alice")
        first, second = [await fake.slash_command(user, "ask", {"question": "q"}) for _ in range(2)]
        for interaction in (first, second):
            callback = f"/interactions/{interaction.id}/{interaction.token}/callback"
            assert (await _send(session, fake, "POST", callback, {"type": 5})).status == 204
        original = f"/webhooks/{fake.application_id}/{first.token}/messages/@original"
        edits = [await _send(session, fake, "PATCH", original, {"content": f"e{i}"}) for i in range(6)]
        assert [e.status for e in edits] == [200] * 5 + [429]
        assert [e.headers["X-RateLimit-Remaining"] for e in edits[:5]] == ["4", "3", "2", "1", "0"]
        assert {e.headers["X-RateLimit-Limit"] for e in edits} == {"5"}
        limited = edits[5]
        assert limited.headers["X-RateLimit-Scope"] == "user" and "X-RateLimit-Global" not in limited.headers
        assert 0 < float(limited.headers["X-RateLimit-Reset-After"]) <= 30.0
        # the other interaction's token is its own bucket; a follow-up is another route
        other = f"/webhooks/{fake.application_id}/{second.token}/messages/@original"
        assert (await _send(session, fake, "PATCH", other, {"content": "x"})).status == 200
        followup = f"/webhooks/{fake.application_id}/{first.token}?wait=true"
        assert (await _send(session, fake, "POST", followup, {"content": "f"})).status == 200
        assert fake.interaction_messages(first.id) == ["e4", "f"]
        # none of those counted toward the global limit: a bot-token call still goes through
        path = f"/channels/{fake.channel_id}/messages"
        assert (await _post(session, fake, path, {"content": "x"})).status == 200
        assert fake.limiter is not None
        route = "PATCH /webhooks/{application_id}/{token}/messages/{message_id}"
        assert fake.limiter.rejected == [(route, f"{fake.application_id}/{first.token}", False)]
