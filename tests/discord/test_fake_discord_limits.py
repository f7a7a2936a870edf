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
