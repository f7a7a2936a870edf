"""``TestBot``: a whole botkit (stand-in model, SQLite, personas, plugins) in one ``async with``.

Plugin authors test their plugins the way botkit tests its own: real stand-in server over HTTP,
real database through the real migrations, real router and engine; only the chat platform is
replaced by :class:`RecordingReply`, which records what a user would see::

    async with TestBot(tmp_path, plugins=[my_plugin]) as bot:
        reply = await bot.ask(":shout hello")         # or bot.ask("hi", command="shout", ...)
        assert reply.text == "HELLO"
        assert bot.standin.requests[-1]["messages"][-1]["role"] == "user"
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from botkit.app import BotApp
from botkit.config import Settings, load_settings
from botkit.events import IncomingMessage
from botkit.llm.standin import Standin
from botkit.pipeline.router import Router
from botkit.plugins.api import Plugin
from botkit.store import ConversationStore
from botkit.testing.recording import RecordingReply


def _started(standin: Standin) -> bool:
    try:
        standin.port  # noqa: B018 - raises until the server is bound
    except RuntimeError:
        return False
    return True


class TestBot:
    __test__ = False  # not a pytest test class

    def __init__(
        self,
        workdir: Path,
        *,
        plugins: Sequence[Plugin[Any]] = (),
        settings: Mapping[str, Any] | None = None,
        standin: Standin | None = None,
        database_url: str | None = None,
    ) -> None:
        self.workdir = workdir
        self.extra_plugins = list(plugins)
        self.overrides = dict(settings or {})
        self.standin = standin or Standin()
        self._own_standin = standin is None or not _started(standin)
        self.database_url = database_url or f"sqlite+aiosqlite:///{workdir / 'botkit.db'}"
        self.app: BotApp | None = None
        self.announcements: list[str] = []
        self._ids = itertools.count(1)

    async def __aenter__(self) -> TestBot:
        if self._own_standin:
            await self.standin.start()
        overrides: dict[str, Any] = {
            "llm": {"backend": "external", "base_url": self.standin.base_url},
            "database": {"url": self.database_url},
            "stream": {"edit_interval": 0.0},
            "personas": {"watch": False},
        }
        for section, values in self.overrides.items():
            if isinstance(values, Mapping) and isinstance(overrides.get(section), dict):
                overrides[section] = {**overrides[section], **values}
            else:
                overrides[section] = values
        self.settings: Settings = load_settings(None, **overrides)
        self.app = BotApp(self.settings, extra_plugins=self.extra_plugins, announce=self.announcements.append)
        try:
            await self.app.__aenter__()
        except BaseException:
            if self._own_standin:
                await self.standin.stop()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self.app is not None:
                await self.app.__aexit__(exc_type, exc, tb)
        finally:
            if self._own_standin:
                await self.standin.stop()

    @property
    def bot(self) -> Router:
        assert self.app is not None and self.app.bot is not None
        return self.app.bot

    @property
    def store(self) -> ConversationStore:
        return self.bot.store

    def message(
        self,
        text: str,
        *,
        command: str | None = None,
        args: Mapping[str, str] | None = None,
        thread: str = "thread-1",
        channel: str = "channel-1",
        user: str = "user-1",
        roles: Sequence[str] = (),
        platform: str = "test",
        workspace: str = "workspace-1",
        delivery_id: str | None = None,
    ) -> IncomingMessage:
        return IncomingMessage(
            platform=platform,
            workspace=workspace,
            channel=channel,
            thread=thread,
            user=user,
            text=text,
            delivery_id=delivery_id or f"delivery-{next(self._ids)}",
            command=command,
            args=dict(args or {}),
            user_roles=frozenset(roles),
        )

    async def ask(self, text: str, *, reply: RecordingReply | None = None, **fields: Any) -> RecordingReply:
        """Send one message and wait until its reply is final; returns what the user saw.

        ``fields`` are those of :meth:`message`. For a duplicate delivery nothing is posted and
        the returned reply has no messages.
        """
        reply = reply or RecordingReply()
        submission = await self.bot.submit(self.message(text, **fields), reply)
        await submission.wait()
        return reply
