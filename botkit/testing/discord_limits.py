"""Discord's rate limits as the fake Discord enforces them (``FakeDiscord(limits=DiscordLimits())``).

Discord limits each *route* per major parameter (a channel) in fixed windows, and every bot to
about 50 requests a second in all (facts/platforms.md §10). Message limits are unpublished; the
figure used here is the one observed since 2016 and still the practical rule: 5 calls per 5 s per
channel for each of message create, edit and delete. Typing and starting a thread have buckets
of their own too, their figures unpublished and not in the facts sheet: they are limited the same
way only with ``typing=True`` / ``threads=True`` (otherwise only the global limit counts them). A
window opens with the first accepted call after the last one ended; calls answered 429 do not
count.

An interaction's webhook routes (editing its original response, posting and editing its
follow-ups) are limited per *interaction token*: their major parameter is ``webhook_id +
webhook_token`` (Discord's rate-limit docs: "webhooks (``webhook_id`` or ``webhook_id +
webhook_token``)"; discord.py's ``Route.major_parameters`` and its webhook adapter's per
``(webhook_id, webhook_token)`` lock), so twenty slash commands in one channel have twenty
buckets, not one. "Interactions webhooks share the same rate limit properties as normal
webhooks", and like the callback they "are not bound to the application's Global Rate Limit"
(receiving-and-responding, Endpoints): they are left out of the global count here too. Their
figure is unpublished as well (Discord staff put webhook executes at 5 per 2 s,
discord-api-docs#367); the fake uses ``webhook_per_route`` per ``webhook_window`` (by default
the message routes' stricter 5 per 5 s).

Every answer on a limited route carries Discord's headers (``X-RateLimit-Limit``, ``-Remaining``,
``-Reset`` (epoch seconds), ``-Reset-After``, ``-Bucket``); a 429 also ``-Scope`` (``user`` or
``global``), ``-Global`` for the global limit, ``Retry-After`` and Discord's JSON body
(``message``, ``retry_after`` in float seconds, ``global``). ``Via: 1.1 google`` is on every 429,
as Discord's front end adds it: discord.py then waits the 429 out and retries by itself.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

TYPING_ROUTE = "POST /channels/{channel_id}/typing"
THREAD_ROUTE = "POST /channels/{channel_id}/messages/{message_id}/threads"

#: The routes limited per channel: (method, path regex with the channel id as group 1, name).
LIMITED_ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("POST", re.compile(r"^/channels/(\d+)/messages$"), "POST /channels/{channel_id}/messages"),
    ("PATCH", re.compile(r"^/channels/(\d+)/messages/\d+$"), "PATCH /channels/{channel_id}/messages/{message_id}"),
    ("DELETE", re.compile(r"^/channels/(\d+)/messages/\d+$"), "DELETE /channels/{channel_id}/messages/{message_id}"),
    ("POST", re.compile(r"^/channels/(\d+)/typing$"), TYPING_ROUTE),
    ("POST", re.compile(r"^/channels/(\d+)/messages/\d+/threads$"), THREAD_ROUTE),
)  # fmt: skip

#: An interaction's webhook routes, limited per token: (method, path regex with
#: ``{application_id}/{token}`` as group 1, name). Group 1 is the bucket's major parameter.
WEBHOOK_ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("POST", re.compile(r"^/webhooks/(\d+/[^/]+)$"), "POST /webhooks/{application_id}/{token}"),
    ("PATCH", re.compile(r"^/webhooks/(\d+/[^/]+)/messages/(?:@original|\d+)$"), "PATCH /webhooks/{application_id}/{token}/messages/{message_id}"),
    ("DELETE", re.compile(r"^/webhooks/(\d+/[^/]+)/messages/(?:@original|\d+)$"), "DELETE /webhooks/{application_id}/{token}/messages/{message_id}"),
)  # fmt: skip
WEBHOOK_ROUTE_NAMES = frozenset(name for _, _, name in WEBHOOK_ROUTES)
_INTERACTION_WEBHOOK = re.compile(r"^/webhooks/\d+/[^/]+(?:/|$)")


def exempt_from_global(path: str) -> bool:
    """An interaction endpoint (the callback, or a route of the interaction's token): Discord
    does not count it toward the global limit."""
    return path.startswith("/interactions/") or _INTERACTION_WEBHOOK.match(path) is not None


@dataclass(frozen=True)
class DiscordLimits:
    """The limits to enforce: ``per_route`` calls per ``window`` seconds per route and channel
    (message create, edit, delete; with ``typing`` / ``threads`` those routes too),
    ``webhook_per_route`` per ``webhook_window`` per interaction webhook route and token,
    ``global_per_second`` calls per second in all (interaction endpoints are exempt, as on
    Discord)."""

    per_route: int = 5
    window: float = 5.0
    global_per_second: int = 50
    via: bool = True
    typing: bool = False
    threads: bool = False
    webhook_per_route: int = 5
    webhook_window: float = 5.0

    def figures(self, route: str) -> tuple[int, float]:
        """(calls, seconds) of one window of ``route``."""
        if route in WEBHOOK_ROUTE_NAMES:
            return self.webhook_per_route, self.webhook_window
        return self.per_route, self.window

    def limits_route(self, route: str) -> bool:
        return (route != TYPING_ROUTE or self.typing) and (route != THREAD_ROUTE or self.threads)


@dataclass
class _Window:
    opened: float = 0.0
    used: int = 0


@dataclass(frozen=True)
class Verdict:
    """What the limits say about one request: pass (``status`` 200, headers to add) or 429."""

    limited: bool
    headers: dict[str, str]
    retry_after: float = 0.0
    is_global: bool = False
    route: str | None = None  # the limited route's name, None for an unlimited one


@dataclass
class RateLimiter:
    """The fake's bookkeeping of Discord's buckets (fixed windows) and the global limit."""

    limits: DiscordLimits
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    _routes: dict[tuple[str, str], _Window] = field(default_factory=dict)
    _global: _Window = field(default_factory=_Window)
    #: route name -> major parameter (a channel id; ``{application_id}/{token}`` for a webhook
    #: route) -> accepted calls' arrival times (what a test counts)
    accepted: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    rejected: list[tuple[str, str, bool]] = field(default_factory=list)  # (route, major, global)

    def route_of(self, method: str, path: str) -> tuple[str, str] | None:
        """(route name, major parameter) for a limited route, else None."""
        for route_method, pattern, name in LIMITED_ROUTES:
            if method == route_method and self.limits.limits_route(name) and (match := pattern.match(path)):
                return name, match.group(1)
        for route_method, pattern, name in WEBHOOK_ROUTES:
            if method == route_method and (match := pattern.match(path)):
                return name, match.group(1)
        return None

    def check(self, method: str, path: str) -> Verdict:
        """Count the request if it may go; else the 429 it gets (route or global)."""
        now = self.clock()
        exempt = exempt_from_global(path)
        if not exempt:
            if now - self._global.opened >= 1.0:
                self._global = _Window(now, 0)
            if self._global.used >= self.limits.global_per_second:
                retry = max(0.001, self._global.opened + 1.0 - now)
                self.rejected.append(("global", "", True))
                return Verdict(True, self._headers_429(retry, "global", None), retry, True)
        found = self.route_of(method, path)
        if found is None:
            if not exempt:
                self._global.used += 1
            return Verdict(False, {})
        name, major = found
        calls, seconds = self.limits.figures(name)
        window = self._routes.get(found)
        if window is None or now - window.opened >= seconds:
            window = self._routes[found] = _Window(now, 0)
        reset_after = max(0.0, window.opened + seconds - now)
        if window.used >= calls:
            self.rejected.append((name, major, False))
            return Verdict(True, self._headers_429(reset_after, "user", name), reset_after, False, name)
        window.used += 1
        if not exempt:
            self._global.used += 1
        self.accepted.setdefault(name, {}).setdefault(major, []).append(now)
        headers = self._bucket_headers(name, calls - window.used, reset_after)
        return Verdict(False, headers, route=name)

    def _bucket_headers(self, route: str, remaining: int, reset_after: float) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limits.figures(route)[0]),
            "X-RateLimit-Remaining": str(max(0, remaining)),
            "X-RateLimit-Reset": f"{self.wall() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": bucket_hash(route),
        }

    def _headers_429(self, retry_after: float, scope: str, route: str | None) -> dict[str, str]:
        headers = self._bucket_headers(route, 0, retry_after) if route is not None else {}
        headers.update({"Retry-After": f"{retry_after:.3f}", "X-RateLimit-Scope": scope})
        if scope == "global":
            headers["X-RateLimit-Global"] = "true"
        if self.limits.via:
            headers["Via"] = "1.1 google"
        return headers


def bucket_hash(route: str) -> str:
    """An opaque bucket id per route, the same for every channel (as Discord's)."""
    return hashlib.sha1(route.encode()).hexdigest()[:16]
