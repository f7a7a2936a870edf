"""``SlackReply``: one answer in a Slack thread, shown by ``chat.postMessage`` then ``chat.update``."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from botkit.events import LiveReply, RateLimited
from botkit_slack.mrkdwn import escape, to_mrkdwn
from botkit_slack.settings import SLACK_TEXT_LIMIT, SlackSettings

log = logging.getLogger("botkit.slack")

PLACEHOLDER_DEADLINE = 120.0  # seconds the first message keeps retrying through 429s


def retry_after(error: SlackApiError) -> float | None:
    """Seconds to wait if ``error`` is Slack's HTTP 429 (``Retry-After``), else None."""
    response = error.response
    if response.status_code != 429 and response.get("error") != "ratelimited":
        return None
    raw = response.headers.get("Retry-After") or response.headers.get("retry-after") or "1"
    try:
        return max(0.0, float(raw))
    except ValueError:
        return 1.0


def fit_text(markdown: str) -> str:
    """mrkdwn for ``markdown`` that Slack accepts (≤ 4,000 characters).

    The core splits the Markdown so that each message's *converted* length (``SlackReply.measure``)
    fits ``max_chars``; this is a safety net for anything that still would not fit: sent
    without formatting conversion, and as a last resort cut with a marker.
    """
    text = to_mrkdwn(markdown)
    if len(text) <= SLACK_TEXT_LIMIT:
        return text
    plain = escape(markdown)
    if len(plain) <= SLACK_TEXT_LIMIT:
        return plain
    log.warning("a reply chunk is %d characters after escaping; cutting it to Slack's limit", len(plain))
    marker = "\n… (cut: too long for one Slack message)"
    cut = plain[: SLACK_TEXT_LIMIT - len(marker)]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]  # never end inside an entity
    return cut + marker


class SlackReply(LiveReply):
    """Placeholder, edits and continuation messages of one reply in one channel/thread."""

    def __init__(
        self,
        client: AsyncWebClient,
        settings: SlackSettings,
        *,
        team_id: str,
        channel: str,
        thread_ts: str | None,
        on_posted: Callable[[str, str], None] | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self.client = client
        self.channel = channel
        self.thread_ts = thread_ts
        self.max_chars = settings.max_chars
        self.rate_key = f"slack:{team_id}"
        self.edit_rate = settings.edits_per_minute / 60.0
        self.edit_burst = settings.edit_burst
        self.posted: list[str] = []
        self._on_posted = on_posted
        self._sleep = sleep

    def measure(self, text: str) -> int:
        """Slack counts the converted mrkdwn, so the core splits by that length."""
        return len(to_mrkdwn(text))

    async def post_placeholder(self, text: str) -> str:
        """Post the first message; a 429 is waited out here, since nothing is visible yet."""
        deadline = time.monotonic() + PLACEHOLDER_DEADLINE
        while True:
            try:
                return await self._post(text)
            except RateLimited as err:
                if time.monotonic() + err.retry_after > deadline:
                    raise
                log.info(
                    "chat.postMessage rate limited in %s; retrying in %.1fs", self.channel, err.retry_after
                )
                await self._sleep(err.retry_after)

    async def edit(self, message_id: str, text: str) -> None:
        try:
            await self.client.chat_update(channel=self.channel, ts=message_id, text=fit_text(text))
        except SlackApiError as err:
            _raise_rate_limited(err)
            raise

    async def post_continuation(self, text: str) -> str:
        return await self._post(text)

    async def _post(self, text: str) -> str:
        try:
            response = await self.client.chat_postMessage(
                channel=self.channel, thread_ts=self.thread_ts, text=fit_text(text)
            )
        except SlackApiError as err:
            _raise_rate_limited(err)
            raise
        ts = str(response["ts"])
        self.posted.append(ts)
        if self._on_posted is not None:
            self._on_posted(self.channel, self.thread_ts or ts)
        return ts


def _raise_rate_limited(err: SlackApiError) -> None:
    """Turn Slack's 429 into the core's :class:`RateLimited`; other errors stay as they are."""
    seconds = retry_after(err)
    if seconds is not None:
        raise RateLimited(seconds) from err
