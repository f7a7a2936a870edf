"""Transports: how Slack's events reach the bolt app (Socket Mode or the HTTP Events API).

Protocol (what an event means) lives in :mod:`botkit_slack.adapter`; this module only moves
requests into ``app.async_dispatch`` and acknowledgements back, and cleans up after itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger("botkit.slack")


async def serve_socket_mode(
    app: AsyncApp, web_client: AsyncWebClient, app_token: str, on_ready: Callable[[], None]
) -> None:
    """Connect over Socket Mode (``apps.connections.open`` through ``web_client``) until cancelled."""
    handler = AsyncSocketModeHandler(app, app_token, web_client=web_client)
    client = handler.client
    try:
        await handler.connect_async()  # type: ignore[no-untyped-call]
        log.info("Slack: connected over Socket Mode")
        on_ready()
        await asyncio.Event().wait()
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]
        # close() cancels the client's tasks without waiting; wait so none outlives us.
        tasks = [
            t
            for t in (client.message_processor, client.current_session_monitor, client.message_receiver)
            if t is not None
        ]
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)


async def serve_http(app: AsyncApp, host: str, port: int, path: str, on_ready: Callable[[int], None]) -> None:
    """Serve the Events API on ``http://host:port/path`` (bolt verifies signatures) until cancelled."""

    async def events(request: web.Request) -> web.Response:
        bolt_response = await app.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(bolt_response)

    web_app = web.Application()
    web_app.router.add_post(path, events)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        addresses = runner.addresses
        bound = int(addresses[0][1]) if addresses else port
        log.info("Slack: Events API listening on http://%s:%d%s", host, bound, path)
        on_ready(bound)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
