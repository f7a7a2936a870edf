"""A fake Discord, a whole botkit (stand-in model, SQLite, personas) and the real Discord adapter,
connected: the harness every Discord test runs in."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botkit_discord import DiscordAdapter

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
        "shutdown_grace": 5.0,
        **extra,
    }


@contextlib.asynccontextmanager
async def discord_rig(
    tmp_path: Path, *, core: dict[str, Any] | None = None, **extra: Any
) -> AsyncIterator[DiscordRig]:
    """``core``: other botkit settings sections (``{"stream": {"edit_interval": 0.05}}``)."""
    async with (
        FakeDiscord() as fake,
        TestBot(tmp_path, settings={**(core or {}), "discord": discord_settings(fake, **extra)}) as bot,
    ):
        assert bot.app is not None
        adapter = bot.app.build_adapters(["discord"])[0]
        assert isinstance(adapter, DiscordAdapter)
        await adapter.check()
        task = asyncio.create_task(adapter.run(), name="discord-adapter")
        try:
            await asyncio.wait_for(adapter.ready.wait(), 10)
            yield DiscordRig(fake, bot, adapter, task)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
