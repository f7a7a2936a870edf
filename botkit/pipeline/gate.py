"""One turn at a time per thread, so a quick follow-up is asked with the earlier answer in its history.

A turn holds its thread until its final write has landed (or given up after
``database.write_retry_timeout``), not merely until its answer is shown: the next turn reads its
history from SQL, and an answer that was shown while the database was away must not be missing
from it. Holding the gate was chosen over an in-memory overlay of pending exchanges that
``history()`` would merge: the database stays the one source of history (no second copy to
order, filter and expire), and the wait costs nothing a user would notice, since the next turn
needs that same database for its own rows (its delivery claim, its question) before it could
be answered anyway.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from botkit.events import ConversationKey


@dataclass
class _Gate:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    holders: int = 0  # turns holding or awaiting the lock: the entry is dropped when none remain


class ThreadGates:
    def __init__(self) -> None:
        self._gates: dict[ConversationKey, _Gate] = {}

    def reserve(self, key: ConversationKey) -> Place:
        """A place in the thread's line; :meth:`Place.acquire` waits for the turn before it."""
        gate = self._gates.setdefault(key, _Gate())
        gate.holders += 1
        return Place(self, key, gate)

    def _leave(self, key: ConversationKey, gate: _Gate) -> None:
        gate.holders -= 1
        if gate.holders == 0:
            del self._gates[key]

    def __len__(self) -> int:
        return len(self._gates)


class Place:
    """``Lock.locked()`` is briefly False between two turns, hence the explicit holder count."""

    def __init__(self, gates: ThreadGates, key: ConversationKey, gate: _Gate) -> None:
        self._gates, self._key, self._gate = gates, key, gate
        self._acquired = False
        self._left = False

    async def acquire(self) -> None:
        await self._gate.lock.acquire()
        self._acquired = True

    def release(self) -> None:
        """Give the thread to the next turn; safe to call once whether or not it was acquired."""
        if self._left:
            return
        self._left = True
        if self._acquired:
            self._gate.lock.release()
        self._gates._leave(self._key, self._gate)
