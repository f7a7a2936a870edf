"""Engine creation shared by the store and the migration runner.

Both need the same SQLite settings (WAL, busy timeout, foreign keys) so that a bot process and a
``botkit db upgrade`` run, or two bot processes, can share one database file without "database is
locked" errors, and both must never show a password from the URL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

# How long a SQLite writer waits for another process's write lock before failing. Writes here are
# single-row and short, so a long wait only happens when something is badly wrong.
SQLITE_BUSY_TIMEOUT_S = 30.0


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
    """Per-connection SQLite settings: WAL lets readers run beside one writer (another process
    included); busy_timeout makes writers queue instead of failing; SQLite leaves FKs off by default.
    """
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable enough in WAL mode, much faster
    finally:
        cursor.close()


def create_engine(url: str, *, echo: bool = False, null_pool: bool = False) -> AsyncEngine:
    """An async engine with botkit's per-backend settings (``null_pool`` for one-shot tools)."""
    parsed = parse_url(url)
    kwargs: dict[str, Any] = {"echo": echo}
    if null_pool:
        kwargs["poolclass"] = NullPool
    if parsed.get_backend_name() == "sqlite":
        ensure_sqlite_dir(parsed)
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
    else:
        kwargs["pool_pre_ping"] = True  # survive a PostgreSQL restart between messages
    try:
        engine = create_async_engine(parsed, **kwargs)
    except (ArgumentError, ImportError) as err:
        raise StoreError(f"cannot use database at {safe_url(parsed)}: {scrub(str(err), parsed)}") from None
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _on_sqlite_connect)
    return engine
