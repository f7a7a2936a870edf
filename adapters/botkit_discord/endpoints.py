"""Pointing discord.py at a Discord (the real one, or a fake in tests).

discord.py reads its REST base from the class attribute ``discord.http.Route.BASE`` and its
gateway from ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`` (since 2.0 it does not ask
``GET /gateway/bot``; reconnects go to READY's ``resume_gateway_url``). Both are
**process-wide**: every discord.py client in the process uses the last values set, so one process
serves one Discord (which is always the case outside tests).

discord.py also parses every gateway and REST payload with orjson whenever orjson is installed
(botkit installs it), and orjson rejects JSON that escapes a lone UTF-16 surrogate (``"\\ud800"``)
where :func:`json.loads` accepts it: one such message from a hostile or buggy client would break
the gateway connection, again after every resume. :func:`tolerate_lone_surrogates` keeps orjson
for speed and falls back to :mod:`json` for those payloads; the adapter's event model then
replaces the surrogates (see :mod:`botkit.events`).
"""

from __future__ import annotations

import json
from typing import Any

import discord.gateway
import discord.http
import discord.utils
import yarl


def point_discord_py_at(api_url: str, gateway_url: str) -> None:
    """Set discord.py's REST base and gateway URL (process-wide, see the module docstring)."""
    discord.http.Route.BASE = api_url.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)
    tolerate_lone_surrogates()


def tolerate_lone_surrogates() -> None:
    """Make discord.py's JSON parser fall back to :mod:`json` where orjson refuses a payload."""
    strict = getattr(discord.utils, "_from_json", None)
    if strict is None or getattr(strict, "botkit_tolerant", False) or strict is json.loads:
        return

    def from_json(data: Any) -> Any:
        try:
            return strict(data)
        except ValueError:  # orjson.JSONDecodeError is a ValueError; json.loads says it best
            return json.loads(data)

    from_json.botkit_tolerant = True  # type: ignore[attr-defined]
    discord.utils._from_json = from_json
