"""A fake Discord, a whole botkit (stand-in model, SQLite, personas) and the real Discord adapter,
connected: the harness every Discord test runs in."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botkit_discord import DiscordAdapter

from botkit.plugins import Plugin
from botkit.testing.fake_discord import FakeDiscord
from botkit.testing.testbot import TestBot


@dataclass
class DiscordRig:
    fake: FakeDiscord
    bot: TestBot
    adapter: DiscordAdapter
    task: asyncio.Task[None]


def discord_settings(fake: FakeDiscord, **extra: Any) -> dict[str, Any]:
    return {
        "token": fake.token,
        "api_url": fake.api_url,
        "gateway_url": fake.gateway_url,
        "guild_ids": [fake.guild_id],
        "guild_ready_timeout": 0.1,
        "edits_per_second": 50.0,
        **extra,
    }


@contextlib.asynccontextmanager
async def discord_rig(
    tmp_path: Path,
    *,
    plugins: Sequence[Plugin[Any]] = (),
    core: dict[str, Any] | None = None,
    fake: FakeDiscord | None = None,
    database_url: str | None = None,
    **extra: Any,
) -> AsyncIterator[DiscordRig]:
    """The adapter served as ``botkit run`` serves it (``BotApp.serve``: check, run, and on
    cancellation the core's drain before the adapter stops); ``task`` is that serving task.
    ``core``: other botkit settings sections (``{"stream": {"edit_interval": 0.05}}``).
    ``fake`` and ``database_url``: a running fake Discord and a database that outlive this
    botkit (a restart: a second rig on the same two)."""
    async with contextlib.AsyncExitStack() as stack:
        if fake is None:
            fake = await stack.enter_async_context(FakeDiscord())
        settings = {**(core or {}), "discord": discord_settings(fake, **extra)}
        bot = await stack.enter_async_context(
            TestBot(tmp_path, plugins=plugins, settings=settings, database_url=database_url)
        )
        assert bot.app is not None
        adapter = bot.app.build_adapters(["discord"])[0]
        assert isinstance(adapter, DiscordAdapter)
        task = asyncio.create_task(bot.app.serve([adapter]), name="discord-serve")
        try:
            ready = asyncio.create_task(adapter.ready.wait())
            await asyncio.wait([task, ready], timeout=10, return_when=asyncio.FIRST_COMPLETED)
            ready.cancel()
            if task.done():
                task.result()  # check() failed: its error
            assert adapter.ready.is_set(), "the Discord adapter did not connect"
            yield DiscordRig(fake, bot, adapter, task)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
