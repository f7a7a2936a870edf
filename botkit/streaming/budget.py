"""A shared call budget: one token bucket per platform rate-limit scope, stalest reply first.

Platforms limit edits per workspace or per channel, not per message. When twenty replies stream
at once in one Slack workspace, each throttling itself to "one edit a second" still adds up to
twenty a second and earns HTTP 429s. Every reply in a scope therefore draws from one bucket, and
when tokens are short the reply whose visible text is oldest goes first, so no user's message
freezes while others update.

Each kind of call has its own scope where the platform limits it separately (Slack:
``chat.update`` per workspace, ``chat.postMessage`` per channel, ``chat.delete`` per workspace;
:meth:`botkit.events.LiveReply.rate_scope`), so a placeholder post never waits behind edits. The
bucket is hand-written rather than ``aiolimiter``'s or ``limits``' because it is a priority
queue too (the final edit ahead of partial ones, stalest reply first), and it can say how long a
call would wait (:meth:`EditBudget.expected_wait`), which the streamer uses to choose the
cheapest way to show a final answer.

Where the adapter reads the platform's own numbers for a scope (Discord's ``X-RateLimit-*``
headers, through a :class:`~botkit.ratefeed.RateFeed`), the budget keeps within them
(:meth:`EditBudget.sync`): never more tokens than the server has left, nothing until its window
resets once it has none, and the window's full count back when it does. Between two answers the
bucket's own refill (``per_second``) never lifts it above what the server said was left less the
calls granted since (:attr:`EditBudget.server_left`): a bucket that refilled at its own rate would
hand a streaming edit the window's last call, the one the reserve keeps for the final, and the
final would then wait in discord.py's bucket for the window to reset. A scope's ``reserve``
keeps that many tokens back from streaming edits (once the bucket holds more than that), so a
reply's final text finds one at once instead of queueing behind partial edits.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
import weakref
from collections.abc import Callable

from botkit.events import RateScope

#: Seconds a fed budget holds its second call for the platform's first numbers (if they never come).
FIRST_NUMBERS_HOLD = 1.0

_FINAL = float("-inf")  # the priority of calls that must land (retry.FIRST): they may use the reserve


class EditBudget:
    """Token bucket with a priority queue of waiters (lower priority value = served first)."""

    def __init__(
        self,
        per_second: float | None,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        reserve: int = 0,
    ) -> None:
        self.per_second = per_second
        self.burst = max(1, burst)
        self.reserve = max(0, reserve)
        self._window_end: float | None = None  # when the server's window resets (sync)
        self._window_fresh = 0  # what it has then
        #: Calls the server has left in its window (its last numbers, less the grants since);
        #: None where no numbers are known (Slack's budgets, or an answer without them).
        self.server_left: int | None = None
        self._first_hold = 0.0  # expect_sync: until the first numbers, one call, the rest held this long
        self._synced = False
        self._hold_until = 0.0
        self._clock = clock
        self._tokens = float(self.burst)
        self._updated = clock()
        self._paused_until = 0.0
        self._waiters: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self.granted = 0
        #: Replies streaming in this scope now (:class:`~botkit.streaming.streamer.ReplyStreamer`
        #: counts itself in and out), for :meth:`crowded`.
        self.streams = 0
        #: Replies here whose final will draw on this budget (:meth:`owe_final`); a
        #: :class:`~botkit.streaming.window.WindowBudget` keeps that many slots for them.
        self.owed = 0

    async def acquire(self, priority: float) -> None:
        """Wait for one edit's worth of budget. ``priority`` is when the reply was last updated."""
        if self._free_pass():
            self.granted += 1
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._waiters, (priority, next(self._seq), future))
        self._dispatch()
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._give_back(priority)
            self._dispatch()
            raise

    def _free_pass(self) -> bool:
        """Granted without queueing: an unlimited scope that no 429 paused."""
        return self.per_second is None and self._clock() >= self._paused_until

    def _give_back(self, priority: float) -> None:
        """A grant its waiter never used (cancelled at the moment it came)."""
        self._tokens = min(self.burst, self._tokens + 1)
        if self.server_left is not None:
            self.server_left += 1
        self.granted -= 1

    def pause(self, seconds: float) -> None:
        """The platform said 429 (to any call in this scope): nobody here edits for ``seconds``."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)
        self._tokens = 0.0
        self._dispatch()

    def sync(self, remaining: int, reset_after: float, limit: int) -> None:
        """The platform's numbers (:class:`~botkit.ratefeed.RateFeed`): ``remaining`` calls are
        left until its window resets in ``reset_after`` seconds, then ``limit``. The bucket holds
        up to ``limit`` and never more than ``remaining``; with none left, nobody here calls
        until the reset (a pause without a 429)."""
        now = self._clock()
        self._synced, self._hold_until = True, 0.0
        if self._timer is not None:  # it waited for the hold: the numbers decide now
            self._timer.cancel()
            self._timer = None
        self._refill(now)
        self.burst = max(1, limit)
        self._tokens = min(self._tokens, float(max(0, remaining)))
        self.server_left = max(0, remaining)
        self._window_end, self._window_fresh = now + max(0.0, reset_after), limit
        if remaining <= 0:
            self._paused_until = max(self._paused_until, now + reset_after)
            self._tokens = 0.0
        self._dispatch()

    def expect_sync(self, hold: float) -> None:
        """The platform's numbers will come (:meth:`sync`) with the first answer: until then,
        grant one call and hold the others (for ``hold`` seconds at most, should no numbers
        come), rather than hand the platform a burst it may not take (its limit is unknown)."""
        self._first_hold = hold

    def stop_expecting(self) -> None:
        """An answer came without numbers (a platform, or a fake, that states none): stop
        holding calls for them, and stop counting against numbers that no longer hold."""
        self.server_left = None
        if not self._first_hold and not self._hold_until:
            return
        self._first_hold, self._hold_until = 0.0, 0.0
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._dispatch()

    def _need(self, priority: float) -> float:
        """Tokens the bucket must hold to grant a call of ``priority``: a final takes the last
        one; a streaming edit leaves ``reserve`` (only while the bucket can hold more)."""
        if priority == _FINAL or not self.reserve or self.burst <= self.reserve:
            return 1.0
        return 1.0 + self.reserve

    def paused_for(self) -> float:
        """Seconds until the latest 429's pause ends (0 when the scope is not paused)."""
        return max(0.0, self._paused_until - self._clock())

    def expected_wait(self, priority: float) -> float:
        """Seconds a call of ``priority`` asked for now would wait for its token: the pause, and
        the tokens every waiter served before it needs (waiters of equal priority go first)."""
        now = self._clock()
        self._refill(now)
        paused = max(0.0, self._paused_until - now)
        if self.per_second is None:
            return paused
        ahead = sum(1 for p, _, f in self._waiters if p <= priority and not f.done())
        need = ahead + self._need(priority)
        if self._tokens >= need:
            return paused
        return max(paused, self._refill_wait(need, now))

    def stream_started(self) -> Callable[[], None]:
        """Count one more live stream; the returned function counts it out (once, however often
        it is called)."""
        self.streams += 1
        return _once(self._stream_ended)

    def _stream_ended(self) -> None:
        self.streams -= 1

    def owe_final(self) -> Callable[[], None]:
        """Count one more reply whose final call will draw here (it has a message to edit); the
        returned function counts it out, once. The token bucket only counts; a window budget
        holds partial edits back so that every final owed gets a slot."""
        self.owed += 1
        return _once(self._final_paid)

    def _final_paid(self) -> None:
        self.owed -= 1
        if self._waiters and _loop_running():
            self._dispatch()  # a partial edit held back for this final may go now

    def crowded(self, horizon: float) -> bool:
        """More replies stream here than the budget can give one edit each within ``horizon``
        seconds (its burst plus ``per_second * horizon``): a new reply would show no partial
        text in that time, so a status line is the cheaper progress (never for an unlimited one)."""
        if self.per_second is None:
            return False
        return self.streams > self.burst + self.per_second * horizon

    def free_now(self) -> bool:
        """A token is there for the asking, with nobody waiting (a cheap, optional update may go)."""
        return self.expected_wait(float("inf")) == 0.0

    def _refill(self, now: float) -> None:
        if self._window_end is not None and now >= self._window_end:
            # The server's window reset: its full count is there (up to what the bucket holds).
            self._tokens = max(self._tokens, float(min(self.burst, self._window_fresh)))
            self._window_end = None
            self.server_left = self._window_fresh
        if self.per_second is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.per_second)
        if self.server_left is not None:  # the bucket's own refill stops at what the server has left
            self._tokens = min(self._tokens, float(self.server_left))
        self._updated = now

    def _refill_wait(self, need: float, now: float) -> float:
        """Seconds until the bucket holds ``need`` tokens: its own refill, unless the server
        has fewer than that left; then (or sooner) its window's reset."""
        assert self.per_second is not None
        refill = (need - self._tokens) / self.per_second
        if self.server_left is not None and self.server_left < need:
            refill = float("inf")  # no refill lifts it above the server's count: only the reset
        if self._window_end is not None:  # the server's reset may bring them sooner
            refill = min(refill, max(0.0, self._window_end - now))
        return refill if refill != float("inf") else 1.0 / self.per_second  # no reset known: look again

    def _granted_one(self) -> None:
        """A call granted: one token less, and one call less left in the server's window."""
        if self.per_second is not None:
            self._tokens -= 1
        if self.server_left is not None:
            self.server_left = max(0, self.server_left - 1)
        self.granted += 1

    def _dispatch(self) -> None:
        now = self._clock()
        self._refill(now)
        while self._waiters and self._waiters[0][2].done():
            heapq.heappop(self._waiters)
        while self._waiters and now >= max(self._paused_until, self._hold_until):
            need = self._need(self._waiters[0][0])
            if self.per_second is not None and self._tokens < need:
                break
            _, _, future = heapq.heappop(self._waiters)
            if future.done():
                continue
            self._granted_one()
            future.set_result(None)
            if self._first_hold and not self._synced:
                self._hold_until = now + self._first_hold
        if self._waiters and self._timer is None:
            wait = max(0.0, max(self._paused_until, self._hold_until) - now)
            need = self._need(self._waiters[0][0])
            if self.per_second is not None and self._tokens < need:
                wait = max(wait, self._refill_wait(need, now))
            self._timer = asyncio.get_running_loop().call_later(wait + 1e-4, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._dispatch()


def _once(release: Callable[[], None]) -> Callable[[], None]:
    """``release`` behind a guard: the first call runs it, later ones do nothing (a count taken
    once is given back once, whichever of several paths ends the reply)."""
    done = False

    def run() -> None:
        nonlocal done
        if not done:
            done = True
            release()

    return run


def _loop_running() -> bool:
    """False where a reply is counted out by the garbage collector, outside the event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class BudgetRegistry:
    """One :class:`EditBudget` per rate-limit scope, created on first use with the adapter's rate.

    A scope's budget is kept for good (a channel's, a workspace's), except a ``transient``
    scope's (one reply's, :attr:`RateScope.transient`): that is kept only while something
    else holds it (the reply's streamer, the feed it follows)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._budgets: dict[str, EditBudget] = {}
        self._passing: weakref.WeakValueDictionary[str, EditBudget] = weakref.WeakValueDictionary()
        self._clock = clock

    def scopes(self) -> list[str]:
        """The scopes that have a budget now (a transient one only while it is held)."""
        return [*self._budgets, *self._passing.keys()]

    def get(
        self,
        key: str,
        per_second: float | None,
        burst: int = 1,
        reserve: int = 0,
        window: tuple[int, float] | None = None,
        transient: bool = False,
    ) -> EditBudget:
        """The scope's budget; ``window`` = (calls, seconds): a moving window
        (:class:`~botkit.streaming.window.WindowBudget`) on top of the bucket; ``transient``:
        kept only while held elsewhere."""
        budgets = self._passing if transient else self._budgets
        budget = budgets.get(key)
        if budget is None:
            if window is not None:
                from botkit.streaming.window import WindowBudget  # it subclasses EditBudget

                budget = WindowBudget(window[0], window[1], per_second, burst, clock=self._clock)
            else:
                budget = EditBudget(per_second, burst, clock=self._clock, reserve=reserve)
            budgets[key] = budget
        return budget

    def for_scope(self, scope: RateScope) -> EditBudget:
        """The scope's budget; where the scope has a feed, the budget follows it (once)."""
        fresh = scope.key not in (self._passing if scope.transient else self._budgets)
        budget = self.get(
            scope.key, scope.per_second, scope.burst, scope.reserve, scope.window, transient=scope.transient
        )
        if fresh and scope.feed is not None:
            budget.expect_sync(FIRST_NUMBERS_HOLD)
            scope.feed.subscribe(budget.sync, budget.stop_expecting)
        return budget
