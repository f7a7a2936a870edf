"""A ``chat.postMessage`` whose response was lost must not become two messages.

Slack's ``chat.postMessage`` takes no idempotency key. A post that Slack *applied* but whose
answer never came back (the client's timeout, a connection reset after the request was sent, a
5xx after applying) is reported as :class:`~botkit.events.TransientPlatformError` and retried by
the core (:meth:`~botkit.streaming.retry.RetryPolicy.land`): without this module the thread
would show the message twice. Discord is safe (its posts carry a nonce with ``enforce_nonce``).

:class:`LostPosts` remembers a post whose outcome is unknown; before that same post is tried
again it reads the thread back (``conversations.replies``, or ``conversations.history`` for a
top-level message) for the bot's message carrying the reply's marker metadata
(:mod:`botkit_slack.markers`) and the same text, posted at or after the first attempt (less
:data:`CLOCK_SKEW`). Found: its ts is adopted and nothing is posted. The lookup is off the normal
path (no call when the first attempt succeeds), and a lookup that fails falls back to posting
again, logged: a duplicate is better than a lost reply.

A slash command's first message is posted before the core has a turn, so it carries no marker:
a lost one is looked for in the channel as the bot's unmarked message with the same text that no
reply on the same client has landed (:data:`_LANDED`), and adopted only where exactly one matches
(another reply's lost post could show the same "Thinking…"; two: posted again, logged).

A 429 (:class:`~botkit.events.RateLimited`) and a refusal are not looked up: Slack did not apply
them.

``chat.startStream`` (:meth:`LostPosts.start`) takes no metadata: a stream is unmarked until
stopped. A lost start is looked for as the bot's unmarked message in the thread, from the first
attempt's time, whose text is that attempt's Markdown (the assumption docs/reliability.md states
for native streams: a streamed message's ``text`` reads back as its Markdown as sent; turns in one
thread run one at a time, and every other message botkit posts in a thread is marked: only a slash
command's first message, at the top of the channel, is not).
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from botkit.events import RateLimited, TransientPlatformError
from botkit.markers import ReplyMarker
from botkit_slack.markers import marker_of

log = logging.getLogger("botkit.slack")

#: Seconds before the first attempt that a found message may carry as its ts: botkit's clock and
#: Slack's may differ. The marker (turn and role) and the text are what identify the message.
CLOCK_SKEW = 60.0
#: Messages read back per lookup: a reply's thread rarely has more after the first attempt.
LOOKUP_LIMIT = 200
_READ: dict[str, Any] = {"inclusive": True, "include_all_metadata": True, "limit": LOOKUP_LIMIT}
#: (channel, ts) of the posts each client's replies landed (newest last, at most
#: ``_LANDED_MAX`` a client): an unmarked lost post never adopts another reply's message. Per
#: client (one app's workspace): a ts is unique only within a channel of one workspace.
_LANDED: weakref.WeakKeyDictionary[AsyncWebClient, dict[tuple[str, str], None]] = weakref.WeakKeyDictionary()
_LANDED_MAX = 10_000


@dataclass(frozen=True, slots=True)
class _Unknown:
    """A post whose outcome is unknown: where it went, what it said, when it was first tried."""

    thread_ts: str | None
    text: str
    marker: ReplyMarker | None  # None: unmarked (a stream's start, a slash command's first post)
    since: float
    stream: bool = False  # a chat.startStream, not a chat.postMessage


class LostPosts:
    """One reply's posts whose responses were lost: found in the thread before posting again.

    The next post of the reply after such a loss is the core's retry of it, but not always with
    the same text: a placeholder's retry shows the answer so far, or the final, if it came
    meanwhile (:meth:`~botkit.streaming.streamer.Streamer`'s post). So the lookup is for the
    lost attempts' own marker and text; a found message that shows something else than the
    retry means is brought up to date through ``update`` (``chat.update``) instead of posted.
    """

    def __init__(self, client: AsyncWebClient, channel: str, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.channel = channel
        self._clock = clock
        self._unknown: list[_Unknown] = []  # attempts since the reply's last landed post
        self.adopted: list[str] = []  # ts of messages found instead of posted (logs, tests)
        self._ours = _LANDED.setdefault(client, {})  # every reply's landed posts, on this client

    def _landed(self, ts: str) -> str:
        """Remember ``ts`` as landed by a reply on this client (an unmarked lookup skips it)."""
        self._ours[(self.channel, ts)] = None
        while len(self._ours) > _LANDED_MAX:
            del self._ours[next(iter(self._ours))]
        return ts

    async def post(
        self,
        *,
        thread_ts: str | None,
        text: str,
        marker: ReplyMarker | None,
        known: Collection[str],
        call: Callable[[], Awaitable[Any]],
        update: Callable[[str], Awaitable[None]],
    ) -> str:
        """The ts of the message showing ``text``: ``call``'s (a ``chat.postMessage``), or,
        where an earlier attempt had an unknown outcome, the message it left, brought to
        ``text`` by ``update`` if it shows another (``known``: this reply's messages, never taken
        for it). A failed ``update`` is raised (the core retries; the lookup is made again)."""
        if self._unknown:
            found = await self._find(thread_ts, known)
            if found is not None:
                ts, lost = found
                if (lost.text, lost.marker) != (text, marker):
                    await update(ts)
                self._unknown.clear()
                self.adopted.append(ts)
                log.warning("a post whose response was lost had landed (%s): adopted, not posted again", ts)
                return ts
        started = self._clock()  # before the call: Slack may apply it long before it times out
        try:
            response = await call()
        except TransientPlatformError as err:
            if not isinstance(err, RateLimited):
                since = self._unknown[0].since if self._unknown else started
                self._unknown.append(_Unknown(thread_ts, text, marker, since))  # Slack may have applied it
            raise
        self._unknown.clear()
        return self._landed(str(response["ts"]))

    async def _find(
        self, thread_ts: str | None, known: Collection[str], *, stream: bool = False
    ) -> tuple[str, _Unknown] | None:
        """The newest of the bot's messages carrying a lost attempt's marker (or none: a
        stream's, an unmarked post's) and text, with that attempt; None if absent, ambiguous (two
        unmarked posts match) or if the thread cannot be read (then the caller posts again)."""
        lost = [u for u in self._unknown if u.thread_ts == thread_ts and u.stream == stream]
        if not lost:
            return None
        messages = await self._read(thread_ts, lost[0].since)
        if messages is None:
            return None
        wanted = {(u.marker, u.text): u for u in lost}
        found = []
        for message in sorted(messages, key=lambda m: float(m.get("ts", 0)), reverse=True):
            ts, marker = str(message.get("ts", "")), marker_of(message)
            if ts in known or ts == thread_ts or (marker is None and not message.get("bot_id")):
                continue
            attempt = wanted.get((marker, message.get("text")))  # type: ignore[arg-type]
            if attempt is not None and marker is not None:
                return ts, attempt
            if attempt is not None and (stream or (self.channel, ts) not in self._ours):
                found.append((ts, attempt))
        if len(found) > 1 and not stream:
            log.warning("a lost unmarked post matches %d messages; posting it again", len(found))
            return None
        return found[0] if found else None

    async def _read(self, thread_ts: str | None, since: float) -> list[Mapping[str, Any]] | None:
        """The thread's (or, for a top-level post, the channel's) messages from ``since`` less
        :data:`CLOCK_SKEW`, with their metadata; None (logged) if Slack cannot say."""
        where: dict[str, Any] = {"channel": self.channel, "oldest": f"{max(0.0, since - CLOCK_SKEW):.6f}"}
        try:
            if thread_ts is not None:
                read = self.client.conversations_replies(ts=thread_ts, **where, **_READ)
            else:
                read = self.client.conversations_history(**where, **_READ)
            response = await read
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as err:
            log.warning("cannot look for a post whose response was lost (%s); posting it again", err)
            return None
        return list(response.get("messages") or [])

    async def start(
        self,
        *,
        thread_ts: str,
        markdown: str,
        known: Collection[str],
        call: Callable[[], Awaitable[str]],
        extend: Callable[[str, str], Awaitable[None]],
    ) -> str:
        """The ts of a native stream showing ``markdown``: ``call``'s (a ``chat.startStream``), or
        a stream an earlier attempt with an unknown outcome started, found unmarked in the thread
        with that attempt's Markdown; one that ``markdown`` extends gets the rest through
        ``extend(ts, suffix)`` (``chat.appendStream``). A found stream that ``markdown`` does not
        extend is not adopted (logged: a second stream starts)."""
        if self._unknown:
            found = await self._find(thread_ts, known, stream=True)
            if found is not None and markdown.startswith(found[1].text):
                ts, lost = found
                if markdown != lost.text:
                    await extend(ts, markdown[len(lost.text) :])
                self._unknown.clear()
                self.adopted.append(ts)
                log.warning("a chat.startStream whose response was lost had started %s: adopted", ts)
                return ts
            if found is not None:
                log.warning(
                    "a lost chat.startStream's stream %s shows other text; starting another", found[0]
                )
        started = self._clock()
        try:
            ts = await call()
        except TransientPlatformError as err:
            if not isinstance(err, RateLimited):
                since = self._unknown[0].since if self._unknown else started
                self._unknown.append(_Unknown(thread_ts, markdown, None, since, stream=True))
            raise
        self._unknown.clear()
        return self._landed(ts)
