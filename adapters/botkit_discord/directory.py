"""``DiscordDirectory``: channel names and admin posts for the core's access rules.

Roles need no lookup on Discord: they come with every interaction and message (see
:func:`~botkit_discord.identity.member_roles`). Channel names come from the gateway's cache
while the bot is connected (discord.py keeps it current on CHANNEL_UPDATE), and before that (at
start-up, when the names are resolved) from the REST API: ``GET /users/@me/guilds`` (or
``discord.guild_ids``), then ``GET /guilds/{id}/channels``. Admin notices are a channel message,
or a DM (``POST /users/@me/channels``, then a message in it).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import aiohttp
import discord

from botkit.access.directory import Directory, DirectoryError

RestClient = Callable[[], contextlib.AbstractAsyncContextManager[discord.Client]]


class DiscordDirectory(Directory):
    platform = "discord"

    def __init__(
        self, live: Callable[[], discord.Client | None], rest: RestClient, guild_ids: list[int]
    ) -> None:
        self._live = live  # the connected client, once ready (None before)
        self._rest = rest
        self.guild_ids = guild_ids

    @contextlib.asynccontextmanager
    async def _client(self) -> AsyncIterator[discord.Client]:
        live = self._live()
        if live is not None and live.is_ready():
            yield live
            return
        try:
            async with self._rest() as client:
                yield client
        except (discord.HTTPException, aiohttp.ClientError, OSError) as err:
            raise DirectoryError(f"Discord API: {type(err).__name__}: {err}") from None

    async def channels(self) -> Mapping[str, str]:
        live = self._live()
        if live is not None and live.is_ready():
            return {
                channel.name.lower(): str(channel.id)
                for channel in live.get_all_channels()
                if isinstance(channel, discord.abc.GuildChannel)
            }
        names: dict[str, str] = {}
        async with self._client() as client:
            try:
                guilds: list[Any] = (
                    [discord.Object(id=g) for g in self.guild_ids]
                    if self.guild_ids
                    else [g async for g in client.fetch_guilds()]
                )
                for guild in guilds:
                    for channel in await client.http.get_all_guild_channels(guild.id):
                        names[str(channel["name"]).lower()] = str(channel["id"])
            except discord.HTTPException as err:
                raise DirectoryError(f"Discord answered HTTP {err.status} listing channels") from None
        return names

    async def post(self, channel_id: str, text: str) -> None:
        async with self._client() as client:
            try:
                await client.get_partial_messageable(int(channel_id)).send(text[:2000])
            except (discord.HTTPException, ValueError) as err:
                raise DirectoryError(f"Discord refused the post in {channel_id}: {err}") from None

    async def message_user(self, user_id: str, text: str) -> None:
        async with self._client() as client:
            try:
                dm = await client.http.start_private_message(int(user_id))
                await client.get_partial_messageable(int(dm["id"])).send(text[:2000])
            except (discord.HTTPException, ValueError) as err:
                raise DirectoryError(f"Discord refused the DM to {user_id}: {err}") from None
