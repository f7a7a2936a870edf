"""Pointing discord.py at a Discord (the real one, or a fake in tests).

discord.py reads its REST base from the class attribute ``discord.http.Route.BASE`` and its
gateway from ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`` (since 2.0 it does not ask
``GET /gateway/bot``; reconnects go to READY's ``resume_gateway_url``). Both are
**process-wide**: every discord.py client in the process uses the last values set, so one process
serves one Discord (which is always the case outside tests).
"""

from __future__ import annotations

import discord.gateway
import discord.http
import yarl


def point_discord_py_at(api_url: str, gateway_url: str) -> None:
    """Set discord.py's REST base and gateway URL (process-wide, see the module docstring)."""
    discord.http.Route.BASE = api_url.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)
