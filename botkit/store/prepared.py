"""The store's fixed per-turn statements, compiled once and run in one driver round trip on SQLite.

Why: a turn's writes were 8 statements and 4 commits, but 39 round trips to aiosqlite's
connection thread (``botkit.testing.sqlcount``): SQLAlchemy's aiosqlite adapter makes a cursor,
executes, fetches and closes the cursor, each a hop to the thread and back
(``call_soon_threadsafe``), and builds an execution context and a result around each
statement. That was the largest part of botkit's CPU per reply at 8 tokens per chunk (issue 11:
aiosqlite and SQLAlchemy about half of the samples). A :class:`Prepared` statement is the same
Core statement, compiled by SQLAlchemy for the connection's dialect once, with SQLAlchemy's own
bind and result processors for its types; on SQLite it runs on the pooled connection's aiosqlite
connection with ``execute_fetchall`` (cursor, execute, fetch and close in ONE hop), inside the
caller's SQLAlchemy transaction (SQLAlchemy still checks the connection out, commits and rolls
back). On any other dialect (PostgreSQL through asyncpg: no thread), and with SQL logging on
(``database.echo``), it is an ordinary ``connection.execute``.

A group of writes (:mod:`botkit.store.group`) goes further with :func:`run_together`: every
write's statements and the group's commit run in ONE hop to the connection's thread
(:func:`commit_together`), however many writes and statements the group holds (a turn's accept is four statements, its adopt two).

Errors from the driver are wrapped as SQLAlchemy wraps them (``sqlalchemy.exc.OperationalError``
for "database is locked", ...), so :func:`botkit.store.store.is_unavailable` and the final
write's retries see what they saw before.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import aiosqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Select
from sqlalchemy.sql.dml import UpdateBase

Processor = Callable[[Any], Any] | None
Write = Callable[[AsyncConnection], Awaitable[Any]]


@dataclass(frozen=True)
class _Compiled:
    sql: str
    compiled: Any  # sqlalchemy.sql.compiler.SQLCompiler (construct_params maps names to values)
    order: tuple[str, ...]  # positional bind names, in the order of the ``?`` in ``sql``
    binds: tuple[Processor, ...]
    results: tuple[Processor, ...]


def _on_driver(connection: AsyncConnection) -> bool:
    """SQLite, and SQL logging off: with ``database.echo`` on, SQLAlchemy's own path runs, so
    that every statement is logged as before."""
    return connection.dialect.name == "sqlite" and not connection.sync_engine.echo


def _positional(compiled: _Compiled, params: Mapping[str, Any]) -> list[Any]:
    """The ``?`` values for ``params``: SQLAlchemy's name-to-value mapping (literals in the
    statement included), through the types' bind processors."""
    values = compiled.compiled.construct_params(params)
    return [
        value if process is None else process(value)
        for value, process in zip((values[name] for name in compiled.order), compiled.binds, strict=True)
    ]


_DRIVER = "botkit.aiosqlite"  # the key of the aiosqlite connection in the pooled connection's info


async def _aiosqlite(connection: AsyncConnection) -> aiosqlite.Connection:
    """The aiosqlite connection under a pooled SQLAlchemy one.

    Kept in the connection's ``info`` (SQLAlchemy: it lives as long as the DBAPI connection, and
    is cleared when an invalidated one is replaced): asking the pool for it every time is a
    greenlet switch, about a fifth of a statement's own CPU on this path.
    """
    info = connection.info
    driver = info.get(_DRIVER)
    if driver is None:
        driver = info[_DRIVER] = (await connection.get_raw_connection()).driver_connection
    if not isinstance(driver, aiosqlite.Connection):
        raise TypeError(f"expected an aiosqlite connection, not {type(driver).__name__}")
    return driver


class InThread:
    """A transaction's connection as the writes of a group see it inside aiosqlite's thread.

    Only what the group's writes use: the dialect (to pick a statement) and the engine (for
    ``echo``); a :class:`Prepared` statement given one runs on ``sqlite`` at once, in this
    thread, so a write's coroutine never suspends (:func:`run_together` drives it with one
    ``send``). Anything else a write might try on it (``execute``...) fails loudly here instead
    of blocking a thread that has no event loop.
    """

    __slots__ = ("dialect", "sqlite", "sync_engine")

    def __init__(self, connection: AsyncConnection, sqlite: sqlite3.Connection) -> None:
        self.dialect = connection.dialect
        self.sync_engine = connection.sync_engine
        self.sqlite = sqlite


