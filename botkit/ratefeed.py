"""What a platform says of one of its rate limits, passed from an adapter to the core's budget.

Discord answers every call with its bucket's state (``X-RateLimit-Remaining`` and
``-Reset-After``); a budget that only counts its own grants drifts from that (other processes on
the same token, a window that opened earlier than the budget thinks, calls still in flight). An
adapter that reads those numbers hands them to a :class:`RateFeed` named in its
:class:`~botkit.events.RateScope`; the budget of that scope subscribes and keeps itself within
them (:meth:`botkit.streaming.budget.EditBudget.sync`). Numbers only: nothing here knows a
platform, and the core never imports one.
"""

from __future__ import annotations

from collections.abc import Callable

#: remaining calls in the current window, seconds until it resets, calls per window
Listener = Callable[[int, float, int], None]


class RateFeed:
    """One rate-limit scope's latest server-side state, fanned out to whoever listens."""

    __slots__ = ("__weakref__", "_listeners", "_unstated", "last")  # weakref: a reply's own feeds

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._unstated: list[Callable[[], None]] = []
        self.last: tuple[int, float, int] | None = None

    def subscribe(self, listener: Listener, unstated: Callable[[], None] | None = None) -> None:
        """Call ``listener(remaining, reset_after, limit)`` on every observation (and now, with
        the last one, if there was one), and ``unstated()`` when an answer carried no numbers."""
        self._listeners.append(listener)
        if unstated is not None:
            self._unstated.append(unstated)
        if self.last is not None:
            listener(*self.last)

    def observe(self, remaining: int, reset_after: float, limit: int) -> None:
        """The platform said: ``remaining`` more calls until the window resets in ``reset_after``
        seconds, then ``limit`` again (``remaining`` already less the calls still in flight)."""
        self.last = (remaining, reset_after, limit)
        for listener in self._listeners:
            listener(remaining, reset_after, limit)

    def unstated(self) -> None:
        """An answer (or a failed call) came without the numbers: nobody should wait for them."""
        for listener in self._unstated:
            listener()
