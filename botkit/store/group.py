"""Group commit: the turn writes of many turns, one transaction at a time, each for all that waited.

Why: a transaction on its own costs more CPU than the statement in it (the gate, a pooled
connection checked out and in, SQLAlchemy's begin / commit / close each a greenlet switch, the
commit a round trip to aiosqlite's thread: 200-350 µs against about 60-140 µs for a one-round-
trip UPDATE, ``benchmarks/bench_store_turn.py``), and a turn made four of them. Here one group
is in flight at a time: the writes of one tick start it, and every write that arrives while it
runs waits for it and goes in the next one, so under load (100 turns adopted, marked streaming
and finished within the same second) the writes share transactions and commits, as the
checkpoints of all streaming turns already do (:mod:`botkit.pipeline.checkpoints`), and an idle
store adds no wait. (Grouping only the writes of one tick was measured first: turns through the
pipeline reach a step in different ticks, and a turn still made 3.9-4.0 commits.) On SQLite the
group's statements then go to the driver's thread together with their commit, in one hop
(:func:`botkit.store.prepared.commit_together`). SQLite takes one writer at a time anyway;
on PostgreSQL a group's statements are a few local round trips.
The intakes (:meth:`~botkit.store.ConversationStore.accept`) go in the groups too: as
transactions of their own, a burst of 128 mentions queued for SQLite's write lock one about
every 4 ms, and every turn's model call waited behind them (docs/benchmarks.md section 4,
"Bursts of mentions").

What a caller sees is what it saw with a transaction of its own: its write has committed when
its call returns. A database error (unavailable, locked) fails every write of the group, and
each caller handles it as before (the final write retries: :class:`~botkit.pipeline.recorder.
FinalWrites`); a write that finds no row is not an error here (it returns None for its caller to
judge) and does not touch the others. A caller cancelled before the group starts is left out; one
cancelled while the group runs still has its write committed with the group (as a cancellation
after the commit did before).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from botkit.store.prepared import commit_together
from botkit.store.sessions import GatedSessions

T = TypeVar("T")
Write = Callable[[AsyncConnection], Awaitable[Any]]


class WriteGroup:
    """Runs :meth:`write` calls together, one transaction of ``sessions`` at a time."""

    def __init__(self, sessions: GatedSessions) -> None:
        self._sessions = sessions
        self._pending: list[tuple[Write, asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.transactions = 0  # groups committed or failed (for tests and benchmarks)

    async def write(self, statements: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run ``statements`` on the group's connection; returns its result once committed."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append((statements, future))
        if self._flusher is None:
            # A task starts on the next tick: every write of this tick is in its first group.
            self._flusher = asyncio.create_task(self._run(), name="botkit-write-group")
        return await future

    async def _run(self) -> None:
        try:
            while self._pending:  # the writes that came while the last group ran: the next group
                batch, self._pending = self._pending, []
                await self._commit(batch)
        finally:
            self._flusher = None
            waiting, self._pending = self._pending, []
            for _, future in waiting:  # cancelled (shutdown) before their group started
                future.cancel()

    async def _commit(self, batch: list[tuple[Write, asyncio.Future[Any]]]) -> None:
        batch = [(statements, future) for statements, future in batch if not future.cancelled()]
        if not batch:
            return
        self.transactions += 1
        try:
            async with self._sessions.bare() as connection:
                # On SQLite every write of the group and its commit in one hop to the driver's
                # thread (prepared.py); elsewhere one SQLAlchemy transaction.
                results = await commit_together(connection, [statements for statements, _ in batch])
        except BaseException as err:
            for _, future in batch:
                if future.done():
                    continue
                if isinstance(err, asyncio.CancelledError):
                    future.cancel()
                else:
                    future.set_exception(err)
            if not isinstance(err, Exception):
                raise
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
