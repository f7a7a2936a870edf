"""Run the Alembic migrations programmatically (there is no alembic.ini to keep in sync).

Alembic's command API is synchronous; it is run inside ``AsyncConnection.run_sync`` so the SQL
itself goes through the async driver on the caller's event loop and only Alembic's bookkeeping
runs synchronously. Concurrent upgrades (two bot processes starting at once on one database) are
serialized by a lock taken before Alembic looks at the current revision.
"""

from __future__ import annotations

import asyncio
from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from botkit.store.database import StoreError, create_engine, open_engine, safe_url, scrub

# An arbitrary constant: the PostgreSQL advisory lock id that serializes botkit migrations.
_PG_MIGRATION_LOCK = 0x626F746B6974  # "botkit"


def migrations_dir() -> Path:
    """The Alembic environment: inside an installed wheel it ships as ``botkit/_data/migrations``
    (see pyproject's force-include); in a source checkout it is ``migrations/`` next to ``botkit/``.
    """
    packaged = resources.files("botkit").joinpath("_data", "migrations")
    if packaged.is_dir() and isinstance(packaged, Path):
        return packaged
    source = Path(__file__).resolve().parents[2] / "migrations"
    if source.is_dir():
        return source
    raise StoreError(f"botkit's migrations directory is missing (looked in {packaged} and {source})")


def alembic_config() -> Config:
    """An Alembic config built in code; callers add ``attributes["connection"|"url"]``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("path_separator", "os")
    return cfg


def head_revision() -> str:
    """The revision this version of botkit needs."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise StoreError("botkit's migrations directory has no revisions")
    return head


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _run(connection: Connection, action: str, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    if action == "upgrade":
        command.upgrade(cfg, revision)
    else:
        command.downgrade(cfg, revision)


async def _lock(connection: AsyncConnection) -> None:
    """Take the migration lock for this transaction, so a second migrator waits and then finds
    the schema already at head instead of failing on "table already exists"."""
    if connection.dialect.name == "postgresql":
        await connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
    elif connection.dialect.name == "sqlite":
        # The driver does not BEGIN before DDL; an explicit IMMEDIATE transaction takes SQLite's
        # write lock now (waiting out busy_timeout) and makes the DDL atomic as a bonus.
        await connection.exec_driver_sql("BEGIN IMMEDIATE")


async def migrate_engine(engine: AsyncEngine, action: str = "upgrade", revision: str = "head") -> None:
    """Upgrade (or downgrade) the database behind ``engine`` in one locked transaction."""
    try:
        async with engine.connect() as connection:
            await _lock(connection)
            await connection.run_sync(_run, action, revision)
            await connection.commit()
    except (DBAPIError, OSError, TimeoutError) as err:
        msg = scrub(str(getattr(err, "orig", err)), engine.url)
        raise StoreError(f"migrating database at {safe_url(engine.url)} failed: {msg}") from None


async def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision``; creates a SQLite file's directory if missing."""
    engine = await open_engine(url, null_pool=True)
    try:
        await migrate_engine(engine, "upgrade", revision)
    finally:
        await engine.dispose()


async def downgrade(url: str, revision: str) -> None:
    """Step the database back to ``revision`` (``"base"`` drops every botkit table)."""
    engine = await open_engine(url, null_pool=True)
    try:
        await migrate_engine(engine, "downgrade", revision)
    finally:
        await engine.dispose()


async def engine_revision(engine: AsyncEngine) -> str | None:
    """The revision recorded in the database, or None if it was never migrated."""
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_current)
    except (DBAPIError, OSError, TimeoutError) as err:
        msg = scrub(str(getattr(err, "orig", err)), engine.url)
        raise StoreError(f"cannot connect to database at {safe_url(engine.url)}: {msg}") from None


async def current_revision(url: str) -> str | None:
    """The revision recorded in the database at ``url``, or None if it was never migrated."""
    engine = create_engine(url, null_pool=True)
    try:
        return await engine_revision(engine)
    finally:
        await engine.dispose()


async def head_revision_async() -> str:
    """:func:`head_revision` off the event loop (it reads and imports the version scripts)."""
    return await asyncio.to_thread(head_revision)
