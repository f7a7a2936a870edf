"""Alembic environment for botkit (configured programmatically; there is no alembic.ini).

Where the database comes from, first match wins:

1. ``config.attributes["connection"]``: an open sync connection (what ``botkit.store.migrate``
   passes from ``AsyncConnection.run_sync``, so migrations run on the caller's event loop);
2. ``config.attributes["url"]``: a URL string, kept out of the ini-style options because
   configparser would choke on ``%`` in an escaped password;
3. ``-x url=...`` on the alembic command line;
4. the ``BOTKIT_DATABASE__URL`` environment variable (the same variable the bot reads);
5. the built-in default ``sqlite+aiosqlite:///botkit.db``.

SQLite cannot ALTER most things in place, so ``render_as_batch`` is on for it.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection

from botkit.store.database import create_engine, safe_url
from botkit.store.models import Base

DEFAULT_URL = "sqlite+aiosqlite:///botkit.db"

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.attributes.get("url") or context.get_x_argument(as_dictionary=True).get("url")
    return str(url or os.environ.get("BOTKIT_DATABASE__URL") or DEFAULT_URL)


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        **kwargs,  # type: ignore[arg-type]
    )


def run_migrations_offline() -> None:
    """``alembic upgrade --sql``: print the SQL for the URL's dialect instead of running it."""
    url = _url()
    _configure(
        url=url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    _configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations(url: str) -> None:
    engine = create_engine(url, null_pool=True)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
        return
    url = _url()
    config.print_stdout("botkit: database %s", safe_url(url))
    asyncio.run(run_async_migrations(url))


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
