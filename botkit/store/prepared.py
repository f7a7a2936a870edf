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

Errors from the driver are wrapped as SQLAlchemy wraps them (``sqlalchemy.exc.OperationalError``
for "database is locked", ...), so :func:`botkit.store.store.is_unavailable` and the final
write's retries see what they saw before.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Select
from sqlalchemy.sql.dml import UpdateBase

Processor = Callable[[Any], Any] | None


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
