"""A workspace's native streams for ``streaming = "auto"``: a reply's first message as
``chat.startStream`` instead of ``chat.postMessage``, where posts are contended.

``chat.startStream`` and ``chat.stopStream`` are each Tier 2 (20+ per minute per workspace, per
app; /work/shared/facts/platforms.md §1), a budget of their own, apart from the channel's
``chat.postMessage``. A reply that streams takes one slot before its ``chat.startStream``; the
slot is busy while the reply lives and for :data:`GUARD` seconds after it ended, so that in any
minute at most ``per_minute`` streams were started *and* at most ``per_minute`` stopped (a stop
comes later than its start; counting starts alone could crowd two minutes' stops into one).
"""

from __future__ import annotations

import time
from collections.abc import Callable

#: Seconds a slot stays busy after its reply ended: Slack's minute, plus a second of guard.
GUARD = 61.0


class StreamSlot:
    """One reply's claim on the workspace's stream budget, busy until :meth:`release` + :data:`GUARD`."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.until = float("inf")

    def release(self) -> None:
        """The reply ended (its stream stopped, or it never started one): free after the guard.
        Idempotent: the first call counts."""
        if self.until == float("inf"):
            self.until = self._clock() + GUARD


class StreamStarts:
    """Per workspace: the slots of replies that stream natively, and workspaces that refused."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._slots: dict[str, list[StreamSlot]] = {}
        self._refused: set[str] = set()
        self._held: dict[str, float] = {}  # team -> until when no slot is given (hold)

    def take(self, team_id: str) -> StreamSlot | None:
        """A slot for one more native stream in ``team_id`` now, or None (all busy, or refused)."""
        now = self._clock()
        if team_id in self._refused or self._held.get(team_id, 0.0) > now:
            return None
        slots = [slot for slot in self._slots.get(team_id, []) if slot.until > now]
        if len(slots) >= self.per_minute:
            self._slots[team_id] = slots
            return None
        slot = StreamSlot(self._clock)
        self._slots[team_id] = [*slots, slot]
        return slot

    def refuse(self, team_id: str) -> None:
        """``chat.startStream`` was refused in ``team_id`` (no streaming there): never ask again."""
        self._refused.add(team_id)

    def hold(self, team_id: str, seconds: float) -> None:
        """``chat.startStream`` answered 429 in ``team_id``: its Tier 2 minute was spent by calls
        these slots never saw (another process, or this app's previous one: a restart within
        the minute), so no slot is given for ``seconds`` (its Retry-After)."""
        self._held[team_id] = max(self._held.get(team_id, 0.0), self._clock() + seconds)

    def busy(self, team_id: str) -> int:
        """How many slots of ``team_id`` are busy now."""
        now = self._clock()
        return sum(1 for slot in self._slots.get(team_id, []) if slot.until > now)
