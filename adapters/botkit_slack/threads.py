"""Which threads the bot is part of: remembered when it posts, else asked of Slack once."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from botkit_slack.events import BotIdentity, mention_pattern

log = logging.getLogger("botkit.slack")


class ThreadTracker:
    """An LRU of (channel, thread_ts) the bot took part in, backed by ``conversations.replies``.

    Another process (or this one before a restart) may have answered in a thread, so a miss is
    checked against Slack: the thread counts if the bot posted in it or was mentioned in it.
    Negative answers are cached for ``negative_ttl`` seconds so a busy thread costs one call.
    """

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        capacity: int = 10_000,
        negative_ttl: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.capacity = capacity
        self.negative_ttl = negative_ttl
        self._clock = clock
        self._known: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._not_ours: dict[tuple[str, str], float] = {}

    def remember(self, channel: str, thread_ts: str) -> None:
        key = (channel, thread_ts)
        self._not_ours.pop(key, None)
        self._known[key] = None
        self._known.move_to_end(key)
        while len(self._known) > self.capacity:
            self._known.popitem(last=False)

    async def is_part_of(self, channel: str, thread_ts: str, me: BotIdentity) -> bool:
        key = (channel, thread_ts)
        if key in self._known:
            self._known.move_to_end(key)
            return True
        until = self._not_ours.get(key)
        if until is not None and until > self._clock():
            return False
        try:
            response = await self.client.conversations_replies(channel=channel, ts=thread_ts, limit=200)
        except SlackApiError as err:
            log.warning("cannot read thread %s/%s: %s", channel, thread_ts, err.response.get("error"))
            return False
        mention = mention_pattern(me.user_id)
        for message in response.get("messages") or []:
            if (
                message.get("user") == me.user_id
                or message.get("bot_id") == me.bot_id
                or mention.search(str(message.get("text") or ""))
            ):
                self.remember(channel, thread_ts)
                return True
        if len(self._not_ours) > self.capacity:
            now = self._clock()
            self._not_ours = {k: v for k, v in self._not_ours.items() if v > now}
        self._not_ours[key] = self._clock() + self.negative_ttl
        return False
