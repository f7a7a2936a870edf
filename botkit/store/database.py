"""Engine creation shared by the store and the migration runner.

Both need the same SQLite settings (WAL, busy timeout, foreign keys) so that a bot process and a
``botkit db upgrade`` run, or two bot processes, can share one database file without "database is
locked" errors, and both must never show a password from the URL.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool, PoolResetState

# How long a SQLite writer waits for another process's write lock before failing. Writes here are
# single-row and short, so a long wait only happens when something is badly wrong.
SQLITE_BUSY_TIMEOUT_S = 30.0
# Connections a store keeps open, and the most sessions it runs at once (the others wait in an
# asyncio queue: see store._GatedSessions). SQLite has one writer at a time, PostgreSQL gains
# little from more than this per process; the overflow is for the few users outside the store
# (migrations at start, the restart pass), so the pool never times a caller out.
POOL_SIZE = 10
POOL_OVERFLOW = 10


class StoreError(Exception):
    """The database cannot be used as configured; the message says what to do (never a password)."""


def parse_url(url: str) -> URL:
    """Parse a database URL, turning SQLAlchemy's error into a :class:`StoreError` without the URL."""
    try:
        return make_url(url)
    except ArgumentError:
        raise StoreError("invalid database URL (expected e.g. sqlite+aiosqlite:///botkit.db)") from None


def safe_url(url: str | URL) -> str:
    """The URL as it may appear in logs and error messages: the password replaced by ``***``."""
    parsed = url if isinstance(url, URL) else parse_url(url)
    return parsed.render_as_string(hide_password=True)


def scrub(text: str, url: str | URL) -> str:
    """Remove the URL's password from a driver's error text, in case a driver ever echoes it."""
    parsed = url if isinstance(url, URL) else parse_url(url)
    if parsed.password:
        text = text.replace(str(parsed.password), "***")
    return text


def is_sqlite(url: str | URL) -> bool:
    parsed = url if isinstance(url, URL) else parse_url(url)
    return parsed.get_backend_name() == "sqlite"


def _sqlite_file(url: URL) -> Path | None:
    """The database file, or None for in-memory databases (``sqlite://`` or ``:memory:``)."""
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def ensure_sqlite_dir(url: str | URL) -> None:
    """Create the SQLite file's parent directory, so ``sqlite+aiosqlite:///data/bot.db`` just works."""
    parsed = url if isinstance(url, URL) else parse_url(url)
    if parsed.get_backend_name() != "sqlite":
        return
    path = _sqlite_file(parsed)
    if path is not None:
        path.expanduser().parent.mkdir(parents=True, exist_ok=True)


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    """Per-connection SQLite settings: busy_timeout makes writers queue instead of failing at once;
    SQLite leaves foreign keys off by default. (WAL is a property of the file: see :func:`open_engine`.)
    """
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable enough in WAL mode, much faster
    finally:
        cursor.close()


def _reset_sqlite(_dbapi_connection: Any, record: Any, state: PoolResetState) -> None:
    """A SQLite connection back in the pool: rolled back only if a transaction is open.

    SQLAlchemy's default reset rolls back every connection it takes back, committed or not;
    with aiosqlite that is one more round trip to the connection's thread per transaction (4
    of a turn's 39, see botkit.store.prepared) for a no-op: after a commit, or after a read
    (sqlite3 opens a transaction only before a write), there is nothing to roll back. sqlite3
    knows whether one is open (``in_transaction``, read without a round trip). Installed with
    ``pool_reset_on_return=None``, as SQLAlchemy documents for a custom reset.
    """
    if state.terminate_only or not state.asyncio_safe or state.transaction_was_reset:
        return  # closed anyway, or SQLAlchemy's own reset would not roll back either
    driver = record.driver_connection
    if driver is None or getattr(driver, "in_transaction", True):
        record.dbapi_connection.rollback()


#: The databases botkit runs on, each with the async driver it uses: backend -> (driver, example).
SUPPORTED_DRIVERS = {
    "sqlite": ("aiosqlite", "sqlite+aiosqlite:///botkit.db"),
    "postgresql": ("asyncpg", "postgresql+asyncpg://user@host/dbname"),
}


