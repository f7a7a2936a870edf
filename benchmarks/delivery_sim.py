"""A Slack workspace with per-method rate limits, and replies that show what a user would see.

Used by ``bench_edit_budget.py`` (the "delivery" section): many questions in one workspace across
several channels, each answered through a real :class:`~botkit.streaming.streamer.ReplyStreamer`,
on a virtual clock. The platform plays Slack's limits as :mod:`platforms.md <shared/facts>` gives
them: ``chat.update`` and ``chat.delete`` Tier 3 (``update_limit`` calls in any 60 s per
workspace), ``chat.postMessage`` about 1/s per channel with short bursts tolerated (a token bucket
of ``post_rate``/s holding ``post_capacity``), ``assistant.threads.setStatus`` "Special" (played as
``status_limit`` in any 60 s per workspace: the ⚠ third-party 600/min). A call over a limit is a :class:`RateLimited` with
Slack's whole-second Retry-After, and is counted as a 429.

The reply records every version of every message with the time it became visible, so the
benchmark measures what a user sees: when the placeholder appeared, when the first answer text
did, how many partial edits showed answer text, when the final text was visible, and whether a
replaced placeholder was left behind.
"""

from __future__ import annotations

import asyncio
import collections
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from botkit.events import CallKind, LiveReply, ProgressMode, RateLimited, RateScope

Clock = Callable[[], float]


class SlidingWindow:
    """At most ``limit`` calls in any ``window`` seconds (a Slack tier, per workspace)."""

    def __init__(self, limit: int, window: float, clock: Clock) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self.accepted: collections.deque[float] = collections.deque()

    def check(self) -> None:
        now = self.clock()
        while self.accepted and self.accepted[0] <= now - self.window:
            self.accepted.popleft()
        if len(self.accepted) >= self.limit:
            raise RateLimited(float(math.ceil(self.accepted[0] + self.window - now)))
        self.accepted.append(now)


class Bucket:
    """``rate`` calls per second, ``capacity`` back to back (``chat.postMessage`` per channel)."""

    def __init__(self, rate: float, capacity: float, clock: Clock) -> None:
        self.rate, self.capacity, self.clock = rate, capacity, clock
        self.tokens, self.updated = capacity, clock()

    def check(self) -> None:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            raise RateLimited(float(math.ceil((1 - self.tokens) / self.rate)))
        self.tokens -= 1


@dataclass
class SlackLimits:
    update_limit: int = 50  # chat.update, per workspace per 60 s (Tier 3)
    delete_limit: int = 50  # chat.delete, per workspace per 60 s (Tier 3)
    post_rate: float = 1.0  # chat.postMessage per channel per second ...
    post_capacity: float = 4.0  # ... with this many back to back
    status_limit: int = 600  # assistant.threads.setStatus, per workspace per 60 s


class Workspace:
    """One Slack workspace: counts every call and every 429, per method."""

    def __init__(self, limits: SlackLimits, latency: float, clock: Clock) -> None:
        self.limits, self.latency, self.clock = limits, latency, clock
        self.update = SlidingWindow(limits.update_limit, 60.0, clock)
        self.delete = SlidingWindow(limits.delete_limit, 60.0, clock)
        self.status = SlidingWindow(limits.status_limit, 60.0, clock)
        self.posts: dict[str, Bucket] = {}
        self.calls: collections.Counter[str] = collections.Counter()
        self.limited: collections.Counter[str] = collections.Counter()

    async def call(self, method: str, channel: str) -> None:
        """One Web API call: checked against its limit on arrival, answered after ``latency``."""
        self.calls[method] += 1
        limit: SlidingWindow | Bucket | None = {
            "chat.update": self.update,
            "chat.delete": self.delete,
            "assistant.threads.setStatus": self.status,
        }.get(method)
        if limit is None:
            limit = self.posts.setdefault(
                channel, Bucket(self.limits.post_rate, self.limits.post_capacity, self.clock)
            )
        try:
            limit.check()
        except RateLimited:
            self.limited[method] += 1
            await asyncio.sleep(self.latency)
            raise
        await asyncio.sleep(self.latency)


@dataclass
class Shown:
    """One message as the user saw it: every version with when it became visible."""

    versions: list[tuple[float, str]] = field(default_factory=list)
    deleted_at: float | None = None


