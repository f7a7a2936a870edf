"""A moving-window call budget: at most ``limit`` calls in any ``window`` seconds, finals first.

Slack's ``chat.update`` is Tier 3, a *per-minute* count ("50+ per minute" per workspace), not a
rate with a small burst. When a hundred replies finish within two seconds after a quiet minute,
the platform would take fifty edits at once, but :class:`~botkit.streaming.budget.EditBudget`'s
token bucket (40/min, burst 3) hands out about five: the rest of the finals wait tens of seconds.
:class:`WindowBudget` grants what the window has left, in one burst if need be, and never more
than ``limit`` in any ``window`` (plus ``guard`` seconds, so that a call granted earlier but
delivered later than the next one still counts in the same minute on the platform's side).

Finals first: a call of priority :data:`~botkit.streaming.retry.FIRST` (a final edit, its
buttons) takes any free slot; a partial edit (any other priority) only takes a slot that no
reply streaming here still needs for its final (:meth:`EditBudget.owe_final`), and only with a
token of the ordinary bucket (``per_second``, ``burst``), so partial text still streams at the
configured pace and never spends the minute's allowance that the finals will need.

``limits``' moving window and ``aiolimiter`` were considered: neither is a priority queue, and
neither can say how long a call would wait (:meth:`expected_wait`, which the streamer uses to
choose between an edit and a new message), so this is the deque of grant times they would keep.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import time
from collections.abc import Callable

from botkit.streaming.budget import EditBudget

#: Priority of a final (the retry policy's FIRST): ahead of every partial edit, never held back.
_FINAL = float("-inf")


class WindowBudget(EditBudget):
    """``limit`` grants in any ``window`` s; partial edits also need a bucket token and a slot
    not owed to a final (see the module docstring)."""

    def __init__(
        self,
        limit: int,
        window: float,
        per_second: float | None,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        guard: float = 1.0,
    ) -> None:
        super().__init__(per_second, burst, clock=clock)
        if limit < 1 or window <= 0 or guard < 0:
            raise ValueError("WindowBudget needs limit >= 1, window > 0 and guard >= 0")
        self.limit = limit
        self.window = window + guard
        self._granted_at: collections.deque[float] = collections.deque()

    # -- the window ------------------------------------------------------------------------------
    def _prune(self, now: float) -> None:
        while self._granted_at and self._granted_at[0] <= now - self.window:
            self._granted_at.popleft()

    def free_slots(self) -> int:
        """Calls the window would grant now, finals and partial edits alike."""
        self._prune(self._clock())
        return self.limit - len(self._granted_at)

    def _slot_wait(self, needed: int, now: float) -> float:
        """Seconds until ``needed`` slots are free at once (inf: more than the window holds)."""
        free = self.limit - len(self._granted_at)
        if needed <= free:
            return 0.0
        if needed > self.limit:
            return float("inf")
        return max(0.0, self._granted_at[needed - free - 1] + self.window - now)

    # -- EditBudget's interface ------------------------------------------------------------------
    def _free_pass(self) -> bool:
        return False  # every call counts in the window, also with no bucket for partial edits

    def _give_back(self, priority: float) -> None:
        """A grant its waiter never used (cancelled at the moment it came).

        The latest grant's time goes, not necessarily this one's (a later grant may have come
        between): the window then frees a slot later than it could, never sooner, so the
        limit still holds."""
        if self._granted_at:
            self._granted_at.pop()
        if priority != _FINAL and self.per_second is not None:
            self._tokens = min(self.burst, self._tokens + 1)
        self.granted -= 1

    def expected_wait(self, priority: float) -> float:
        """The pause, the window's next free slots for the calls ahead (and, for a partial
        edit, the slots owed to finals), and for a partial edit the bucket's token."""
        now = self._clock()
        self._refill(now)
        self._prune(now)
        paused = max(0.0, self._paused_until - now)
        ahead = sum(1 for p, _, f in self._waiters if p <= priority and not f.done())
        if priority == _FINAL:
            return max(paused, self._slot_wait(ahead + 1, now))
        wait = self._slot_wait(ahead + 1 + self.owed, now)
        if self.per_second is not None:
            wait = max(wait, (ahead + 1 - self._tokens) / self.per_second)
        return max(paused, wait)

    def crowded(self, horizon: float) -> bool:
        """A new reply could not be promised its final edit: the slots free within ``horizon``
        seconds are all owed to the finals of replies that stream here already."""
        now = self._clock()
        self._prune(now)
        soon = sum(1 for t in self._granted_at if t + self.window <= now + horizon)
        return self.owed + 1 > self.limit - len(self._granted_at) + soon

    def _dispatch(self) -> None:
        now = self._clock()
        self._refill(now)
        self._prune(now)
        while self._waiters and self._waiters[0][2].done():
            heapq.heappop(self._waiters)
        while self._waiters and now >= self._paused_until:
            priority, _, future = self._waiters[0]
            if future.done():
                heapq.heappop(self._waiters)
                continue
            free = self.limit - len(self._granted_at)
            if free < 1:
                break
            if priority != _FINAL:
                if free - self.owed < 1:
                    break
                if self.per_second is not None:
                    if self._tokens < 1:
                        break
                    self._tokens -= 1
            heapq.heappop(self._waiters)
            self._granted_at.append(now)
            self.granted += 1
            future.set_result(None)
        if self._waiters and self._timer is None:
            priority = self._waiters[0][0]
            needed = 1 if priority == _FINAL else 1 + self.owed
            if needed > self.limit:
                return  # held back for finals alone: owe_final's release dispatches again
            wait = max(0.0, self._paused_until - now, self._slot_wait(needed, now))
            if priority != _FINAL and self.per_second is not None and self._tokens < 1:
                wait = max(wait, (1 - self._tokens) / self.per_second)
            self._timer = asyncio.get_running_loop().call_later(wait + 1e-4, self._on_timer)
