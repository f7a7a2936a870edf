"""What every local test server (the stand-in, the fake Slack, the fake Discord) shares.

An aiohttp application on a loopback port: ``start()`` binds it (port 0 picks a free one),
``stop()`` closes it, ``async with`` does both, and ``port`` tells where it listens.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Self

from aiohttp import web


class LocalServer(ABC):
    _runner: web.AppRunner | None = None
    _port: int | None = None

    @abstractmethod
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        """The bound port (after :meth:`start`)."""
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._port

    async def _listen(self, app: web.Application, host: str, port: int, **runner_options: Any) -> None:
        runner = web.AppRunner(app, access_log=None, **runner_options)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])

    async def _close(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
