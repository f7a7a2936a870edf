"""One turn at a time per thread, in the order the questions arrived, so a quick follow-up is
asked with the earlier answer in its history.

A place in line is taken synchronously when the turn is accepted (:meth:`ThreadGates.reserve`),
and waiting for it comes later, after the placeholder and the ``queued`` row were written; those
writes finish in any order, so a plain lock (first to *wait*, first served) would let the third
question overtake the second. Each place instead waits for the one reserved before it.

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
from dataclasses import dataclass

from botkit.events import ConversationKey


@dataclass
class _Line:
    last: Place | None = None
    holders: int = 0  # places not yet released: the entry is dropped when none remain


class ThreadGates:
    def __init__(self) -> None:
        self._lines: dict[ConversationKey, _Line] = {}

    def reserve(self, key: ConversationKey) -> Place:
        """The next place in the thread's line; :meth:`Place.acquire` waits for the ones before it."""
        line = self._lines.setdefault(key, _Line())
        before = line.last if line.last is not None and not line.last._over.done() else None
        place = Place(self, key, before)
        line.last = place
        line.holders += 1
        return place

    def _left(self, key: ConversationKey) -> None:
        line = self._lines[key]
        line.holders -= 1
        if line.holders == 0:
            del self._lines[key]

    def __len__(self) -> int:
        return len(self._lines)


class Place:
    def __init__(self, gates: ThreadGates, key: ConversationKey, before: Place | None) -> None:
        self._gates, self._key, self._before = gates, key, before
        #: No turn of this thread was in line before this one (in this process) when it reserved.
        self.first_in_line = before is None
        # Resolved once this place and every place before it are done with the thread.
        self._over: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._left = False

    async def acquire(self) -> None:
        """Wait until every turn reserved before this one in the thread has finished."""
        if self._before is not None:
            await asyncio.shield(self._before._over)

    def release(self) -> None:
        """Give the thread to the next place; safe to call once whether or not it was acquired.

        A place that leaves without its turn (refused, cancelled while waiting) hands over only
        when the places before it are done, so the order holds for the ones behind it.
        """
        if self._left:
            return
        self._left = True
        self._gates._left(self._key)
        before = self._before
        self._before = None
        if before is None or before._over.done():
            self._over.set_result(None)
        else:
            before._over.add_done_callback(self._hand_over)

    def _hand_over(self, _before: asyncio.Future[None]) -> None:
        if not self._over.done():
            self._over.set_result(None)