def check_supported(url: URL) -> None:
    """Refuse, with the URL to write instead, a database or driver botkit does not run on.

    SQLAlchemy would pick the backend's default driver (``postgresql://`` means psycopg2,
    ``sqlite://`` the synchronous pysqlite) and fail later with an advice to install that driver,
    or with "The asyncio extension requires an async driver": neither tells an operator that the
    fix is ``+asyncpg`` / ``+aiosqlite`` in the URL."""
    backend, driver = url.get_backend_name(), url.get_driver_name()
    if backend not in SUPPORTED_DRIVERS:
        examples = " or ".join(example for _, example in SUPPORTED_DRIVERS.values())
        raise StoreError(
            f"botkit runs on SQLite and PostgreSQL, not {backend}: set [database] url to {examples}"
        )
    wanted, example = SUPPORTED_DRIVERS[backend]
    if driver != wanted:
        raise StoreError(
            f"botkit talks to {backend} through {wanted}, not {driver}: "
            f"write the URL as {backend}+{wanted}://… (e.g. {example})"
        )


def _driver_hint(url: URL) -> str:
    """How to install the database driver a URL names (asyncpg comes with botkit's extra)."""
    if url.get_backend_name() == "postgresql":
        return "the PostgreSQL driver is not installed: pip install -e '.[postgres]'"
    return f"the {url.get_driver_name()} driver is not installed: pip install {url.get_driver_name()}"


def create_engine(url: str, *, echo: bool = False, null_pool: bool = False) -> AsyncEngine:
    """An async engine with botkit's per-backend settings (``null_pool`` for one-shot tools)."""
    parsed = parse_url(url)
    check_supported(parsed)
    kwargs: dict[str, Any] = {"echo": echo}
    if null_pool:
        kwargs["poolclass"] = NullPool
    elif parsed.get_backend_name() != "sqlite" or _sqlite_file(parsed) is not None:
        kwargs.update(
            pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW
        )  # in-memory SQLite: one static connection
    if parsed.get_backend_name() == "sqlite":
        ensure_sqlite_dir(parsed)
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
        kwargs["pool_reset_on_return"] = None  # _reset_sqlite does it, only where needed
    else:
        kwargs["pool_pre_ping"] = True  # survive a PostgreSQL restart between messages
    try:
        engine = create_async_engine(parsed, **kwargs)
    except (ArgumentError, ImportError) as err:
        hint = f"; {_driver_hint(parsed)}" if isinstance(err, ImportError) else ""
        raise StoreError(
            f"cannot use database at {safe_url(parsed)}: {scrub(str(err), parsed)}{hint}"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _on_sqlite_connect)
        event.listen(engine.sync_engine.pool, "reset", _reset_sqlite)
    return engine


async def _enable_wal(engine: AsyncEngine) -> None:
    """Put the SQLite file in WAL mode, so readers run beside one writer (another process included).

    WAL is persistent in the file, so this is a read of the current mode after the first time.
    Switching needs an exclusive lock, and SQLite reports "locked" at once instead of waiting when
    another process is using the brand-new file (e.g. migrating it), so retry with a back-off.
    """
    if engine.url.get_backend_name() != "sqlite" or _sqlite_file(engine.url) is None:
        return
    deadline = asyncio.get_running_loop().time() + SQLITE_BUSY_TIMEOUT_S
    delay = 0.01
    while True:
        try:
            async with engine.connect() as conn:
                mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
                if str(mode).lower() != "wal":
                    await conn.exec_driver_sql("PRAGMA journal_mode=WAL")
            return
        except OperationalError as err:
            if "locked" not in str(err.orig) or asyncio.get_running_loop().time() > deadline:
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.5)


async def open_engine(url: str, *, echo: bool = False, null_pool: bool = False) -> AsyncEngine:
    """:func:`create_engine` plus the one-time SQLite file setup (WAL), with failures reported as a
    :class:`StoreError` that names the database without its password."""
    try:
        engine = create_engine(url, echo=echo, null_pool=null_pool)
    except OSError as err:  # the SQLite file's directory could not be created
        raise StoreError(f"cannot open database at {safe_url(url)}: {err}") from None
    try:
        await _enable_wal(engine)
    except BaseException as err:
        await engine.dispose()
        if isinstance(err, DBAPIError | OSError | TimeoutError):
            msg = scrub(str(getattr(err, "orig", err)), url)
            raise StoreError(f"cannot open database at {safe_url(url)}: {msg}") from None
        raise
    return engine
