"""Discord's rate limits as Discord states them: per-route buckets read from every response.

Discord limits message create, edit and delete separately, per channel, in fixed windows it
announces on every answer (``X-RateLimit-Limit``, ``-Remaining``, ``-Reset-After``), and every
bot to about 50 requests a second in all (facts/platforms.md §10). discord.py obeys the
buckets inside each call, first come first served: a reply's final text handed to it behind
ten partial edits waits for all ten. So botkit keeps one budget per route and channel
(``discord:{channel}:post|edit|delete``, :func:`route_key`), feeds each the server's numbers
(:class:`~botkit.ratefeed.RateFeed`: remaining less the calls still in flight, and when the
window resets) and hands discord.py only calls it will send at once, finals first.

A slash command's reply goes through its interaction's webhook routes instead (``PATCH
/webhooks/{app}/{token}/messages/@original``, follow-ups ``POST /webhooks/{app}/{token}`` and
``PATCH .../messages/{id}``), whose major parameter is ``webhook_id + webhook_token`` (Discord's
rate-limit docs; discord.py's ``Route.major_parameters``): one bucket per interaction, not per
channel. Their budgets are ``discord:webhook:{app}:{token digest}:post|edit|delete``
(:func:`webhook_key`): the token itself never appears in a key, a metric or botkit's log lines
(:func:`redacted`), only a digest of it (discord.py's own DEBUG log prints webhook URLs whole). Such a budget lives with its reply (a token works
for 15 minutes), so its feed is held by the reply, not here (:meth:`RouteLimits.feed`).

The numbers come from discord.py's public ``http_trace`` hook (an :class:`aiohttp.TraceConfig`
on the client), which sees every request and response, webhook ones included (discord.py sends
them on the same session); the same hook holds every request to :data:`GLOBAL_PER_SECOND` (an
:class:`aiolimiter.AsyncLimiter`), because discord.py honours the global limit only after a
global 429. Interaction endpoints (the callback, and the token's webhook routes) are exempt
from it, as on Discord ("not bound to the application's Global Rate Limit").
"""

from __future__ import annotations

import hashlib
import logging
import re
import weakref
from collections import Counter
from types import SimpleNamespace

import aiohttp
from aiolimiter import AsyncLimiter

from botkit.events import CallKind
from botkit.ratefeed import RateFeed

log = logging.getLogger("botkit_discord.ratelimits")

#: Requests per second the adapter sends at most, and how many of them may go back to back.
#: aiolimiter's bucket lets ``burst`` through at once and then ``per_second``: any one second
#: then holds at most burst + per_second = 48, under Discord's 50 (whose window is fixed).
GLOBAL_PER_SECOND = 40.0
GLOBAL_BURST = 8

_ROUTES: tuple[tuple[str, re.Pattern[str], CallKind], ...] = (
    ("POST", re.compile(r"/channels/(\d+)/messages$"), "post"),
    ("PATCH", re.compile(r"/channels/(\d+)/messages/\d+$"), "edit"),
    ("DELETE", re.compile(r"/channels/(\d+)/messages/\d+$"), "delete"),
)

#: An interaction token's webhook routes: application id (group 1), token (group 2).
_WEBHOOK_ROUTES: tuple[tuple[str, re.Pattern[str], CallKind], ...] = (
    ("POST", re.compile(r"/webhooks/(\d+)/([^/]+)$"), "post"),
    ("PATCH", re.compile(r"/webhooks/(\d+)/([^/]+)/messages/(?:@original|\d+)$"), "edit"),
    ("DELETE", re.compile(r"/webhooks/(\d+)/([^/]+)/messages/(?:@original|\d+)$"), "delete"),
)
_TOKEN_IN_PATH = re.compile(r"(/(?:webhooks|interactions)/\d+/)([^/]+)")
_WEBHOOK_KEY_PREFIX = "discord:webhook:"


def route_key(channel_id: int, kind: CallKind) -> str:
    """The budget of ``kind`` calls in one channel (or thread): Discord's bucket for them."""
    return f"discord:{channel_id}:{kind}"


