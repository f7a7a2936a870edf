"""``SlackDirectory``: channel names, user groups and admin posts for the core's access rules.

- channel names: ``conversations.list`` (public and private channels the bot can see, every
  page), scope ``channels:read`` / ``groups:read``;
- a user group's members: ``usergroups.users.list`` by id (``S0…``); a handle (``@legal-team``)
  is first found with ``usergroups.list``; scope ``usergroups:read``;
- admin notices: ``chat.postMessage`` to a channel, or to a user id (the app's DM with them).

The core caches what it reads (:mod:`botkit.access.checker`); every call here is made once and a
Slack error or an unreachable API is a :class:`~botkit.access.DirectoryError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from botkit.access.directory import Directory, DirectoryError
from botkit_slack.events import PLATFORM
from botkit_slack.reply import fit_text

_PAGE = 200


def _is_group_id(group: str) -> bool:
    return group.startswith("S") and group[1:].isalnum() and group.upper() == group


class SlackDirectory(Directory):
    platform = PLATFORM

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def _call(self, method: str, **args: Any) -> Mapping[str, Any]:
        try:
            response = await self.client.api_call(method, http_verb="GET", params=args)
        except SlackApiError as err:
            code = err.response.get("error")
            needed = err.response.get("needed")
            fix = f" (needs the scope {needed}: add it to the app and reinstall it)" if needed else ""
            raise DirectoryError(f"Slack {method} answered {code}{fix}") from None
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            raise DirectoryError(f"Slack {method} unreachable: {type(err).__name__}") from None
        return response.data if isinstance(response.data, dict) else {}

    async def channels(self) -> Mapping[str, str]:
        names: dict[str, str] = {}
        cursor = ""
        while True:
            args: dict[str, Any] = {"types": "public_channel,private_channel", "limit": _PAGE}
            if cursor:
                args["cursor"] = cursor
            page = await self._call("conversations.list", **args)
            for channel in page.get("channels") or []:
                names[str(channel.get("name", "")).lower()] = str(channel["id"])
            cursor = str((page.get("response_metadata") or {}).get("next_cursor") or "")
            if not cursor:
                return names

    async def group_members(self, group: str) -> frozenset[str]:
        group_id = group.strip().lstrip("@")
        if not _is_group_id(group_id):
            found = await self._call("usergroups.list")
            by_handle = {
                str(g.get("handle", "")).lower(): str(g["id"]) for g in found.get("usergroups") or []
            }
            if group_id.lower() not in by_handle:
                raise DirectoryError(f"no Slack user group has the handle @{group_id}")
            group_id = by_handle[group_id.lower()]
        members = await self._call("usergroups.users.list", usergroup=group_id)
        return frozenset(str(user) for user in members.get("users") or [])

    async def post(self, channel_id: str, text: str) -> None:
        await self._call_post(channel_id, text)

    async def message_user(self, user_id: str, text: str) -> None:
        await self._call_post(user_id, text)  # a user id as channel: the app's DM with them

    async def _call_post(self, channel: str, text: str) -> None:
        try:
            await self.client.chat_postMessage(channel=channel, text=fit_text(text))
        except SlackApiError as err:
            raise DirectoryError(f"Slack chat.postMessage answered {err.response.get('error')}") from None
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            raise DirectoryError(f"Slack chat.postMessage unreachable: {type(err).__name__}") from None