@dataclass(frozen=True)
class Scopes:
    """What botkit's Slack adapter declares (``[slack]`` settings), as per-second rates."""

    edit_rate: float
    edit_burst: int
    post_rate: float
    post_burst: int
    delete_rate: float
    per_method: bool  # False: every call on the edit scope (the code before issue 11)
    replace_final: bool
    status_rate: float = 5.0
    status_burst: int = 100
    progress: ProgressMode = "message"  # "message": no status lines (the reply cannot show one)
    edit_window: tuple[int, float] | None = None  # chat.update's moving window ([slack] edit_window)


class WorkspaceReply(LiveReply):
    """A reply in one channel's thread, made of Web API calls to :class:`Workspace`."""

    def __init__(self, workspace: Workspace, channel: str, scopes: Scopes, max_chars: int = 3900) -> None:
        self.workspace, self.channel, self.scopes = workspace, channel, scopes
        self.max_chars = max_chars
        self.rate_key = "slack:T0"
        self.edit_rate, self.edit_burst = scopes.edit_rate, scopes.edit_burst
        self.can_replace = scopes.replace_final
        self.can_show_status = scopes.per_method and scopes.progress != "message"
        self.progress = scopes.progress
        self.posts_with_buttons = True
        self.status_at: float | None = None  # when its status line appeared (None: never)
        self.messages: dict[str, Shown] = {}
        self.order: list[str] = []
        self.done_at: float | None = None  # the model's last token
        self.asked_at = 0.0

    def rate_scope(self, kind: CallKind) -> RateScope:
        if not self.scopes.per_method or kind == "edit":
            return RateScope(self.rate_key, self.edit_rate, self.edit_burst, window=self.scopes.edit_window)
        if kind == "status":
            return RateScope("slack:T0:status", self.scopes.status_rate, self.scopes.status_burst)
        if kind == "post":
            return RateScope(f"slack:T0:post:{self.channel}", self.scopes.post_rate, self.scopes.post_burst)
        return RateScope("slack:T0:delete", self.scopes.delete_rate, 1)

    def _now(self) -> float:
        return self.workspace.clock()

    async def _post(self, text: str) -> str:
        await self.workspace.call("chat.postMessage", self.channel)
        message_id = f"{self.channel}.{len(self.order)}.{id(self)}"
        self.messages[message_id] = Shown([(self._now(), text)])
        self.order.append(message_id)
        return message_id

    async def post_placeholder(self, text: str) -> str:
        return await self._post(text)

    async def post_continuation(self, text: str) -> str:
        return await self._post(text)

    async def post_with_feedback(self, text: str, turn_id: int) -> str:
        return await self._post(text)  # chat.postMessage with the buttons' blocks: one call

    async def show_status(self, text: str) -> bool:
        await self.workspace.call("assistant.threads.setStatus", self.channel)
        self.status_at = self._now()
        return True

    async def edit(self, message_id: str, text: str) -> None:
        await self.workspace.call("chat.update", self.channel)
        self.messages[message_id].versions.append((self._now(), text))

    async def delete(self, message_id: str) -> None:
        await self.workspace.call("chat.delete", self.channel)
        self.messages[message_id].deleted_at = self._now()

    # -- what the user saw -------------------------------------------------------------------
    def visible(self) -> list[str]:
        """The texts of the messages left in the thread."""
        return [self.messages[m].versions[-1][1] for m in self.order if self.messages[m].deleted_at is None]

    def first_visible(self) -> float:
        """When the reply first showed anything: its status line or its first message."""
        times = [shown.versions[0][0] for shown in self.messages.values()]
        return min([*times, *([self.status_at] if self.status_at is not None else [])])

    def final_visible(self, final: str) -> float | None:
        """When a message showing the final text (its first chunk) first appeared."""
        times = [t for shown in self.messages.values() for t, text in shown.versions if text == final]
        return min(times) if times else None

    def first_answer_text(self, is_answer: Callable[[str], bool]) -> float | None:
        times = [t for shown in self.messages.values() for t, text in shown.versions if is_answer(text)]
        return min(times) if times else None

    def partial_edits(self, final: str, is_answer: Callable[[str], bool]) -> int:
        """Versions that showed answer text before the final one."""
        return sum(
            1
            for shown in self.messages.values()
            for _, text in shown.versions
            if text != final and is_answer(text)
        )