def statement_in_thread(sqlite: sqlite3.Connection, sql: str, parameters: list[Any]) -> list[Any]:
    """One statement of a group, in aiosqlite's thread (``botkit.testing.sqlcount`` counts
    these as statements, as it counts the ones that make their own hop)."""
    return sqlite.execute(sql, parameters).fetchall()


def _drive(write: Coroutine[Any, Any, Any]) -> Any:
    """Run a write's coroutine to its end in one step: on :class:`InThread` it has nothing to wait for."""
    try:
        write.send(None)
    except StopIteration as done:
        return done.value
    write.close()
    raise RuntimeError("a grouped write waited for something other than its Prepared statements")


def _writes_here(driver: aiosqlite.Connection, here: InThread, writes: Sequence[Any]) -> list[Any]:
    """In aiosqlite's thread: every write of the group, in order, on its sqlite3 connection."""
    here.sqlite = driver._conn  # its own connection, in its own thread
    return [_drive(write(cast(AsyncConnection, here))) for write in writes]


def commit_in_thread(sqlite: sqlite3.Connection) -> None:
    """A group's commit, in aiosqlite's thread (``botkit.testing.sqlcount`` counts it as a commit)."""
    sqlite.commit()


def rollback_in_thread(sqlite: sqlite3.Connection) -> None:
    """A failed group's rollback, in aiosqlite's thread (counted as a rollback)."""
    sqlite.rollback()


def _transaction_here(driver: aiosqlite.Connection, here: InThread, writes: Sequence[Any]) -> list[Any]:
    """In aiosqlite's thread: the group's writes and their commit, or a rollback of all of them.

    The same sqlite3 calls SQLAlchemy's transaction made on this connection (``commit`` /
    ``rollback``; sqlite3 itself began the transaction before the first write), in the same
    order, only without a hop between them. A failed commit ("database is locked") is wrapped
    as SQLAlchemy wraps it (``OperationalError``, what the final write's retries look for).
    """
    try:
        results = _writes_here(driver, here, writes)
        try:
            commit_in_thread(here.sqlite)
        except sqlite3.Error as err:
            raise DBAPIError.instance(None, None, err, sqlite3.Error) from err
    except BaseException:
        if here.sqlite.in_transaction:
            with contextlib.suppress(sqlite3.Error):  # the write's own error is the one to see
                rollback_in_thread(here.sqlite)
        raise
    return results


async def commit_together(connection: AsyncConnection, writes: Sequence[Write]) -> list[Any]:
    """Every write of a group in ONE transaction on ``connection`` (no transaction begun yet);
    their results, once committed.

    Why: :func:`run_together` took a group's statements to aiosqlite's thread in one hop, but
    SQLAlchemy's commit was a second hop (a queue put, the thread's wake-up, its
    ``call_soon_threadsafe``, the GIL handed over twice) for one ``sqlite3`` call. On SQLite
    the commit (or, on any error, the rollback) now runs in the statements' hop; SQLAlchemy
    never began a transaction on ``connection`` (nothing ran through it), so it has none to end,
    and the pool's reset (``botkit.store.database._reset_sqlite``) sees none open. Elsewhere
    (asyncpg, SQL logging on, an aiosqlite without ``_execute``) SQLAlchemy's transaction
    around :func:`run_together`, as before.
    """
    door = await _door(connection)
    if door is None:
        async with connection.begin():
            return await run_together(connection, writes)
    driver = await _aiosqlite(connection)
    here = InThread(connection, cast(sqlite3.Connection, None))
    return cast(list[Any], await door(_transaction_here, driver, here, writes))


async def _door(connection: AsyncConnection) -> Callable[..., Awaitable[Any]] | None:
    """aiosqlite's ``_execute`` of ``connection`` where a group may use it, else None."""
    if not _on_driver(connection):
        return None
    return cast(Callable[..., Awaitable[Any]] | None, getattr(await _aiosqlite(connection), "_execute", None))


