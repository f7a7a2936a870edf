"""Test harness for the Slack adapter tests: botkits connected to the fake Slack."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

from botkit_slack import SlackAdapter

from botkit.plugins import Plugin
from botkit.testing.fake_slack import FakeSlack
from botkit.testing.testbot import TestBot

# A fast default: no pacing between edits beyond what the test asks for.
FAST = {"edits_per_minute": 60_000, "edit_burst": 100}


class Running:
    """One botkit process (TestBot) with its Slack adapter running against the fake."""

    def __init__(self, bot: TestBot, adapter: SlackAdapter, task: asyncio.Task[None]) -> None:
        self.bot = bot
        self.adapter = adapter
        self.task = task


StartBot = Callable[..., "contextlib.AbstractAsyncContextManager[Running]"]


@contextlib.asynccontextmanager
async def running_bot(
    workdir: Path,
    slack: FakeSlack,
    *,
    database_url: str | None = None,
    core: dict[str, Any] | None = None,
    plugins: Sequence[Plugin[Any]] = (),
    **slack_settings: Any,
) -> AsyncIterator[Running]:
    """``core``: other botkit settings sections (``{"bot": {"admin_users": [...]}}``)."""
    settings = slack.settings(**{**FAST, **slack_settings})
    async with TestBot(
        workdir, settings={**(core or {}), "slack": settings}, database_url=database_url, plugins=plugins
    ) as bot:
        assert bot.app is not None
        adapter = bot.app.build_adapters(["slack"])[0]
        assert isinstance(adapter, SlackAdapter)
        await adapter.check()
        task = asyncio.create_task(adapter.run())
        try:
            ready = asyncio.create_task(adapter.ready.wait())
            done, _ = await asyncio.wait({ready, task}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                ready.cancel()
                task.result()  # raises what run() raised
            assert ready in done, "the Slack adapter did not get ready"
            yield Running(bot, adapter, task)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await bot.bot.drain(5)


def STANDIN_DONE(text: str) -> bool:
    """The stand-in's unscripted answer is complete."""
    return text.endswith("from the botkit vLLM stand-in.")


async def wait_idle(bot: TestBot, timeout: float = 10.0) -> None:
    """Wait until no reply is streaming (its turn is stored), e.g. before a follow-up question."""
    async with asyncio.timeout(timeout):
        while await bot.store.unfinished_turns():  # noqa: ASYNC110 - polling the database
            await asyncio.sleep(0.02)


async def wait_answered(
    slack: FakeSlack,
    event: dict[str, Any],
    timeout: float = 10.0,
    until: Callable[[str], bool] = lambda text: not text.startswith("_Thinking"),
) -> str:
    """Wait until the reply to ``event`` (in its thread, or top-level in a DM) satisfies ``until``.

    The default waits for more than the placeholder; pass ``until`` to wait for the final text.
    """
    channel = str(event["channel"])
    thread = event.get("thread_ts") or (None if channel.startswith("D") else event["ts"])

    def final() -> bool:
        replies = slack.thread_replies(channel, thread) if thread else slack.bot_messages(channel)
        return bool(replies) and until(replies[-1].text)

    await slack.wait_for(final, timeout)
    replies = slack.thread_replies(channel, thread) if thread else slack.bot_messages(channel)
    return replies[-1].text
