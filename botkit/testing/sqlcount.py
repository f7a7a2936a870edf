"""Count what the store asks of SQLite, at the driver: thread round trips, statements, commits.

aiosqlite runs every call on a connection in that connection's own thread: each one is a queue
put, a thread wake-up and a ``call_soon_threadsafe`` back to the event loop (a "round trip").
SQLAlchemy's aiosqlite adapter makes several per statement (a cursor, the execute, the fetch,
the cursor's close), so counting only statements (SQLAlchemy's ``before_cursor_execute``)
misses most of the cost, and misses statements run on the driver connection directly. Here
every call that goes through ``aiosqlite.Connection._execute`` (the one door into the thread)
is counted, by what it runs:

* ``round_trips``: every call;
* ``statements``: calls that run SQL (``execute``, ``executemany``, ``execute_fetchall``...);
  an executemany counts once; ``BEGIN`` issued implicitly by sqlite3 is not a call and not
  counted;
* ``commits`` and ``rollbacks`` (a group's, run inside its hop by ``commit_in_thread`` /
  ``rollback_in_thread``, counted too, without a round trip of their own);

A group of writes run in one hop (:func:`botkit.store.prepared.commit_together`) is one round
trip, its commit included; its statements, run inside that hop by ``statement_in_thread``, are counted as statements
(and by kind) all the same, so ``statements`` means the same SQL on either path.

:attr:`SqlCalls.sent` keeps each statement's SQL and parameters (an executemany's as a list
of rows), for tests that check what was written together.

For tests and benchmarks only: it wraps the method while inside :func:`counting_sqlite` and
changes nothing about what runs.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiosqlite.core

from botkit.store import prepared

_SQL_CALLS = frozenset({"execute", "executemany", "_execute_fetchall", "_execute_insert", "executescript"})


def _kind(function: Any) -> str:
    target = function.func if isinstance(function, functools.partial) else function
    return getattr(target, "__name__", type(target).__name__)


@dataclass
class SqlCalls:
    """What :func:`counting_sqlite` saw: ``counts`` by kind, ``sent`` as (sql, parameters, many)."""

    counts: Counter[str] = field(default_factory=Counter)
    sent: list[tuple[str, Any, bool]] = field(default_factory=list)

    def __getitem__(self, kind: str) -> int:
        return self.counts[kind]


@contextlib.contextmanager
def counting_sqlite() -> Iterator[SqlCalls]:
    """Every aiosqlite connection's thread calls while inside (see the module doc)."""
    calls = SqlCalls()
    counts = calls.counts
    lock = threading.Lock()  # grouped statements are counted in aiosqlite's threads
    original = aiosqlite.core.Connection._execute
    in_thread = prepared.statement_in_thread

    def _statement(sql: str, parameters: Any, many: bool) -> None:
        counts["statements"] += 1
        counts[sql.split(None, 1)[0].upper() if sql else "?"] += 1
        calls.sent.append((sql, parameters, many))

    async def _execute(self: aiosqlite.core.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        name = _kind(fn)
        with lock:
            counts["round_trips"] += 1
            if name in _SQL_CALLS:
                sql = args[0] if args and isinstance(args[0], str) else ""
                _statement(sql, args[1] if len(args) > 1 else None, name == "executemany")
            elif name in ("commit", "rollback"):
                counts[f"{name}s"] += 1
        return await original(self, fn, *args, **kwargs)  # type: ignore[no-untyped-call]

    def _grouped(sqlite: Any, sql: str, parameters: list[Any]) -> list[Any]:
        with lock:
            _statement(sql, parameters, False)
        return in_thread(sqlite, sql, parameters)

    def _ending(name: str, end: Callable[[Any], None]) -> Callable[[Any], None]:
        def counted(sqlite: Any) -> None:
            with lock:
                counts[f"{name}s"] += 1
            end(sqlite)

        return counted

    ends = prepared.commit_in_thread, prepared.rollback_in_thread
    aiosqlite.core.Connection._execute = _execute  # type: ignore[method-assign]
    prepared.statement_in_thread = _grouped
    prepared.commit_in_thread = _ending("commit", ends[0])  # type: ignore[assignment]
    prepared.rollback_in_thread = _ending("rollback", ends[1])  # type: ignore[assignment]
    try:
        yield calls
    finally:
        aiosqlite.core.Connection._execute = original  # type: ignore[method-assign]
        prepared.statement_in_thread = in_thread
        prepared.commit_in_thread, prepared.rollback_in_thread = ends