async def run_together(connection: AsyncConnection, writes: Sequence[Write]) -> list[Any]:
    """Every write of a group on ``connection`` in order; their results.

    Why: each statement on its own is a hop to aiosqlite's thread and back (a queue put, the
    thread's wake-up, its ``call_soon_threadsafe``, the GIL handed over twice), and those hops,
    not the SQL, were most of what a reply's writes cost (docs/benchmarks.md section 4,
    "Thread hops per reply"). On SQLite the whole group goes over in one hop (aiosqlite's
    ``_execute``, the one door into its thread: no public method takes a callable); the writes'
    Python runs there too, the GIL released inside each statement as before. Elsewhere (asyncpg,
    SQL logging on, an aiosqlite without that door) each write runs as before, awaited here.
    A driver error is wrapped as on the one-hop-a-statement path and fails the group, as before.
    """
    door = await _door(connection)
    if door is None:
        return [await write(connection) for write in writes]
    driver = await _aiosqlite(connection)
    here = InThread(connection, cast(sqlite3.Connection, None))
    return cast(list[Any], await door(_writes_here, driver, here, writes))


class Prepared:
    """One fixed statement, compiled once per dialect and set of parameter names (the names
    decide an INSERT's VALUES and an UPDATE's SET columns, as SQLAlchemy decides them from the
    first parameter set of an execution)."""

    def __init__(self, statement: UpdateBase | Select[*tuple[Any, ...]]) -> None:
        self.statement = statement
        self._compiled: dict[tuple[str, tuple[str, ...]], _Compiled] = {}

    def _compile(self, dialect: Dialect, params: Mapping[str, Any]) -> _Compiled:
        key = (dialect.name, tuple(sorted(params)))
        found = self._compiled.get(key)
        if found is not None:
            return found
        compiled: Any = self.statement.compile(dialect=dialect, column_keys=list(key[1]))
        if compiled.insert_prefetch or compiled.update_prefetch:
            # A column default SQLAlchemy would evaluate in Python per execution: not done here,
            # so every caller passes such columns (created_at, updated_at) itself.
            missing = [c.key for c in (*compiled.insert_prefetch, *compiled.update_prefetch)]
            raise ValueError(f"pass {missing} explicitly to this prepared statement")
        order = tuple(compiled.positiontup or ())
        binds = tuple(
            compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in order
        )
        results = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in self.statement.exported_columns
        )
        found = _Compiled(compiled.string, compiled, order, binds, results)
        self._compiled[key] = found
        return found

    async def rows(self, connection: AsyncConnection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Run once with ``params``; the RETURNING rows (empty without RETURNING or when no row
        matched)."""
        if isinstance(connection, InThread):
            return self._here(connection, params)
        if not _on_driver(connection):
            result = await connection.execute(self.statement, dict(params))
            return [tuple(row) for row in result.all()] if result.returns_rows else []
        compiled = self._compile(connection.dialect, params)
        positional = _positional(compiled, params)
        driver = await _aiosqlite(connection)
        try:
            fetched = await driver.execute_fetchall(compiled.sql, positional)
        except sqlite3.Error as err:
            raise DBAPIError.instance(compiled.sql, positional, err, sqlite3.Error) from err
        return self._results(compiled, fetched)

    def _here(self, here: InThread, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """:meth:`rows` inside a group's hop (:func:`run_together`): no await, no hop."""
        compiled = self._compile(here.dialect, params)
        positional = _positional(compiled, params)
        try:
            fetched = statement_in_thread(here.sqlite, compiled.sql, positional)
        except sqlite3.Error as err:
            raise DBAPIError.instance(compiled.sql, positional, err, sqlite3.Error) from err
        return self._results(compiled, fetched)

    @staticmethod
    def _results(compiled: _Compiled, fetched: Any) -> list[tuple[Any, ...]]:
        """The fetched rows through the result columns' processors."""
        if not compiled.results:
            return []
        return [
            tuple(v if p is None else p(v) for v, p in zip(row, compiled.results, strict=True))
            for row in fetched
        ]

    async def first(self, connection: AsyncConnection, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The first RETURNING row, or None when no row matched."""
        found = await self.rows(connection, params)
        return found[0] if found else None

    async def many(self, connection: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
        """An executemany of ``rows`` (no RETURNING): two round trips on SQLite (execute, close)."""
        if not _on_driver(connection):
            await connection.execute(self.statement, [dict(r) for r in rows])
            return
        compiled = self._compile(connection.dialect, rows[0])
        batch = [_positional(compiled, params) for params in rows]
        driver = await _aiosqlite(connection)
        try:
            cursor = await driver.executemany(compiled.sql, batch)
            await cursor.close()
        except sqlite3.Error as err:
            raise DBAPIError.instance(compiled.sql, batch, err, sqlite3.Error) from err
