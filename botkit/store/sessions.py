"""Database sessions with a bound on how many are open at once (see :class:`GatedSessions`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker


class GatedSessions:
    """``async_sessionmaker`` with at most ``size`` sessions open at once; the rest wait here.

    Why: every store method is one short session, but under load (hundreds of turns at once, an
    event loop that is busy streaming) sessions overlap by the hundreds. SQLAlchemy's pool then
    opens overflow connections (for SQLite a thread and a file open each, closed again at
    once) and, past its overflow, fails the caller after ``pool_timeout`` ("QueuePool limit of
    size 5 overflow 10 reached", issue 11). Waiting in an asyncio queue in front of the pool
    keeps its connections open and busy and never fails a turn for being one of many.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession], size: int) -> None:
        self._sessions = sessions
        self._gate = asyncio.Semaphore(size)

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """One transaction on a bare connection, behind the same gate: for the per-turn writes.

        Why beside the sessions: a turn's statements are plain Core INSERTs and UPDATEs, and an
        ORM session around each (identity map, flush, unit of work) cost more CPU than the SQL
        itself (benchmarks/bench_store_turn.py). Committed on leaving, rolled back on an error.
        """
        engine = self._sessions.kw["bind"]
        async with self._gate, engine.begin() as connection:
            yield connection

    @contextlib.asynccontextmanager
    async def bare(self) -> AsyncIterator[AsyncConnection]:
        """A bare connection behind the gate, no transaction begun: the caller begins and ends
        its own (a write group commits inside its one hop to SQLite's thread, group.py); one
        left open is rolled back on leaving."""
        engine = self._sessions.kw["bind"]
        async with self._gate, engine.connect() as connection:
            yield connection

    def read(self) -> contextlib.AbstractAsyncContextManager[AsyncConnection]:
        """A bare connection for reads, behind the gate: nothing to commit (rolled back on leaving)."""
        return self.bare()

    @contextlib.asynccontextmanager
    async def __call__(self) -> AsyncIterator[AsyncSession]:
        async with self._gate, self._sessions() as session:
            yield session

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncSession]:
        async with self._gate, self._sessions.begin() as session:
            yield session