def token_digest(token: str) -> str:
    """A short, stable stand-in for an interaction token (which grants its webhook to anyone
    who reads it) in keys and logs."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def webhook_key(application_id: int, token: str, kind: CallKind) -> str:
    """The budget of ``kind`` calls on one interaction token's webhook routes: Discord's bucket
    for them (major parameter: webhook id + token)."""
    return f"{_WEBHOOK_KEY_PREFIX}{application_id}:{token_digest(token)}:{kind}"


def key_of(method: str, path: str) -> str | None:
    """The route budget a request draws on, or None for one botkit does not budget."""
    for route_method, pattern, kind in _ROUTES:
        if method == route_method and (match := pattern.search(path)):
            return route_key(int(match.group(1)), kind)
    for route_method, pattern, kind in _WEBHOOK_ROUTES:
        if method == route_method and (match := pattern.search(path)):
            return webhook_key(int(match.group(1)), match.group(2), kind)
    return None


def exempt_from_global(path: str) -> bool:
    """An interaction endpoint: the callback or a route of the interaction's token (Discord does
    not count them toward the global limit)."""
    return "/interactions/" in path or _TOKEN_IN_PATH.search(path) is not None


def redacted(path: str) -> str:
    """``path`` with an interaction or webhook token replaced by its digest, fit for a log."""
    return _TOKEN_IN_PATH.sub(lambda m: f"{m.group(1)}<token {token_digest(m.group(2))}>", path)


class RouteLimits:
    """Every route budget's feed, kept current from the responses discord.py receives."""

    def __init__(
        self, global_per_second: float = GLOBAL_PER_SECOND, global_burst: int = GLOBAL_BURST
    ) -> None:
        self._feeds: dict[str, RateFeed] = {}
        # An interaction's feeds, held by its reply: gone with it (a token lives 15 minutes).
        self._passing: weakref.WeakValueDictionary[str, RateFeed] = weakref.WeakValueDictionary()
        self._in_flight: Counter[str] = Counter()
        self._global = AsyncLimiter(global_burst, global_burst / global_per_second)
        self.rate_limited: Counter[str] = Counter()  # 429s seen, by scope (user, global, shared)

    def feed(self, key: str) -> RateFeed:
        """The feed of one route budget (made on first use). A channel's is kept for good; an
        interaction token's (:func:`webhook_key`) only while its caller holds it."""
        feeds = self._passing if key.startswith(_WEBHOOK_KEY_PREFIX) else self._feeds
        feed = feeds.get(key)
        if feed is None:
            feed = RateFeed()
            feeds[key] = feed
        return feed

    def scopes(self) -> list[str]:
        """The route budgets that have a feed now (an interaction's only while it is held)."""
        return [*self._feeds, *self._passing.keys()]

    def trace_config(self) -> aiohttp.TraceConfig:
        """The hook to give discord.py (``Client(http_trace=...)``)."""
        trace = aiohttp.TraceConfig()
        trace.on_request_start.append(self._started)
        trace.on_request_end.append(self._ended)
        trace.on_request_exception.append(self._failed)
        return trace

    async def _started(
        self,
        session: aiohttp.ClientSession,
        context: SimpleNamespace,
        params: aiohttp.TraceRequestStartParams,
    ) -> None:
        path = params.url.path
        if not exempt_from_global(path):  # interaction endpoints are exempt from the global limit
            await self._global.acquire()
        key = context.botkit_key = key_of(params.method, path)
        if key is not None:
            self._in_flight[key] += 1

    async def _failed(
        self,
        session: aiohttp.ClientSession,
        context: SimpleNamespace,
        params: aiohttp.TraceRequestExceptionParams,
    ) -> None:
        key = self._done(context)
        if key is not None:
            self.feed(key).unstated()

    async def _ended(
        self, session: aiohttp.ClientSession, context: SimpleNamespace, params: aiohttp.TraceRequestEndParams
    ) -> None:
        key = self._done(context)
        headers = params.response.headers
        if params.response.status == 429:
            scope = headers.get(
                "X-RateLimit-Scope", "global" if headers.get("X-RateLimit-Global") else "user"
            )
            self.rate_limited[scope] += 1
            log.info(
                "Discord answered 429 (%s scope) to %s %s", scope, params.method, redacted(params.url.path)
            )
        if key is None:
            return
        try:
            remaining = int(headers["X-RateLimit-Remaining"])
            reset_after = float(headers["X-RateLimit-Reset-After"])
            limit = int(headers["X-RateLimit-Limit"])
        except (KeyError, ValueError):
            self.feed(key).unstated()  # no bucket numbers (a 5xx from a proxy, a fake without limits)
            return
        self.feed(key).observe(remaining - self._in_flight[key], reset_after, limit)

    def _done(self, context: SimpleNamespace) -> str | None:
        key: str | None = getattr(context, "botkit_key", None)
        if key is not None:
            self._in_flight[key] -= 1
            if self._in_flight[key] <= 0:
                del self._in_flight[key]
        return key
