"""The one retry policy for platform calls: what is retried, for how long, and how a 429 pauses.

Adapters never retry. A :class:`~botkit.events.LiveReply` method makes one attempt and reports
"slow down" as :class:`~botkit.events.RateLimited` and a 5xx, reset connection or timeout as
:class:`~botkit.events.TransientPlatformError`; anything else it raises is a refusal
(``channel_not_found``, 403) and is never retried. Here, and only here:

- a call drawing on the scope's shared :class:`~botkit.streaming.budget.EditBudget` waits for a
  token first (``priority``: when the reply was last updated; :data:`FIRST` jumps the queue);
- a :class:`RateLimited` from *any* call pauses that budget for its Retry-After, so every reply in
  the scope holds off, not only the one that was told;
- :meth:`RetryPolicy.once` is one attempt (a streaming edit: the next edit supersedes it);
- :meth:`RetryPolicy.land` retries through 429s and transient errors until a deadline
  (:data:`LAND_DEADLINE`). After a 429 the next attempt waits for the paused budget, not on a
  timer of its own; after a transient error it backs off exponentially, with jitter.

The retrying itself is tenacity's; this module only says when to stop and how long to wait.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential, wait_random
from tenacity.stop import stop_base

from botkit.events import RateLimited, TransientPlatformError
from botkit.streaming.budget import EditBudget

log = logging.getLogger("botkit.streaming.retry")

T = TypeVar("T")

FIRST = float("-inf")  # budget priority ahead of every edit in line (placeholders, final edits)
LAND_DEADLINE = 300.0  # seconds a call that must land keeps retrying
BACKOFF_INITIAL = 0.5  # seconds before the first retry after a transient error, doubling...
BACKOFF_MAX = 30.0  # ... up to this


#: The wait after a transient error (tenacity's wait objects keep no state: one for every policy,
#: since a reply builds four policies).
_BACKOFF = wait_exponential(multiplier=BACKOFF_INITIAL, max=BACKOFF_MAX) + wait_random(0, BACKOFF_INITIAL)


class _Deadline(stop_base):
    """Stop once the next attempt could not start before ``at`` (a 429's Retry-After included)."""

    def __init__(self, clock: Callable[[], float], at: float) -> None:
        self._clock = clock
        self._at = at

    def __call__(self, retry_state: RetryCallState) -> bool:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        pending = error.retry_after if isinstance(error, RateLimited) else retry_state.upcoming_sleep
        return self._clock() + pending > self._at


class RetryPolicy:
    """How the core makes every platform call of the replies in one rate-limit scope."""

    def __init__(
        self,
        budget: EditBudget,
        *,
        deadline: float = LAND_DEADLINE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.budget = budget
        self.deadline = deadline
        self._clock = clock

    async def once(self, call: Callable[[], Awaitable[T]], *, priority: float | None) -> T:
        """One attempt; ``priority`` None: the call does not draw on the budget (a notice, closing a
        stream), though its 429 still pauses it. Errors propagate."""
        if priority is not None:
            await self.budget.acquire(priority)
        try:
            return await call()
        except RateLimited as err:
            self.budget.pause(err.retry_after)
            raise

    async def land(
        self,
        call: Callable[[], Awaitable[T]],
        *,
        priority: float | None = FIRST,
        follow: Callable[[], RetryPolicy] | None = None,
    ) -> T:
        """Attempts until one succeeds, a refusal is raised, or the deadline passes (then the
        last RateLimited/TransientPlatformError is raised). ``call`` must be safe to repeat.

        ``follow``: the policy each retry draws on, asked once the pause of the one the last
        attempt drew on is over (the scope a call draws on can move while it waits: a Discord
        slash reply's final edit whose 429 outlasted its interaction token is retried as a
        channel message, on the channel's post budget).

        The first attempt is made before tenacity is set up: nearly every call lands at once, and
        tenacity's per-attempt machinery cost about 20 µs a call (two or three calls a reply).
        After a retryable failure tenacity takes over with that failure as its first attempt's
        outcome, so the stop, the waits and the log lines are what they were without the shortcut.
        """
        deadline = self._clock() + self.deadline
        try:
            return await self.once(call, priority=priority)
        except TransientPlatformError as err:
            failed: TransientPlatformError | None = err
        policy = self
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(TransientPlatformError),
            stop=_Deadline(self._clock, deadline),
            wait=lambda state: self._wait(state, drawing=priority is not None),
            before_sleep=_log_retry,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                if failed is not None:  # the attempt made above, as tenacity's first
                    error, failed = failed, None
                    raise error
                if follow is not None:
                    await asyncio.sleep(policy.budget.paused_for())  # where it goes may move meanwhile
                    policy = follow()
                return await policy.once(call, priority=priority)
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    def _wait(self, state: RetryCallState, *, drawing: bool) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RateLimited):
            # A call that draws on the budget waits in budget.acquire, which the 429 paused (and
            # which serves it ahead of the edits in line); another waits out the same pause.
            return 0.0 if drawing else self.budget.paused_for()
        return float(_BACKOFF(state))


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    level = logging.INFO if isinstance(error, RateLimited) else logging.WARNING
    log.log(level, "platform call failed (attempt %d: %s); retrying", state.attempt_number, error)
